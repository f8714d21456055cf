"""Writes requirements.txt from pyproject.toml: `make requirements`.

A Python buildpack (Heroku's, Dokku's, Scalingo's) installs an app from
requirements.txt (or a lock file) and finds nothing to install in a
pyproject.toml alone; Render's native Python runtime runs
`pip install -r requirements.txt` by default. The file lists what
pyproject.toml's `dependencies` and its `redis` extra say (the extra, as the
Docker image has it: REDIS_URL then works there too); the app runs from its
folder (`python -m bot`), so the project itself is not installed.
tests/test_deploy_files.py fails when the file and pyproject.toml differ.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXTRAS = ("redis",)


def render(pyproject: str) -> str:
    """requirements.txt's text for this pyproject.toml."""
    project = tomllib.loads(pyproject)["project"]
    extras = project.get("optional-dependencies", {})
    lines = [
        "# Generated from pyproject.toml by `make requirements` (deploy/requirements.py): edit",
        "# pyproject.toml, then run it. For hosts that install from requirements.txt (a Python",
        "# buildpack reading the Procfile); everywhere else `pip install -e '.[redis]'` is the same.",
        *project["dependencies"],
        *(f"{requirement}  # the [{extra}] extra" for extra in EXTRAS for requirement in extras[extra]),
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    text = render((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    (ROOT / "requirements.txt").write_text(text, encoding="utf-8")
    print(f"wrote {ROOT / 'requirements.txt'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
