"""The wholesale API: the shop serves API v2 to its own customers (README "API for
your resellers"). ``keys`` gives and checks their keys; ``api`` answers the actions
in the shape panels answer them; ``limits`` spaces each key's requests."""
