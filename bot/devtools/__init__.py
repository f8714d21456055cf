"""Tools for trying and testing the shop without Telegram or a panel: the terminal
chat and the offline demo (``python -m bot demo``). Nothing here is imported by
the shop itself."""
