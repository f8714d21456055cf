"""`python -m bot routes ...`: links between services on two panels, on the database file
the bot keeps (catalogs fetched from two sandbox panels)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from bot.devtools.sandbox.sample_catalog import DEFAULT_CATALOG
from bot.devtools.sandbox.server import DEFAULT_KEY
from storage.db import Database
from tests import test_cli
from tests.conftest import SandboxFactory
from tests.test_cli import MainIn, one_line, run_cli
from tests.test_route_links import RESELLER_CATALOG, fill

main_in = test_cli.main_in  # the fixture: bot.cli.main in this process


@pytest.fixture
async def two_panels(make_sandbox: SandboxFactory, tmp_path: Path,
                     monkeypatch: pytest.MonkeyPatch, main_in: MainIn) -> Path:
    """main (the sample catalog) and spare (another reseller's words), as last refreshed."""
    path = tmp_path / "shop.sqlite3"
    async with Database(path) as db:
        await db.open()
        await fill(db, make_sandbox, {"main": ("perfectpanel", DEFAULT_CATALOG),
                                      "spare": ("smmsofia", RESELLER_CATALOG)})
    monkeypatch.setenv("DATABASE_PATH", str(path))
    monkeypatch.setenv("PANEL_URL", "http://127.0.0.1:9/api/v2")  # never called
    monkeypatch.setenv("PANEL_KEY", DEFAULT_KEY)
    monkeypatch.setenv("PANELS", '[{"name": "spare", "url": "http://127.0.0.1:9/x", "key": "k",'
                       ' "fx_rate": "1.5"}]')
    return path


async def test_suggest_link_list_unlink(two_panels: Path, main_in: MainIn) -> None:
    code, out, err = await main_in("routes", "suggest", "main:101")
    assert code == 0, err
    lines = out.splitlines()
    assert "main:101 -> spare:7001" in lines[0] and "cost $1.20 -> $2.03 per 1000" in lines[0]
    command = shlex.split(lines[1])
    assert command[-4:] == ["routes", "link", "main:101", "spare:7001"]

    code, out, err = await main_in(*command[command.index("routes"):])
    assert code == 0, err
    assert out.strip() == ("linked main:101 -> spare:7001 (backup 1), cost $1.20 -> $2.03"
                           " per 1000")
    code, out, _ = await main_in("routes", "link", "main:101", "spare:7900")
    assert code == 0 and "(backup 2)" in out
    code, out, _ = await main_in("routes", "list")
    listed = out.splitlines()
    assert len(listed) == 2
    assert listed[0].startswith("main:101 -> spare:7001  backup 1  cost $1.20 -> $2.03 per 1000")
    assert listed[1].startswith("main:101 -> spare:7900  backup 2  cost $1.20 -> $4.50 per 1000")

    code, out, err = await main_in("routes", "suggest", "--limit", "200")
    assert code == 0, err
    assert "main:101 ->" not in out  # it has backups now
    assert "main:102 -> spare:7002" in out

    code, out, _ = await main_in("routes", "unlink", "main:101", "spare:7001")
    assert code == 0 and out.strip() == "unlinked main:101 -> spare:7001"
    code, out, _ = await main_in("routes", "list")
    assert [line.split("  ")[0] for line in out.splitlines()] == ["main:101 -> spare:7900"]
    async with Database(two_panels) as db:
        await db.open()
        rows = await db.fetchall("SELECT admin_id, action FROM audit_log ORDER BY id")
    assert [tuple(r) for r in rows] == [(0, "route_link"), (0, "route_link"), (0, "route_unlink")]


async def test_refusals_are_one_line_with_exit_codes(two_panels: Path, main_in: MainIn) -> None:
    for argv, expected in [
        (("link", "main:101", "main:102"),
         "refused: main:102 is on the same panel as main:101: a backup must be on another panel."),
        (("link", "main:101", "spare:7904"),
         "refused: spare:7904 takes “Package” orders and main:101 “Default” ones: a backup must"
         " take the same kind of order."),
        (("link", "main:101", "spare:404404"),
         "refused: spare:404404 is not in the catalog (as the panels last listed it)."),
        (("unlink", "main:101", "spare:7001"), "refused: spare:7001 is not a backup of main:101."),
    ]:
        code, out, err = await main_in("routes", *argv)
        assert (code, out) == (1, ""), argv
        assert one_line(err) == expected
    await main_in("routes", "link", "main:101", "spare:7001")
    code, _, err = await main_in("routes", "link", "main:101", "spare:7001")
    assert code == 1 and one_line(err) == "refused: spare:7001 is already a backup of main:101."
    code, _, err = await main_in("routes", "link", "spare:7001", "main:101")
    assert code == 1 and "round in a circle" in one_line(err)

    code, _, err = await run_cli("routes", "link", "main101", "spare:7001", cwd=two_panels.parent)
    assert code == 2 and "PANEL:SERVICE" in err and "Traceback" not in err
    code, out, _ = await run_cli("routes", "--help", cwd=two_panels.parent)
    assert code == 0 and "PANEL:SERVICE" in out and "main:101" in out


async def test_one_panel_or_no_database(two_panels: Path, main_in: MainIn,
                                        monkeypatch: pytest.MonkeyPatch,
                                        tmp_path: Path) -> None:
    monkeypatch.delenv("PANELS")
    code, _, err = await main_in("routes", "suggest")
    assert code == 2 and one_line(err).startswith("Backups need a second panel")
    monkeypatch.setenv("DATABASE_PATH", str(tmp_path / "nothing.sqlite3"))
    code, _, err = await main_in("routes", "list")
    assert code == 2 and one_line(err).startswith("no database at ")
    assert not (tmp_path / "nothing.sqlite3").exists()
