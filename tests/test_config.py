"""Settings: every documented variable, and one clear line for each mistake."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.config import ConfigError, load_settings
from bot.logs import RedactSecrets

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
    ("TRACK_INTERVAL", "0.5", "configuration error: TRACK_INTERVAL:"),
    ("SEND_RATE", "31", "configuration error: SEND_RATE:"),
    ("SANDBOX_DIALECT", "nope", "configuration error: SANDBOX_DIALECT:"),
    ("LOG_LEVEL", "LOUD", "configuration error: LOG_LEVEL:"),
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
