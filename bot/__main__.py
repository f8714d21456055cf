import gc
import sys

# Start-up builds ~220,000 objects that live as long as the process (aiogram's and
# pydantic's classes, the routers, the catalog): with the cyclic collector on, its
# ~500 collections walk them over and over for nothing (0.3-0.4 s of a 2.5 s start
# here). Off until the bot is settled (settle_heap in bot/app/bootstrap.py); the
# other commands turn it back on at once (bot/cli.py).
gc.disable()

from bot.cli import main  # noqa: E402 (after the collector is off)

sys.exit(main())
