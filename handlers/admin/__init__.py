"""The admin panel's routers."""
