"""Settings: every documented variable, and one clear line for each mistake."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.config import ConfigError, load_settings
from bot.observability.logs import RedactSecrets

TOKEN = "123456789:AAExampleExampleExampleExampleExample"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)  # no developer .env leaks in
    for name in ("BOT_TOKEN", "TELEGRAM_API_URL", "PANEL_URL", "PANEL_KEY", "PANEL_NAME", "PANELS",
                 "DATABASE_PATH", "ADMIN_IDS", "SHOP_CURRENCY", "MARKUP_PERCENT", "TRACK_INTERVAL",
                 "SEND_RATE", "PANEL_RATE_LIMIT", "SANDBOX_DIALECT", "SANDBOX_PACE", "SANDBOX_PORT",
                 "LOG_LEVEL", "TELEGRAM_WAIT", "REDIS_URL", "LOCALES_DIR"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_use_the_sandbox() -> None:
    settings = load_settings()
    assert settings.panel_settings() == []
    assert settings.bot_token is None
    assert settings.shop_currency == "USD" and settings.markup_percent == Decimal(30)
    assert settings.track_interval == 60
    assert settings.routing == "priority" and settings.min_margin_percent == Decimal(5)
    assert str(settings.database_path).startswith("data")


def test_one_panel_and_several(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PANEL_URL", "https://panel.example/api/v2")
    monkeypatch.setenv("PANEL_KEY", "k1")
    monkeypatch.setenv("PANELS", '[{"name": "backup", "url": "https://b.example/api/v2", '
                                 '"key": "k2", "rate_limit": 2, "currency": "eur"}]')
    monkeypatch.setenv("ADMIN_IDS", "1, 2 3")
    monkeypatch.setenv("BOT_TOKEN", TOKEN)
    settings = load_settings()
    main, backup = settings.panel_settings()
    assert (main.name, main.url, main.rate_limit) == ("main", "https://panel.example/api/v2", 1.0)
    assert (backup.name, backup.currency, backup.rate_limit) == ("backup", "EUR", 2)
    assert settings.admin_ids == [1, 2, 3]
    assert "k1" not in repr(settings) and "k2" not in repr(settings) and TOKEN not in repr(settings)
    assert set(settings.secrets()) == {"k1", "k2", TOKEN}


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("BOT_TOKEN", "nonsense", "configuration error: BOT_TOKEN:"),
    ("TELEGRAM_API_URL", "localhost:8081", "configuration error: TELEGRAM_API_URL:"),
    ("TELEGRAM_API_URL", "http://localhost:99999", "configuration error: TELEGRAM_API_URL: not a"
     " valid URL (Port out of range"),
    ("TELEGRAM_API_URL", "http://[::1", "configuration error: TELEGRAM_API_URL: not a valid URL"),
    ("TELEGRAM_WAIT", "-1", "configuration error: TELEGRAM_WAIT:"),
    ("REDIS_URL", "localhost:6379", "configuration error: REDIS_URL: must be a redis://"),
    ("LOCALES_DIR", "no-such-folder", "configuration error: LOCALES_DIR: no folder 'no-such-folder'"),
    ("PANEL_URL", "panel.example", "configuration error: PANEL_URL:"),
    ("PANELS", "{}", "configuration error: PANELS:"),
    ("PANELS", '[{"name": "a", "url": "https://a.b"}]', "configuration error: PANELS (item 0.key)"),
    ("PANELS", '[{"name": "A B", "url": "https://a.b", "key": "k"}]',
     "configuration error: PANELS (item 0.name)"),
    ("ADMIN_IDS", "@admin", "configuration error: ADMIN_IDS:"),
    ("SHOP_CURRENCY", "US", "configuration error: SHOP_CURRENCY:"),
    ("MARKUP_PERCENT", "abc", "configuration error: MARKUP_PERCENT:"),
    # The admin's markup screen's rule: -99 … 10000, at most two decimals, said which.
    ("MARKUP_PERCENT", "12.555", "configuration error: MARKUP_PERCENT: '12.555' is no markup"
     " (more than two decimals): write a percent from -99 to 10000"),
    ("MARKUP_PERCENT", "1 000", "configuration error: MARKUP_PERCENT: '1 000' is no markup"
     " (a thousands separator)"),
    ("MARKUP_PERCENT", "-100", "configuration error: MARKUP_PERCENT: '-100' is no markup"
     " (outside -99 … 10000)"),
    ("PRICE_ALERT_PERCENT", "1001", "configuration error: PRICE_ALERT_PERCENT:"),
    ("PRICE_ALERT_PERCENT", "-1", "configuration error: PRICE_ALERT_PERCENT:"),
    ("TRACK_INTERVAL", "0.5", "configuration error: TRACK_INTERVAL:"),
    ("SEND_RATE", "31", "configuration error: SEND_RATE:"),
    ("SANDBOX_DIALECT", "nope", "configuration error: SANDBOX_DIALECT:"),
    ("LOG_LEVEL", "LOUD", "configuration error: LOG_LEVEL:"),
    ("ROUTING", "random", "configuration error: ROUTING: must be one of priority, cheapest"),
    ("MIN_MARGIN_PERCENT", "101", "configuration error: MIN_MARGIN_PERCENT:"),
    ("MIN_MARGIN_PERCENT", "-1", "configuration error: MIN_MARGIN_PERCENT:"),
])
def test_malformed_settings_name_themselves(monkeypatch: pytest.MonkeyPatch, name: str,
                                            value: str, expected: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith(expected), message
    assert "\n" not in message


def test_a_key_without_a_url_and_duplicate_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PANEL_URL", "https://a.example/api/v2")
    with pytest.raises(ConfigError, match="PANEL_KEY is empty"):
        load_settings()
    monkeypatch.setenv("PANEL_KEY", "k")
    monkeypatch.setenv("PANELS", '[{"name": "main", "url": "https://b.example", "key": "k2"}]')
    with pytest.raises(ConfigError, match="same name"):
        load_settings()


def test_a_redis_url_is_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "http://:hunter2-password@redis.example:6379")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "hunter2" not in str(info.value)


def test_locales_dir_must_be_a_folder(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    (tmp_path / "translations").mkdir()
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("LOCALES_DIR", "translations")
    assert str(load_settings().locales_dir) == "translations"
    monkeypatch.setenv("LOCALES_DIR", str(tmp_path / "a-file"))
    with pytest.raises(ConfigError, match="LOCALES_DIR: no folder"):
        load_settings()


def test_dotenv_file_is_read(tmp_path) -> None:
    (tmp_path / ".env").write_text("SHOP_CURRENCY=eur\nMARKUP_PERCENT=12.5\n")
    settings = load_settings()
    assert settings.shop_currency == "EUR" and settings.markup_percent == Decimal("12.5")


def test_redactor_hides_secrets_in_messages_and_tracebacks() -> None:
    import logging

    redactor = RedactSecrets(["super-secret-key"])
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "calling with %s", ("super-secret-key",),
                               None)
    redactor.filter(record)
    assert record.getMessage() == "calling with ***"
    try:
        raise ValueError("bad key super-secret-key")
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "boom", (), sys.exc_info())
    redactor.filter(record)
    assert "super-secret-key" not in (record.exc_text or "") and "***" in (record.exc_text or "")


def test_the_example_env_file_is_valid(tmp_path) -> None:
    from pathlib import Path

    example = Path(__file__).resolve().parent.parent / ".env.example"
    (tmp_path / ".env").write_text(example.read_text())
    settings = load_settings()
    assert settings.panel_settings() == []  # empty PANEL_URL: the sandbox
    assert settings.locales_dir is None and settings.redis_url == ""
    assert settings.telegram_wait == 60


# --- ADMIN_IDS: Telegram ids or a clear refusal; likely mistakes warned about -------------

def test_an_admin_id_sqlite_cannot_store_stops_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADMIN_IDS", "9009,99999999999999999999")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(info.value) == (
        "configuration error: ADMIN_IDS: '99999999999999999999' is not a Telegram user id"
        " (digits 0-9, more than 0, at most 2^52); ids are separated by commas, like 12345,67890")
    for wrong in ("٣", "+5", "1e3", "0", "-7", str(2**52 + 1), "12 ٣4", "1.0", "0x10"):
        with pytest.raises(ConfigError, match=r"^configuration error: ADMIN_IDS: "):
            load_settings(admin_ids=wrong)
    with pytest.raises(ConfigError, match=r"^configuration error: ADMIN_IDS: "):
        load_settings(admin_ids=[7, 2**63])  # given as numbers, not text
    assert load_settings(admin_ids=f"1, {2**52} 007").admin_ids == [1, 2**52, 7]


def _not_separator(char: str) -> bool:
    return char != "," and not char.isspace()


@given(st.lists(st.one_of(
    st.integers(min_value=-5, max_value=2**64).map(str),
    st.text(st.characters(codec="utf-8").filter(_not_separator), min_size=1, max_size=20),
), max_size=4))
def test_any_admin_ids_text_is_ids_or_one_line_naming_the_setting(parts: list[str]) -> None:
    text = ",".join(parts)

    def is_id(part: str) -> bool:
        return (part.isascii() and part.isdigit() and len(part.lstrip("0")) <= 16
                and 0 < int(part) <= 2**52)

    if all(is_id(part) for part in parts):
        assert load_settings(admin_ids=text).admin_ids == [int(part) for part in parts]
    else:
        with pytest.raises(ConfigError) as info:
            load_settings(admin_ids=text)
        assert str(info.value).startswith("configuration error: ADMIN_IDS: ")
        assert "\n" not in str(info.value)


def test_likely_mistakes_are_warned_about_not_fatal(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.config import misspelt_settings, startup_warnings  # new: the other tests run without it

    (tmp_path / ".env").write_text("ADMIN_ID=42\nshop_curency=EUR\nXYZZY=1\nMARKUP_PERCENT=12\n")
    settings = load_settings()
    assert startup_warnings(settings) == [
        "ADMIN_IDS is empty: nobody gets the shop's alerts or /paysupport messages, and nobody"
        " can open the admin panel"]
    # Every key of .env is meant for the bot; of the environment, only what looks like a
    # setting's name (the rest is the system's and the platform's).
    environment = {"SOMETHING_ELSE": "1", "HOSTNAME": "x", "PYTHONPATH": "x", "API_KEY": "x",
                   "REDIS_URL": "redis://r", "HEALTHPORT": "8080", "ADMIN_ID": "42"}
    assert misspelt_settings(environ=environment) == [
        ".env sets ADMIN_ID, which is no setting: did you mean ADMIN_IDS?",
        ".env sets shop_curency, which is no setting: did you mean SHOP_CURRENCY?",
        ".env sets XYZZY, which is no setting (ignored)",
        # ADMIN_ID once: systemd's EnvironmentFile puts .env's keys in the environment too
        "the environment sets HEALTHPORT, which is no setting: did you mean HEALTH_PORT?",
    ]
    (tmp_path / ".env").write_text("ADMIN_IDS=42\nmarkup_percent=12\n")
    assert startup_warnings(load_settings()) == []
    assert misspelt_settings(environ={"admin_ids": "42", "PATH": "/bin"}) == []


@pytest.mark.parametrize(("value", "markup"), [("-10", "-10"), ("-99", "-99"), ("12,5", "12.5"),
                                               ("10000", "10000"), ("0", "0")])
def test_markup_percent_takes_what_the_admin_screen_takes(value: str, markup: str) -> None:
    """One rule for MARKUP_PERCENT and the admin's markup screen (-10 was refused here
    while the screen took -99); a negative one starts, with a warning that says why
    services are hidden."""
    from bot.config import startup_warnings

    settings = load_settings(markup_percent=value, admin_ids="1")
    assert settings.markup_percent == Decimal(markup)
    warned = [w for w in startup_warnings(settings) if "MARKUP_PERCENT" in w]
    assert bool(warned) == (settings.markup_percent < 0), warned
