"""Update, message and callback middlewares."""
