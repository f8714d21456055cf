"""SMM storefront: a Telegram shop for resellers of API v2 SMM panels."""
