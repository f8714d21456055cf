"""Command line: run the bot, run the sandbox panel, or check a panel.

    python -m bot                       run the bot (same as `python -m bot run`)
    python -m bot demo [--fresh]        the whole shop as a chat in this terminal (no token, no panel)
    python -m bot sandbox [--port N]    serve the sandbox panel on loopback
    python -m bot panel ACTION ...      ask a panel something; --json for the normalised result
    python -m bot stars reconcile       compare Telegram's Star transactions with the ledger
    python -m bot backup PATH           a verified copy of the live database (PATH: file or folder)
    python -m bot restore PATH          put a backup back (the bot must be stopped)
    python -m bot routes ACTION ...     link a service to its backups on other panels

Exit codes of `panel`: 0 success, 1 the panel rejected the call (or an item
of a multi-id call), 2 a usage or configuration error, 3 the panel is
unavailable, 4 an `add` whose outcome is unknown (check the panel before retrying).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import gc
import json
import logging
import os
import re
import shlex
import sys
from collections.abc import Coroutine, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from bot.config import ConfigError, Settings, StartupError, load_settings, misspelt_settings
from bot.observability.logs import setup_logging
from bot.observability.redaction import redact
from bot.panel import (
    ItemError,
    PanelAmbiguous,
    PanelClient,
    PanelError,
    PanelRejected,
    PanelUnavailable,
    Service,
)
from bot.panel.order_types import (
    ORDER_TYPES,
    FieldError,
    FieldKind,
    FormField,
    Pricing,
    order_type_for,
)

EXIT_REJECTED, EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_AMBIGUOUS = 1, 2, 3, 4

# Every form field of every order type becomes an `add` option, from the one table.
_ADD_FIELDS: dict[str, FieldKind] = {}
for _type in ORDER_TYPES:
    for _field in _type.fields:
        _ADD_FIELDS.setdefault(_field.name, _field.kind)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:  # `python -m bot panel services | head`
        sys.stderr.close()
        return 0


def _main(argv: Sequence[str] | None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if (args.command or "run") != "run":
        gc.enable()  # off only while the bot starts (bot/__main__.py)
    if args.command == "demo":  # embedded defaults: no setting is read
        problem = _demo_options_problem(args)
        if problem:  # said before the demo's imports (aiogram's take seconds)
            print(problem, file=sys.stderr)
            return EXIT_USAGE
        from bot.devtools.demo import run_demo

        return run_demo(args)
    # First: a misspelt key may be why a setting below is "not set".
    for warning in misspelt_settings():
        print(f"warning: {warning}", file=sys.stderr)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    command = args.command or "run"
    if command == "run":
        return _run(settings)
    if command == "sandbox":
        return _sandbox(args, settings)
    if command == "stars":
        return asyncio.run(_stars_reconcile(settings))
    if command == "backup":
        return _backup(args, settings)
    if command == "restore":
        return _restore(args, settings)
    if command == "routes":
        return asyncio.run(_routes(args, settings))
    return asyncio.run(_panel(args, settings))


def _demo_options_problem(args: argparse.Namespace) -> str | None:
    from bot.panel.dialects import DIALECTS

    if args.dialect not in DIALECTS:
        return f"unknown --dialect {args.dialect!r}: one of {', '.join(DIALECTS)}"
    if not 0 < args.pace <= 3600:
        return "--pace must be a number of seconds above 0 (at most 3600)"
    return None


def _port(text: str) -> int:
    """A TCP port for argparse: 0 (any free one) to 65535, said in one line otherwise."""
    if not (text.isascii() and text.isdigit() and int(text) <= 65_535):
        raise argparse.ArgumentTypeError(f"a port is a number from 0 to 65535, not {text!r}")
    return int(text)


def _amount(text: str) -> Decimal:
    """A balance for argparse: a plain decimal number from 0 to a billion."""
    try:
        value = Decimal(text) if text.isascii() and len(text) <= 20 else Decimal(-1)
    except InvalidOperation:
        value = Decimal(-1)
    if not (value.is_finite() and 0 <= value <= 10**9):
        raise argparse.ArgumentTypeError(f"an amount from 0 to 1000000000, not {text!r}")
    return value


def _seconds(text: str) -> float:
    """Seconds for argparse: a number above 0 (at most a day)."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 86_400:
        raise argparse.ArgumentTypeError(f"seconds above 0 (at most 86400), not {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description="SMM storefront bot")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("run", help="run the Telegram bot (the default)")

    demo = commands.add_parser("demo", help="the whole shop as a chat in this terminal: the "
                               "sandbox panel, a local Telegram stand-in and the bot, offline")
    demo.add_argument("--lang", default="en", help="the customer's Telegram language (en, ru, tr)")
    demo.add_argument("--pace", type=float, default=3.0,
                      help="seconds per sandbox order status step (default 3)")
    demo.add_argument("--dialect", default="perfectpanel",
                      help="which real panel the sandbox imitates (see `sandbox --help`)")
    demo.add_argument("--fresh", action="store_true",
                      help="start over: delete the demo's database (./data/demo.sqlite3)")
    demo.add_argument("--data", default="data/demo.sqlite3", help=argparse.SUPPRESS)

    sandbox = commands.add_parser("sandbox", help="serve the sandbox panel on loopback")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=_port, default=8765)
    sandbox.add_argument("--dialect", default=None, help="perfectpanel, generic, smmsofia, smmsouq, "
                         "softaapp, sosyalbayiniz or smartpanel (default: SANDBOX_DIALECT)")
    sandbox.add_argument("--pace", type=_seconds, default=None,
                         help="seconds per order status step (default: SANDBOX_PACE)")
    sandbox.add_argument("--catalog-size", type=int, default=0,
                         help="serve a generated catalog of this many services (load tests)")
    sandbox.add_argument("--balance", type=_amount, default=Decimal("1000"),
                         help="the sandbox account's starting balance (default: 1000)")

    stars = commands.add_parser("stars", help="Telegram Stars payments")
    stars_actions = stars.add_subparsers(dest="action", required=True)
    stars_actions.add_parser("reconcile", help="compare Telegram's Star transactions with the"
                             " ledger; report each difference to the admins once")

    backup = commands.add_parser(
        "backup", help="copy the live database, verified, while the bot"
        " runs: to PATH, or to a dated file in PATH when it is a folder",
        description="Copy the database (DATABASE_PATH) while the bot runs: a consistent"
        " copy, checked (integrity and this shop's tables) before it is put in place, so"
        " a backup file is never half-written. One line says where, its size and what it"
        " holds; exit 0 when made, 1 when not.")
    # str, not Path: Path drops the trailing slash that says "a folder".
    backup.add_argument("path", metavar="PATH", help="where the copy goes: a folder (one that"
                        " exists, or any path ending in /, created) gets a dated file"
                        " storefront-YYYYMMDD-HHMMSS.sqlite3 (UTC), like data/backups/; any"
                        " other path is the copy's file name, replaced if it exists; never the"
                        " database's own files")
    restore = commands.add_parser(
        "restore", help="replace the database with the backup at PATH"
        " (the bot must be stopped; the current file is kept)",
        description="Put a backup back as the database (DATABASE_PATH). Stop the bot first:"
        " refused while a bot runs on it, and for a file that is not a sound backup of this"
        " shop. The database it"
        " replaces is kept as DATABASE_PATH.before-restore-YYYYMMDD-HHMMSS; an older backup is"
        " migrated at the next start.")
    restore.add_argument("path", metavar="PATH", type=Path,
                         help="the backup file to restore, as `backup` wrote it (like"
                         " data/backups/storefront-20260101-033000.sqlite3); a file, not a"
                         " folder")

    routes = commands.add_parser(
        "routes", help="a shop service's backups on other panels (PANEL_URL plus PANELS)",
        description="Link a shop service to its backups: the same kind of service on another"
        " configured panel, tried when the service's own panel certainly did not take an"
        " order. A service is named PANEL:SERVICE: the panel's name (PANEL_NAME, or a name in"
        " PANELS) and that panel's own service id, as `panel services` lists them, like"
        " main:101. Works on DATABASE_PATH: the catalogs as the bot last refreshed them.")
    route_actions = routes.add_subparsers(dest="action", required=True)
    for name, help_text in (("link", "make BACKUP the last backup of SERVICE"),
                            ("unlink", "undo the link between SERVICE and BACKUP")):
        action = route_actions.add_parser(name, help=help_text, description=help_text
                                          + "; both are PANEL:SERVICE, like main:101 spare:7001")
        action.add_argument("service", metavar="SERVICE", type=_panel_service,
                            help="the shop's service, as its panel sells it (PANEL:SERVICE)")
        action.add_argument("backup", metavar="BACKUP", type=_panel_service,
                            help="its backup on another panel (PANEL:SERVICE)")
    route_actions.add_parser("list", help="every link, one a line, with both costs per 1000")
    suggest = route_actions.add_parser(
        "suggest", help="candidate links, not made, best first, with the command making each")
    suggest.add_argument("service", metavar="SERVICE", type=_panel_service, nargs="?",
                         help="only this service's candidates (PANEL:SERVICE); without it,"
                         " the best one of each service on sale that has no backup")
    suggest.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")

    panel = commands.add_parser("panel", help="check a panel: does the bot understand it?")
    _panel_options(panel, after_action=False)
    actions = panel.add_subparsers(dest="action", required=True)
    # The panel's options are accepted after the action too (`panel services --json`):
    # each action takes them again, with no default, so `panel --json services` keeps
    # the value given before the action (argparse copies only what the action parsed).
    common = argparse.ArgumentParser(add_help=False)
    _panel_options(common, after_action=True)
    actions.add_parser("services", parents=[common], help="list the panel's services")
    actions.add_parser("balance", parents=[common], help="the reseller's balance on the panel")
    for name, help_text in (("status", "order statuses"), ("refill", "request refills"),
                            ("refill-status", "refill statuses"), ("cancel", "request cancels")):
        action = actions.add_parser(name, parents=[common], help=help_text)
        action.add_argument("ids", nargs="+", metavar="ID")
    add = actions.add_parser("add", parents=[common],
                             help="place an order (real money on a real panel!)")
    add.add_argument("--service", required=True, help="service id")
    for field_name, kind in _ADD_FIELDS.items():
        hint = " (one item per line; '\\n' separates too)" if kind is FieldKind.LINES else ""
        add.add_argument(f"--{field_name.replace('_', '-')}", dest=f"field_{field_name}",
                         help=f"the {field_name} field{hint}")
    return parser


def _panel_options(parser: argparse.ArgumentParser, *, after_action: bool) -> None:
    """``--url``, ``--key``, ``--panel``, ``--json``: on ``panel`` and on each action."""
    unset: Any = argparse.SUPPRESS if after_action else None
    parser.add_argument("--url", default=unset, help="panel API URL (default: PANEL_URL)")
    parser.add_argument("--key", default=unset, help="panel API key (default: PANEL_KEY)")
    parser.add_argument("--panel", default=unset, help="name of a panel from PANELS / PANEL_NAME")
    parser.add_argument("--json", action="store_true",
                        default=argparse.SUPPRESS if after_action else False,
                        help="print the normalised result as JSON")


def _run_loop(main: Coroutine[Any, Any, None]) -> None:
    """uvloop's event loop when installed (``pip install '.[fast]'``), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)


def _run(settings: Settings) -> int:
    setup_logging(settings.log_level, settings.secrets(), log_format=settings.log_format)
    try:
        _run_loop(_start_bot(settings))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    except StartupError as exc:
        print(redact(str(exc)), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


async def _start_bot(settings: Settings) -> None:
    """The start-up checks first (bot/app/preflight.py: a missing token, a busy port,
    an unusable database... in the first second), then aiogram and the shop."""
    from bot.app.preflight import prepare

    prepared = await prepare(settings)
    try:
        # aiogram and every handler: seconds of imports, worth it only for a bot that runs.
        from bot.app.bootstrap import run_bot
        from bot.devtools.sandbox.embedded import embedded_sandbox
    except BaseException:
        await prepared.release()
        raise
    await run_bot(settings, prepared=prepared, embedded_panel=embedded_sandbox)


def _backup(args: argparse.Namespace, settings: Settings) -> int:
    """One line on stdout (where, size, counts), exit 0; else one line on stderr, exit 1."""
    from bot.app.backups import BackupError, backup, destination_for

    try:
        report = asyncio.run(backup(settings.database_path, destination_for(args.path)))
    except BackupError as exc:
        print(f"backup failed: {exc}", file=sys.stderr)
        return 1
    print(f"backed up {settings.database_path} to {report.describe()}")
    return 0


def _restore(args: argparse.Namespace, settings: Settings) -> int:
    """Exit 1, one line, while the bot runs or when PATH is not a sound backup."""
    from bot.app.backups import BackupError, restore

    try:
        report = asyncio.run(restore(args.path, settings.database_path))
    except BackupError as exc:
        print(f"restore refused: {exc}", file=sys.stderr)
        return 1
    kept = f"; the previous database is kept as {report.kept}" if report.kept else ""
    print(f"restored {report.source} into {report.copy.describe()}{kept}")
    return 0


async def _stars_reconcile(settings: Settings) -> int:
    """Exit 0 when Telegram and the ledger agree, 1 when they differ (each listed) or
    a transaction could not be read (skipped, counted); uncertain refunds it settles
    are listed too."""
    from bot.app.bootstrap import build_bot, build_referrals
    from bot.shop.messaging.alerts import AdminAlerts
    from bot.shop.money import reconcile
    from handlers.outbound.star_transactions import telegram_transactions
    from storage.db import Database

    setup_logging(settings.log_level, settings.secrets(), log_format=settings.log_format)
    try:
        bot = build_bot(settings)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    try:
        async with Database(settings.database_path) as db:
            report = await reconcile.reconcile(db, telegram_transactions(bot),
                                               AdminAlerts(db, settings.admin_ids).send,
                                               hook=build_referrals(db, settings))
    except Exception as exc:  # Telegram unreachable, a refused token: one line, no traceback
        print(f"could not reconcile: {redact(str(exc))[:300]}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    finally:
        await bot.session.close()
    for settlement in report.settled:
        outcome = "refunded" if settlement.refunded else "not refunded, the debit given back"
        print(f"settled\t{settlement.charge_id}\t{outcome}")
    for difference in report.differences:
        print(f"{difference.kind}\t{difference.charge_id}\t{difference.detail}")
    if report.unreadable:
        print(f"{report.unreadable} transaction(s) Telegram listed could not be read; they"
              " were skipped (the rest is reconciled).")
    if report.differences:
        print(f"{len(report.differences)} difference(s)")
    elif not report.unreadable:
        print("Telegram's Star transactions and the ledger agree.")
    return 1 if report.differences or report.unreadable else 0


def _sandbox(args: argparse.Namespace, settings: Settings) -> int:
    from bot.devtools.sandbox.sample_catalog import DEFAULT_CATALOG, generated_catalog
    from bot.devtools.sandbox.server import DEFAULT_KEY, RunningSandbox, SandboxPanel, start_sandbox
    from bot.panel.dialects import DIALECTS

    dialect = args.dialect or settings.sandbox_dialect
    if dialect not in DIALECTS:
        print(f"unknown dialect {dialect!r}; one of {', '.join(DIALECTS)}", file=sys.stderr)
        return EXIT_USAGE
    setup_logging(settings.log_level, log_format=settings.log_format)

    async def serve() -> int:
        catalog = generated_catalog(args.catalog_size) if args.catalog_size else DEFAULT_CATALOG
        panel = SandboxPanel(dialect=dialect, pace=args.pace or settings.sandbox_pace,
                             catalog=catalog, balance=args.balance)
        running: RunningSandbox | None = None
        for port in _ports_to_try(args.port):
            try:
                running = await start_sandbox(panel, host=args.host, port=port)
                break
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    # asyncio says "error while attempting to bind on address (...): why"
                    why = str(exc.strerror or exc).rsplit("): ", 1)[-1]
                    print(f"cannot serve the sandbox on {args.host}:{port}: {why}",
                          file=sys.stderr)
                    return EXIT_USAGE
        if running is None:
            print(f"port {args.port} and the next {_SPARE_PORTS} are busy; pass a free one"
                  " with --port", file=sys.stderr)
            return EXIT_USAGE
        if args.port and running.port != args.port:
            print(f"port {args.port} is busy; serving on {running.port} instead", file=sys.stderr)
        print(f"Sandbox panel ({dialect} dialect) listening on {running.url}  key: {DEFAULT_KEY}")
        print(f"Try: {_interpreter()} -m bot panel --url {running.url} --key {DEFAULT_KEY}"
              " services")
        print("Press Ctrl+C to stop.", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await running.stop()
        return 0  # pragma: no cover - only Ctrl+C ends the wait

    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(serve())
    return 0


# A busy sandbox port (a sandbox left running, another service) moves it to one of
# the next few, so the printed URL stays predictable; after those, the OS picks.
_SPARE_PORTS = 10


def _ports_to_try(port: int) -> list[int]:
    if port == 0:
        return [0]
    return [port, *range(port + 1, min(port + 1 + _SPARE_PORTS, 65536)), 0]


def _interpreter() -> str:
    """The Python running this command, as the reader can type it from here.

    ``python`` may be another interpreter (or none) in the reader's shell, while
    this one has the bot installed: ``.venv/bin/python`` when it is in this folder,
    its full path otherwise.
    """
    if not sys.executable:
        return "python"
    executable = Path(sys.executable)  # not resolved: a venv's python is a symlink
    cwd = Path.cwd()
    shown = str(executable)
    # cwd is a real path; the executable's folder may be reached through a symlink.
    for candidate in (executable, executable.parent.resolve() / executable.name):
        with contextlib.suppress(ValueError):
            relative = candidate.relative_to(cwd)
            shown = str(relative) if len(relative.parts) > 1 else os.path.join(os.curdir, relative)
            break
    if os.name == "posix":
        return shlex.quote(shown)
    return f'"{shown}"' if " " in shown else shown


def _panel_service(text: str) -> tuple[str, str]:
    """PANEL:SERVICE for argparse: the panel's name and its own service id."""
    panel, colon, service = text.partition(":")
    if not colon or not panel.strip() or not service.strip():
        raise argparse.ArgumentTypeError(
            f"name a service as PANEL:SERVICE (the panel's name, its service id), like"
            f" main:101, not {text[:60]!r}")
    return panel.strip(), service.strip()


async def _routes(args: argparse.Namespace, settings: Settings) -> int:
    """Exit 0 done, 1 refused (the reason in one line), 2 no database or one panel."""
    from bot.config import SANDBOX_PANEL_NAME
    from bot.shop.catalog.pricing import Pricer
    from bot.shop.money.formatting import money
    from bot.shop.routing.links import NEEDS_TWO_PANELS, LinkRefused, Refusal, RouteLinks, label
    from storage.db import Database, DatabaseUnusable

    if not settings.database_path.exists():
        print(f"no database at {settings.database_path}: run the bot once first (it stores"
              " the panels' catalogs), or set DATABASE_PATH", file=sys.stderr)
        return EXIT_USAGE
    configured = settings.panel_settings()
    names = [p.name for p in configured] or [SANDBOX_PANEL_NAME]
    fx_rates = {p.name: p.fx_rate or settings.fx_rate for p in configured}
    currency = settings.shop_currency
    try:
        db = await Database(settings.database_path).open()
    except DatabaseUnusable as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    try:
        links = RouteLinks(db, Pricer(db, currency, settings.markup_percent, fx_rates), names)

        async def found(ref: tuple[str, str]) -> int:
            stored = await links.find(*ref)
            if stored is None:
                raise LinkRefused(Refusal.UNKNOWN, service=":".join(ref))
            return stored.ref

        def costs(service_minor: int, backup_minor: int) -> str:
            return f"{money(service_minor, currency)} -> {money(backup_minor, currency)} per 1000"

        if args.action != "list" and not links.can_link:
            print(NEEDS_TWO_PANELS, file=sys.stderr)
            return EXIT_USAGE
        try:
            if args.action == "link":
                made = await links.link(0, await found(args.service), await found(args.backup))
                cost = costs(made.service_cost_minor, made.backup_cost_minor)
                print(f"linked {label(made.service)} -> {label(made.backup)} (backup"
                      f" {made.position}), cost {cost}")
            elif args.action == "unlink":
                service, backup = await found(args.service), await found(args.backup)
                await links.unlink(0, service, backup)
                print(f"unlinked {':'.join(args.service)} -> {':'.join(args.backup)}")
            elif args.action == "list":
                listed = await links.listing()
                for link in listed:
                    print(f"{label(link.service)} -> {label(link.backup)}  backup {link.position}"
                          f"  cost {costs(link.service_cost_minor, link.backup_cost_minor)}"
                          f"  {link.service.service.name[:60]} -> {link.backup.service.name[:60]}")
                if not listed:
                    print("no links yet: `routes suggest` proposes some")
            else:
                ref = None if args.service is None else await found(args.service)
                suggested = await links.suggest(ref, max(1, args.limit))
                for item in suggested:
                    service, backup = label(item.service), label(item.backup)
                    print(f"{item.score:>3} %  {service} -> {backup}  cost"
                          f" {costs(item.service_cost_minor, item.backup_cost_minor)}"
                          f"  {item.service.service.name[:60]} -> {item.backup.service.name[:60]}")
                    print(f"       {_interpreter()} -m bot routes link {shlex.quote(service)}"
                          f" {shlex.quote(backup)}")
                if not suggested:
                    print("no candidate: no service on the other panels reads like it (same"
                          " kind of order, overlapping min/max)")
        except LinkRefused as refused:
            print(f"refused: {refused.text}", file=sys.stderr)
            return EXIT_REJECTED
    finally:
        await db.close()
    return 0


def _client(args: argparse.Namespace, settings: Settings) -> PanelClient:
    if args.url:
        if not _is_http_url(args.url):
            raise ConfigError("--url must be an http(s) URL, like https://panel.example/api/v2")
        if not args.key:
            raise ConfigError("--key is required with --url")
        return PanelClient(args.url, SecretStr(args.key), name="cli", rate_limit=0)
    panels = settings.panel_settings()
    if args.panel:
        panels = [p for p in panels if p.name == args.panel]
        if not panels:
            raise ConfigError(f"no panel named {args.panel!r} in PANEL_NAME / PANELS")
    if not panels:
        raise ConfigError("no panel configured: set PANEL_URL and PANEL_KEY, or pass --url and --key"
                          " (for the sandbox: `make sandbox` prints both)")
    return panels[0].client()


def _is_http_url(url: str) -> bool:
    """An http(s) URL with a host: anything else reaches httpx as an unsupported
    protocol, which would read as "the panel is unavailable" (exit 3)."""
    if any(ch.isspace() for ch in url):
        return False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        httpx.URL(url)
    except (ValueError, httpx.InvalidURL):
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


async def _panel(args: argparse.Namespace, settings: Settings) -> int:
    logging.basicConfig(level=logging.WARNING)
    try:
        client = _client(args, settings)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    async with client:
        try:
            result, failed = await _perform(client, args)
        except FieldError as exc:
            print(f"invalid --{exc.field_name.replace('_', '-')}: {exc.render()}", file=sys.stderr)
            return EXIT_USAGE
        except PanelRejected as exc:
            if not (args.json and args.action in _PER_ID):
                print(f"panel rejected the call ({exc.reason.value}): {exc.message}",
                      file=sys.stderr)
                return EXIT_REJECTED
            # One bad id (`status 123abc`), or a panel refusing a whole batch for one:
            # a script reading the JSON gets each id's error, as from a multi-id answer.
            result, failed = {order_id: {"error": exc.message} for order_id in args.ids}, True
        except PanelAmbiguous as exc:
            print(f"outcome unknown: {exc.message}. Check the panel's order list before trying"
                  " again.", file=sys.stderr)
            return EXIT_AMBIGUOUS
        except PanelUnavailable as exc:
            print(f"panel unavailable: {exc.message}", file=sys.stderr)
            return EXIT_UNAVAILABLE
        except PanelError as exc:  # pragma: no cover - every subclass is handled above
            print(f"panel error: {exc}", file=sys.stderr)
            return EXIT_UNAVAILABLE
    # An id the panel refused is in the result (its "error", or its line in the
    # listing), and exit 1 says some item failed: once, on stdout, JSON kept whole.
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        print(_human(args.action, result))
    return EXIT_REJECTED if failed else 0


async def _perform(client: PanelClient, args: argparse.Namespace) -> tuple[Any, bool]:
    """Run the action; returns the JSON-ready result and whether any item failed."""
    action = args.action
    if action == "services":
        return [s.to_json() for s in await client.services()], False
    if action == "balance":
        return (await client.balance()).to_json(), False
    if action == "add":
        return {"order": await _add(client, args)}, False
    ids: list[str] = list(dict.fromkeys(args.ids))
    results: dict[str, Any]
    if action == "status":
        results = ({ids[0]: await client.status(ids[0])} if len(ids) == 1
                   else dict(await client.statuses(ids)))
    elif action == "refill":
        results = ({ids[0]: await client.refill(ids[0])} if len(ids) == 1
                   else dict(await client.refills(ids)))
        results = {k: v if isinstance(v, ItemError) else _RefillId(v) for k, v in results.items()}
    elif action == "refill-status":
        results = ({ids[0]: await client.refill_status(ids[0])} if len(ids) == 1
                   else dict(await client.refill_statuses(ids)))
    else:
        results = dict(await client.cancel(ids))
    answered = {k: v.to_json() for k, v in results.items()}
    # An id the answer leaves out is an error too, never a silent gap; a panel that
    # answered {"error": ...} to the whole batch gives its words to each of them.
    batch_error = answered.pop("error", None) if "error" not in ids else None
    missing = [order_id for order_id in ids if order_id not in answered]
    for order_id in missing:
        answered[order_id] = batch_error or {"error": "the panel's answer says nothing of it"}
    return answered, bool(missing) or any(isinstance(v, ItemError) for v in results.values())


_PER_ID = ("status", "refill", "refill-status", "cancel")  # the actions taking ids


class _RefillId(str):
    def to_json(self) -> dict[str, str]:
        return {"refill": str(self)}


async def _add(client: PanelClient, args: argparse.Namespace) -> str:
    services = {s.id: s for s in await client.services()}
    service: Service | None = services.get(args.service)
    if service is None:
        raise PanelRejected(f"the panel lists no service {args.service}", panel=client.name,
                            action="add")
    order_type = service.order_type
    if order_type is None:
        raise PanelRejected(f"service {service.id} has a type the bot does not know: {service.type}",
                            panel=client.name, action="add")
    values: dict[str, str] = {}
    for spec in order_type.fields:
        raw = getattr(args, f"field_{spec.name}", None)
        if raw is None:
            continue
        if spec.kind is FieldKind.LINES:
            raw = raw.replace("\\n", "\n")
        values[spec.name] = _parse_option(spec, raw)
    missing = [s.name for s in order_type.form(values, service.limits)
               if s.required and s.name not in values]
    if missing:
        options = ", ".join(f"--{m.replace('_', '-')}" for m in missing)
        raise FieldError(missing[0], f"a {order_type.name} service needs {options}")
    return await client.add(service.id, order_type, values)


_NEGATIVE = re.compile(r"^\s*[-\u2212]\s*\d")


def _parse_option(spec: FormField, raw: str) -> str:
    """``spec.parse``, with a clear word for a negative number: the parser reads no
    sign, so ``--quantity -5`` would otherwise be told "send a whole number"."""
    if spec.kind is FieldKind.INTEGER and _NEGATIVE.match(raw):
        if spec.minimum == 0:
            raise FieldError(spec.name, "must not be negative (zero or a whole number above"
                             " it), not {value}", value=raw.strip())
        raise FieldError(spec.name, "must be positive (a whole number above zero), not {value}",
                         value=raw.strip())
    return spec.parse(raw)


def _human(action: str, result: Any) -> str:
    if action == "services":
        # A panel's list is not always sorted by category: each gets one heading,
        # in the order the panel first names it, with all its services under it.
        by_category: dict[str, list[dict[str, Any]]] = {}
        for item in result:
            by_category.setdefault(item["category"], []).append(item)
        lines = [f"{len(result)} services"]
        for category, items in by_category.items():
            lines.append(f"\n[{category}]")
            for item in items:
                flags = "".join(flag[0].upper() for flag in ("refill", "cancel", "dripfeed")
                                if item[flag]) or "-"
                lines.append(f"  {item['id']:>6}  {item['type']:<24} {item['rate']:>10}"
                             f" {_price_unit(item['type']):<6} {item['min']:>7}-{item['max']:<9}"
                             f" {flags:<3} {item['name']}")
        lines.append("\nflags: R refill, C cancel, D drip-feed")
        return "\n".join(lines)
    if action == "balance":
        return f"balance: {result['balance']} {result['currency']}"
    if action == "add":
        return f"order placed: {result['order']}"
    lines = []
    for item_id, item in result.items():
        if "error" in item:
            lines.append(f"{item_id}: error: {item['error']}")
        elif action == "status":
            lines.append(f"{item_id}: {item['status']} ({item['raw_status']}), charge "
                         f"{item['charge']} {item['currency'] or ''}, start {item['start_count']},"
                         f" remains {item['remains']}")
        elif action == "refill":
            lines.append(f"{item_id}: refill {item['refill']} requested")
        elif action == "refill-status":
            lines.append(f"{item_id}: {item['status']} ({item['raw_status']})")
        else:
            lines.append(f"{item_id}: cancel requested {item.get('message') or ''}".rstrip())
    return "\n".join(lines)


def _price_unit(type_name: str) -> str:
    """What a service's rate buys: a package's rate is its whole price."""
    order_type = order_type_for(type_name)
    return "flat" if order_type is not None and order_type.pricing is Pricing.FLAT else "per 1k"
