"""The size of a fresh ``pip install .``: what a reseller's server downloads and keeps.

Creates a virtual environment in a temporary folder, installs this checkout into it
(no extras, no test tools), prints the environment's size on disk and its ten
largest packages, and removes it. Goal (issue 24): at most 150 MB.

    .venv/bin/python bench/install_size.py [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOAL_MB = 150


def size_of(path: Path) -> int:
    """Bytes of every regular file under ``path`` (links counted once, as ``du`` does)."""
    total, seen = 0, set()
    for folder, _, files in os.walk(path):
        for name in files:
            stat = os.lstat(os.path.join(folder, name))
            if stat.st_ino not in seen:
                seen.add(stat.st_ino)
                total += stat.st_size
    return total


def fresh_install(target: Path) -> Path:
    """A new virtual environment in ``target`` with this checkout ``pip install``-ed
    (no extras, no test tools), as a reseller's server has it; its python."""
    venv.EnvBuilder(with_pip=True).create(target)
    python = target / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
    subprocess.run([python, "-m", "pip", "install", "--quiet",  # noqa: S603 (the new venv's pip)
                    "--disable-pip-version-check", "--no-cache-dir", str(ROOT)], check=True)
    return python


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keep", action="store_true", help="leave the environment in place")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="install-size-"))
    target = folder / "venv"
    started = time.perf_counter()
    fresh_install(target)
    took = time.perf_counter() - started
    total = size_of(target)
    site = next((target / "lib").glob("python3*/site-packages"), None) or target / "Lib/site-packages"
    packages = sorted(((size_of(p), p.name) for p in site.iterdir() if p.is_dir()), reverse=True)
    print(f"fresh `pip install .` in {took:.0f} s: {total / 1e6:.0f} MB "
          f"(goal <= {GOAL_MB} MB){'' if total / 1e6 <= GOAL_MB else '  OVER THE GOAL'}")
    for size, name in packages[:10]:
        print(f"  {size / 1e6:6.1f} MB  {name}")
    if args.keep:
        print(f"kept: {target}")
    else:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
