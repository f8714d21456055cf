"""The customer's routers: menu, shop, order form, balance, payments, orders."""
