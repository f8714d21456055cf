"""The sandbox as the shop's panel when none is configured.

``python -m bot`` with no ``PANEL_URL`` (nor ``PANELS``) runs the shop on this
sandbox, on loopback, so a new reseller sees it work before buying from a real
panel. The command line (bot/cli.py) hands ``embedded_sandbox`` to the app; the
app itself never imports the dev tools.
"""

from __future__ import annotations

import errno
import logging
from typing import TYPE_CHECKING

from bot.config import Settings, StartupError

if TYPE_CHECKING:
    from bot.devtools.sandbox.server import RunningSandbox

log = logging.getLogger(__name__)


async def embedded_sandbox(settings: Settings) -> RunningSandbox:
    """The sandbox on ``SANDBOX_PORT`` (any free port when that one is taken), said
    loudly in the log: orders on it are simulated."""
    # Imported here: a shop with a real panel never loads the sandbox.
    from bot.devtools.sandbox.server import SandboxPanel, start_sandbox

    panel = SandboxPanel(dialect=settings.sandbox_dialect, pace=settings.sandbox_pace)
    try:
        sandbox = await start_sandbox(panel, port=settings.sandbox_port)
    except OSError as exc:  # SANDBOX_PORT taken (another shop, a demo): any free port
        if exc.errno != errno.EADDRINUSE:
            raise StartupError(f"the embedded sandbox cannot listen on port "
                               f"{settings.sandbox_port} ({exc.strerror}): change "
                               "SANDBOX_PORT, or 0 for any free port") from None
        sandbox = await start_sandbox(panel, port=0)
        log.warning("SANDBOX_PORT %d is busy; the embedded sandbox serves on %d instead",
                    settings.sandbox_port, sandbox.port)
    log.warning("=" * 72)
    log.warning("NO PANEL CONFIGURED: using the embedded SANDBOX panel at %s", sandbox.url)
    log.warning("Orders are simulated and nothing is delivered. Set PANEL_URL and")
    log.warning("PANEL_KEY (or PANELS) in .env to sell real services.")
    log.warning("=" * 72)
    return sandbox
