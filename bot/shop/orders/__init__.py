"""The order form's rules, placing orders safely, tracking them."""
