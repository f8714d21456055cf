"""How long `python -m bot` takes to say a start-up mistake, per mistake.

Each case runs the bot as a new process in an empty folder (no .env but the
case's own), Telegram unreachable and not waited for (TELEGRAM_WAIT=0), and
times it from launch to the moment the line that names the mistake is on
stderr, and to its exit. Medians and ranges of ``--rounds`` runs.

    .venv/bin/python bench/startup_errors.py [--rounds 7] [--root CHECKOUT]

``--root`` runs another checkout's bot with this interpreter (the baseline:
``--root /path/to/main``); nothing is written there (no bytecode).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOKEN = "123456789:AABenchBenchBenchBenchBenchBenchBen0"
SETTINGS_CLEARED = ("BOT_TOKEN", "HEALTH_PORT", "WEBHOOK_URL", "ADMIN_IDS", "PANEL_URL")


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def one_run(folder: Path, env: dict[str, str], wanted: str) -> tuple[float, float, str]:
    """(seconds to the line containing ``wanted``, seconds to exit, the last line)."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "bot"], cwd=folder, env=env,
                               stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    said = float("nan")
    last = ""
    assert process.stderr is not None
    for line in process.stderr:
        if said != said and wanted in line:  # the first time only (nan != nan)
            said = time.perf_counter() - started
        last = line.strip() or last
    process.wait(timeout=120)
    return said, time.perf_counter() - started, last


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    args = parser.parse_args()
    base = {k: v for k, v in os.environ.items() if k not in SETTINGS_CLEARED}
    base.update({"PYTHONPATH": str(args.root), "PYTHONDONTWRITEBYTECODE": "1",
                 "TELEGRAM_WAIT": "0", "TELEGRAM_API_URL": f"http://127.0.0.1:{closed_port()}"})
    with tempfile.TemporaryDirectory() as tmp, socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = str(taken.getsockname()[1])
        folder = Path(tmp)
        cases = [
            ("BOT_TOKEN not set", {}, "", "BOT_TOKEN is not set"),
            ("BOT_TOKN misspelt in .env", {}, f"BOT_TOKN={TOKEN}\n", "did you mean BOT_TOKEN"),
            ("HEALTH_PORT taken", {"BOT_TOKEN": TOKEN, "HEALTH_PORT": busy}, "", busy),
        ]
        print(f"`python -m bot` from {args.root}, {args.rounds} runs each (medians, ranges)")
        for name, extra, env_file, wanted in cases:
            (folder / ".env").write_text(env_file)
            env = {**base, **extra, "DATABASE_PATH": str(folder / "shop.sqlite3")}
            runs = [one_run(folder, env, wanted) for _ in range(args.rounds)]
            said = [r[0] for r in runs if r[0] == r[0]]
            ended = [r[1] for r in runs]
            shown = (f"{statistics.median(said):5.2f} s ({min(said):.2f}-{max(said):.2f})"
                     if said else "never said")
            print(f"  {name:<26} said after {shown:<22} exit after"
                  f" {statistics.median(ended):5.2f} s   last line: {runs[-1][2][:90]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
