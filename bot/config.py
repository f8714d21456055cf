"""Settings, read from the environment and ``.env`` (see ``.env.example``).

``load_settings()`` turns any missing or malformed setting into ``ConfigError``
whose text is one line naming the setting; ``python -m bot`` prints it and exits
instead of showing a traceback.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.shop.money.amounts import exponent

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from bot.panel import PanelClient

SANDBOX_PANEL_NAME = "sandbox"
ROUTINGS = ("priority", "cheapest")  # bot/shop/routing/failover.py Routing
_TOKEN_SHAPE = re.compile(r"^\d{3,20}:[A-Za-z0-9_-]{30,}$")
_NAME_SHAPE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


class ConfigError(Exception):
    """A setting is missing or malformed; the message names it."""


class StartupError(Exception):
    """The bot cannot start for a reason outside its settings' syntax (Telegram
    unreachable or refusing the token, a database file that cannot be opened...):
    the message is one line that says what is wrong and what to do."""


def _check_url(value: str, setting: str) -> str:
    value = value.strip()
    if value and not re.match(r"^https?://[^\s/]+", value):
        raise ValueError(f"{setting} must be an http(s) URL, got {value!r}")
    if value:
        # The shape test lets through a bad port or bracket, which the HTTP client
        # would only reject at the first request, with the whole URL in its error.
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - parsing the port is the check
        except ValueError as exc:
            raise ValueError(f"not a valid URL ({exc}): {value!r}") from None
        if not parts.hostname:
            raise ValueError(f"no host name in {value!r}")
    return value


class PanelSettings(BaseModel):
    """One SMM panel. ``rate_limit`` is requests per second (0: no limit)."""

    name: str
    url: str
    key: SecretStr
    rate_limit: float = Field(default=1.0, ge=0, le=1000)
    timeout: float = Field(default=30.0, gt=0, le=600)
    currency: str | None = None  # learned from the panel's balance when not set
    fx_rate: Decimal | None = Field(default=None, gt=0)  # panel currency -> shop; else FX_RATE

    def client(self) -> PanelClient:
        from bot.panel import PanelClient

        return PanelClient(self.url, self.key, name=self.name, rate_limit=self.rate_limit,
                           timeout=self.timeout)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME_SHAPE.match(value):
            raise ValueError("a panel name is 1-32 of a-z, 0-9, '-' and '_'")
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        value = _check_url(value, "url")
        if not value:
            raise ValueError("url is empty")
        return value

    @field_validator("key")
    @classmethod
    def _key(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("key is empty")
        return SecretStr(value.get_secret_value().strip())

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str | None) -> str | None:
        return _currency_code(value) if value else None


MAX_TELEGRAM_ID = 2**52  # Telegram: user ids fit in 52 bits (a double holds them exactly)


def is_telegram_id(value: int) -> bool:
    return 0 < value <= MAX_TELEGRAM_ID


def _not_an_id(text: str) -> str:
    shown = text if len(text) <= 40 else text[:40] + "…"
    return (f"{shown!r} is not a Telegram user id (digits 0-9, more than 0, at most 2^52);"
            " ids are separated by commas, like 12345,67890")


def _currency_code(value: str) -> str:
    code = value.strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", code):
        raise ValueError(f"a currency is a three-letter code like USD, got {value!r}")
    return code


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    bot_token: SecretStr | None = None
    telegram_api_url: str = ""
    # Seconds to keep trying to reach Telegram at start-up before giving up
    # (0: one try). A minute rides out a network blip or a Bot API server starting next to us.
    telegram_wait: float = Field(default=60, ge=0, le=3600)
    panel_url: str = ""
    panel_key: SecretStr = SecretStr("")
    panel_name: str = "main"
    panel_rate_limit: float = Field(default=1.0, ge=0, le=1000)
    panel_timeout: float = Field(default=30.0, gt=0, le=600)
    panels: Annotated[list[PanelSettings], NoDecode] = []
    database_path: Path = Path("data/storefront.sqlite3")
    admin_ids: Annotated[list[int], NoDecode] = []
    shop_currency: str = "USD"
    # -99 to 10 000, at most two decimals: the admin's markup screen's rule (_markup).
    markup_percent: Decimal = Decimal("30")
    # A panel's cost moving more than this (percent) is told in the admins' digest.
    price_alert_percent: Decimal = Field(default=Decimal(10), ge=0, le=1000)
    fx_rate: Decimal = Field(default=Decimal("1"), gt=0)
    catalog_refresh: float = Field(default=30, ge=1, le=10_080)
    support_contact: str = Field(default="", max_length=200)
    redis_url: str = ""
    locales_dir: Path | None = None  # default: the locales/ folder shipped with the bot
    track_interval: float = Field(default=60, ge=1, le=86_400)
    send_rate: float = Field(default=25, gt=0, le=30)  # Telegram allows about 30/s per bot
    stars_per_unit: Decimal | None = Field(default=None, gt=0, le=1_000_000)  # empty: no Stars
    topup_amounts: Annotated[list[Decimal], NoDecode] = [Decimal(5), Decimal(10), Decimal(25),
                                                          Decimal(50)]
    topup_min: Decimal = Field(default=Decimal(1), gt=0)
    topup_max: Decimal = Field(default=Decimal(1000), gt=0, le=1_000_000)
    # Unpaid, unexpired top-up invoices a customer may have at once (a tap repeated
    # 300 times makes this many, then the customer is told to pay one or wait).
    topup_pending_max: int = Field(default=5, ge=1, le=100)
    # Referrals (README "Referrals"): the percent of each Stars top-up of a referred
    # customer credited to who invited them (0: the program is off), the percent to
    # their own referrer (0: no second level), and the smallest top-up that earns.
    referral_percent: Decimal = Field(default=Decimal(0), ge=0, le=100)
    referral_percent_2: Decimal = Field(default=Decimal(0), ge=0, le=100)
    referral_min_topup: Decimal = Field(default=Decimal(0), ge=0, le=1_000_000)  # SHOP_CURRENCY
    sandbox_dialect: str = "perfectpanel"
    sandbox_pace: float = Field(default=10.0, gt=0, le=86_400)
    sandbox_port: int = Field(default=0, ge=0, le=65_535)
    log_level: str = "INFO"
    panel_balance_alert: Decimal | None = Field(default=None, gt=0)  # SHOP_CURRENCY; empty: off
    panel_down_alert: float = Field(default=10, ge=1, le=10_080)  # minutes
    daily_report_hour: int | None = Field(default=None, ge=0, le=23)  # empty: no summary
    shop_timezone: str = "UTC"
    # Deployment (issue 14). Webhook mode when WEBHOOK_URL is set, long polling otherwise.
    webhook_url: str = ""
    webhook_host: str = "0.0.0.0"  # noqa: S104 (a web process listens on every interface)
    webhook_port: int | None = Field(default=None, ge=1, le=65_535)  # empty: PORT, else 8080
    port: int | None = Field(default=None, ge=1, le=65_535)  # set by Heroku, Render, Railway...
    webhook_secret: SecretStr | None = None  # empty: generated once, kept in the database
    health_port: int | None = Field(default=None, ge=1, le=65_535)  # polling mode's /healthz
    shutdown_grace: float = Field(default=20, ge=0, le=600)  # seconds for in-flight work
    log_format: str = "text"  # text | json
    backup_interval_hours: float | None = Field(default=None, gt=0, le=24 * 365)  # empty: off
    backup_dir: Path = Path("data/backups")
    backup_keep: int = Field(default=7, ge=1, le=1000)
    # Days old rows are kept (expired unpaid top-ups, closed outbox rows), pruned
    # daily (bot/shop/backoffice/retention.py); 0: kept for ever. Money records are never pruned.
    retention_days: int = Field(default=30, ge=0, le=36_500)
    # Growth (issue 21). LOYALTY_TIERS: "spend:percent" pairs, e.g. 100:3,500:5,1000:10
    # (spend in SHOP_CURRENCY: what a customer paid for orders, less refunds); empty: off.
    loyalty_tiers: Annotated[list[tuple[Decimal, Decimal]], NoDecode] = []
    discount_max_percent: Decimal = Field(default=Decimal(50), gt=0, le=100)  # tiers', codes'
    # Routing (issue 22, README "Routing across panels"): which panel an order tries
    # first (priority: the service's own, then its backups as linked; cheapest: the
    # lowest cost for the order), and the least margin, in percent of the price the
    # customer confirmed, a panel's cost must leave for it to take the order.
    routing: str = "priority"
    min_margin_percent: Decimal = Field(default=Decimal(5), ge=0, le=100)
    # Wholesale API (issue 23, README "API for your resellers"): API v2 served to the
    # shop's own customers with their keys, on the webhook's server, else HEALTH_PORT's,
    # or a server of its own on API_PORT. API_PUBLIC_URL is the address customers are
    # shown (empty: WEBHOOK_URL's host with API_PATH).
    api_enabled: bool = False
    api_public_url: str = ""
    api_path: str = "/api/v2"
    api_port: int | None = Field(default=None, ge=1, le=65_535)
    api_rate_limit: int = Field(default=60, ge=1, le=100_000)  # requests a minute per key

    @field_validator("bot_token", mode="before")
    @classmethod
    def _token(cls, value: Any) -> Any:
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if text is None or not str(text).strip():
            return None
        if not _TOKEN_SHAPE.match(str(text).strip()):
            raise ValueError("this is not a bot token (it looks like 123456:ABC..., from @BotFather)")
        return str(text).strip()

    @field_validator("telegram_api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        return _check_url(value, "TELEGRAM_API_URL").rstrip("/")

    @field_validator("panel_url")
    @classmethod
    def _panel_url(cls, value: str) -> str:
        return _check_url(value, "PANEL_URL")

    @field_validator("panels", mode="before")
    @classmethod
    def _panels(cls, value: Any) -> Any:
        if isinstance(value, str):
            if not value.strip():
                return []
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not valid JSON ({exc.msg} at character {exc.pos})") from None
            if not isinstance(value, list):
                raise ValueError('must be a JSON list like [{"name": "a", "url": ..., "key": ...}]')
        return value

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _admins(cls, value: Any) -> Any:
        if isinstance(value, str):
            parts = [part for part in re.split(r"[,\s]+", value.strip()) if part]
            for part in parts:
                # ASCII digits only: int() also reads "٣", "+5" and " 7", and float-ish
                # "1e3" is nobody's id.
                if (not re.fullmatch(r"[0-9]+", part) or len(part.lstrip("0")) > 16
                        or not is_telegram_id(int(part))):
                    raise ValueError(_not_an_id(part))
            return [int(part) for part in parts]
        return value

    @field_validator("admin_ids")
    @classmethod
    def _admin_range(cls, value: list[int]) -> list[int]:
        # An id SQLite cannot store made every alert fail, for the valid admins too.
        for admin_id in value:
            if not is_telegram_id(admin_id):
                raise ValueError(_not_an_id(str(admin_id)))
        return value

    @field_validator("stars_per_unit", mode="before")
    @classmethod
    def _stars_per_unit(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("topup_amounts", mode="before")
    @classmethod
    def _topup_amounts(cls, value: Any) -> Any:
        if isinstance(value, str):
            parts = [part for part in re.split(r"[,\s]+", value.strip()) if part]
            try:
                return [Decimal(part) for part in parts]
            except ArithmeticError:
                raise ValueError("must be amounts separated by commas, like 5,10,25,50") from None
        return value

    @field_validator("loyalty_tiers", mode="before")
    @classmethod
    def _loyalty_tiers(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        tiers = []
        for part in (p for p in re.split(r"[,\s]+", value.strip()) if p):
            spend, _, percent = part.partition(":")
            try:
                tier = (Decimal(spend), Decimal(percent))
            except ArithmeticError:
                tier = (Decimal("NaN"), Decimal("NaN"))
            if not all(x.is_finite() for x in tier):
                raise ValueError(f"{part!r} is not spend:percent; write them like"
                                 " 100:3,500:5,1000:10")
            tiers.append(tier)
        return tiers

    @field_validator("markup_percent", mode="before")
    @classmethod
    def _markup(cls, value: Any) -> Decimal:
        """The rule the admin's markup screen applies (one rule for both)."""
        from bot.shop.catalog.admin import MarkupInvalid, parse_percent

        try:
            return parse_percent(str(value))
        except MarkupInvalid as exc:
            raise ValueError(f"{str(value)[:30]!r} is no markup ({exc}): write a percent from"
                             " -99 to 10000 with at most two decimals, like 30 or 12.5") from None

    @field_validator("referral_percent", "referral_percent_2", "referral_min_topup",
                     mode="before")
    @classmethod
    def _empty_is_zero(cls, value: Any) -> Any:
        return "0" if isinstance(value, str) and not value.strip() else value

    @field_validator("referral_percent", "referral_percent_2")
    @classmethod
    def _percent_places(cls, value: Decimal) -> Decimal:
        if value != value.quantize(Decimal("0.01")):
            raise ValueError(f"{value} has more than 2 decimals (a percent like 5 or 2.5)")
        return value

    @field_validator("panel_balance_alert", "daily_report_hour", "webhook_port", "port",
                     "health_port", "backup_interval_hours", "api_port", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("shop_timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        value = value.strip() or "UTC"
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (like Europe/Berlin or UTC)") from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        from zoneinfo import ZoneInfo

        return ZoneInfo(self.shop_timezone)

    @field_validator("locales_dir", mode="before")
    @classmethod
    def _locales_dir(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("locales_dir")
    @classmethod
    def _locales_dir_exists(cls, value: Path | None) -> Path | None:
        # A typo here used to create an empty folder: a shop in English only, without a word.
        if value is not None and not value.is_dir():
            where = "" if value.is_absolute() else f" (in {Path.cwd()})"
            raise ValueError(f"no folder {str(value)!r}{where}: point it at a folder of"
                             " <lang>/LC_MESSAGES/messages.po, or leave it empty for the shipped"
                             " translations")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        # redis-py refuses any other scheme, but only when the first update arrives.
        value = value.strip()
        if value and not re.match(r"^(redis|rediss|unix)://", value):
            # Not echoed: the URL may hold the Redis password.
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, value: str) -> str:
        value = value.strip()
        if value and not re.match(r"^https://[^\s/]+", value):
            raise ValueError("must be the https:// URL Telegram should call, like "
                             "https://shop.example.com/telegram")
        return value

    @field_validator("api_public_url")
    @classmethod
    def _api_public_url(cls, value: str) -> str:
        value = value.strip()
        if value and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("must be the URL customers send API requests to, like"
                             " https://shop.example.com/api/v2")
        return value

    @field_validator("api_path")
    @classmethod
    def _api_path(cls, value: str) -> str:
        value = value.strip()
        if not re.fullmatch(r"/[A-Za-z0-9._~/-]*", value) or value in ("/healthz", "/metrics"):
            raise ValueError("must be a path like /api/v2 (not /healthz or /metrics)")
        return value

    @field_validator("webhook_secret", mode="before")
    @classmethod
    def _webhook_secret(cls, value: Any) -> Any:
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if text is None or not str(text).strip():
            return None
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(text).strip()):
            raise ValueError("1 to 256 characters of A-Z, a-z, 0-9, _ and - (Telegram's rule)")
        return str(text).strip()

    @field_validator("log_format")
    @classmethod
    def _log_format(cls, value: str) -> str:
        form = value.strip().lower()
        if form not in {"text", "json"}:
            raise ValueError("must be text or json")
        return form

    @property
    def listen_port(self) -> int:
        """Where webhook mode listens: WEBHOOK_PORT, else the platform's PORT, else 8080."""
        return self.webhook_port or self.port or 8080

    @field_validator("shop_currency")
    @classmethod
    def _shop_currency(cls, value: str) -> str:
        return _currency_code(value)

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return level

    @field_validator("routing")
    @classmethod
    def _routing(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in ROUTINGS:
            raise ValueError(f"must be one of {', '.join(ROUTINGS)}, got {value!r}")
        return value

    @field_validator("sandbox_dialect")
    @classmethod
    def _dialect(cls, value: str) -> str:
        from bot.panel.dialects import DIALECTS

        if value not in DIALECTS:
            raise ValueError(f"must be one of {', '.join(DIALECTS)}")
        return value

    @model_validator(mode="after")
    def _panel_list(self) -> Settings:
        if self.panel_url and not self.panel_key.get_secret_value().strip():
            raise ValueError("PANEL_KEY is empty while PANEL_URL is set")
        names = [p.name for p in self.panel_settings()]
        if len(names) != len(set(names)):
            raise ValueError("PANELS: two panels have the same name (PANEL_NAME counts too)")
        return self

    @model_validator(mode="after")
    def _top_ups(self) -> Settings:
        if self.topup_min > self.topup_max:
            raise ValueError("TOPUP_MIN is larger than TOPUP_MAX")
        places = exponent(self.shop_currency)
        for name, amount in [("TOPUP_MIN", self.topup_min), ("TOPUP_MAX", self.topup_max),
                             *(("TOPUP_AMOUNTS", a) for a in self.topup_amounts)]:
            if amount != amount.quantize(Decimal(1).scaleb(-places)):
                raise ValueError(f"{name}: {amount} has more decimals than {self.shop_currency}")
        if any(not self.topup_min <= a <= self.topup_max for a in self.topup_amounts):
            raise ValueError("TOPUP_AMOUNTS must be within TOPUP_MIN..TOPUP_MAX")
        return self

    @model_validator(mode="after")
    def _tiers(self) -> Settings:
        places = exponent(self.shop_currency)
        last_spend, last_percent = Decimal(0), Decimal(0)
        for spend, percent in self.loyalty_tiers:
            if spend != spend.quantize(Decimal(1).scaleb(-places)) or spend <= 0:
                raise ValueError(f"LOYALTY_TIERS: {spend} is no amount of {self.shop_currency}")
            if not 0 < percent <= self.discount_max_percent:
                raise ValueError(f"LOYALTY_TIERS: {percent}% must be above 0 and at most"
                                 f" DISCOUNT_MAX_PERCENT ({self.discount_max_percent})")
            if spend <= last_spend or percent <= last_percent:
                raise ValueError("LOYALTY_TIERS: each tier needs more spend and gives more"
                                 " percent than the one before, like 100:3,500:5,1000:10")
            last_spend, last_percent = spend, percent
        return self

    @model_validator(mode="after")
    def _referrals(self) -> Settings:
        if self.referral_percent_2 and not self.referral_percent:
            raise ValueError("REFERRAL_PERCENT_2 pays the referrer's referrer: it needs"
                             " REFERRAL_PERCENT above 0 too")
        if self.referral_percent + self.referral_percent_2 > 100:
            raise ValueError("REFERRAL_PERCENT and REFERRAL_PERCENT_2 together are more than 100")
        places = exponent(self.shop_currency)
        if self.referral_min_topup != self.referral_min_topup.quantize(Decimal(1).scaleb(-places)):
            raise ValueError(f"REFERRAL_MIN_TOPUP: {self.referral_min_topup} has more decimals"
                             f" than {self.shop_currency}")
        return self

    @model_validator(mode="after")
    def _api(self) -> Settings:
        if not self.api_enabled:
            return self
        if self.webhook_url and urlsplit(self.webhook_url).path == self.api_path:
            raise ValueError("API_PATH is WEBHOOK_URL's path: give the API another path")
        if not self.webhook_url and self.api_port is None and self.health_port is None:
            raise ValueError("API_ENABLED needs a port in polling mode: set API_PORT (or"
                             " HEALTH_PORT, whose server then serves the API too)")
        taken = self.listen_port if self.webhook_url else self.health_port
        if self.api_port is not None and self.api_port == taken:
            raise ValueError(f"API_PORT {self.api_port} is the port the bot's web server uses"
                             " already: leave API_PORT empty to serve the API there")
        return self

    @property
    def api_url(self) -> str | None:
        """Where customers send API requests: API_PUBLIC_URL, else WEBHOOK_URL's origin
        with API_PATH (when the API is on the webhook's server); ``None``: unknown, the
        owner must set API_PUBLIC_URL."""
        if self.api_public_url:
            return self.api_public_url
        if self.webhook_url and self.api_port is None:
            parts = urlsplit(self.webhook_url)
            return f"{parts.scheme}://{parts.netloc}{self.api_path}"
        return None

    @property
    def referrals_enabled(self) -> bool:
        """Whether the referral program runs (REFERRAL_PERCENT above 0)."""
        return self.referral_percent > 0

    @property
    def stars_enabled(self) -> bool:
        return self.stars_per_unit is not None

    def required_token(self) -> SecretStr:
        """``BOT_TOKEN``, which running the bot needs (the command line's other
        commands do not); ``ConfigError`` saying how to get one when it is not set."""
        if self.bot_token is None:
            raise ConfigError("configuration error: BOT_TOKEN is not set: create a bot with"
                              " @BotFather in Telegram (/newbot) and put its token in .env as"
                              " BOT_TOKEN=...")
        return self.bot_token

    def panel_settings(self) -> list[PanelSettings]:
        """Every configured panel: ``PANEL_URL`` first, then ``PANELS``. Empty: sandbox."""
        configured = list(self.panels)
        if self.panel_url:
            configured.insert(0, PanelSettings(
                name=self.panel_name, url=self.panel_url, key=self.panel_key,
                rate_limit=self.panel_rate_limit, timeout=self.panel_timeout,
            ))
        return configured

    def secrets(self) -> list[str]:
        """Every secret value, for the log redactor."""
        values = [p.key.get_secret_value() for p in self.panel_settings()]
        if self.bot_token is not None:
            values.append(self.bot_token.get_secret_value())
        return [v for v in values if v]


def startup_warnings(settings: Settings) -> list[str]:
    """What is allowed but most likely a mistake, one line each (logged once the
    start-up checks passed, not fatal): no ADMIN_IDS, the API without its address,
    a negative MARKUP_PERCENT, referrals without Stars."""
    warnings = []
    if not settings.admin_ids:
        warnings.append("ADMIN_IDS is empty: nobody gets the shop's alerts or /paysupport"
                        " messages, and nobody can open the admin panel")
    if settings.api_enabled and settings.api_url is None:
        warnings.append("API_ENABLED is on but the API's public address is unknown: set"
                        " API_PUBLIC_URL (customers' /api screen says it is not set yet)")
    if settings.markup_percent < 0:
        warnings.append(f"MARKUP_PERCENT is {settings.markup_percent}: below the panels' cost,"
                        " so every service priced by it is hidden (never sold at a loss) until"
                        " a markup of its own, its category's or the admin's global one covers it")
    if settings.referrals_enabled and not settings.stars_enabled:
        warnings.append("REFERRAL_PERCENT is set but STARS_PER_UNIT is empty: referrals earn"
                        " only on Stars top-ups, so nobody will earn anything")
    return warnings


# How close a variable of the process environment must be to a setting's name to
# be taken for a misspelling of it. The environment holds much else (PATH, HOME,
# a platform's own variables): 0.8 names ADMIN_ID, BOTTOKEN, HEALTHPORT or
# SHOP_CURENCY, and none of the usual ones (HOSTNAME, PYTHONPATH, API_KEY, ...).
ENVIRONMENT_CUTOFF = 0.8


def misspelt_settings(env_file: Path | None = None,
                      environ: Mapping[str, str] | None = None) -> list[str]:
    """Keys that are no setting, one line each, said before the settings are read
    (a misspelt BOT_TOKEN is the reason "BOT_TOKEN is not set"): every key of
    ``.env`` (all of them are meant for the bot), and variables of the process
    environment that look like a setting's name (``docker run --env-file``, a
    platform's variables and systemd's ``EnvironmentFile`` arrive there)."""
    names = [name.upper() for name in Settings.model_fields]
    path = env_file or Path(str(Settings.model_config.get("env_file") or ".env"))
    warnings = []
    in_file = set()
    for key in _env_file_keys(path):
        in_file.add(key.upper())
        if key.upper() in names:
            continue
        close = difflib.get_close_matches(key.upper(), names, n=1)
        hint = f": did you mean {close[0]}?" if close else " (ignored)"
        warnings.append(f"{path} sets {key}, which is no setting{hint}")
    environment = os.environ if environ is None else environ
    for key in sorted(environment):
        if key.upper() in names or key.upper() in in_file:
            continue
        close = difflib.get_close_matches(key.upper(), names, n=1, cutoff=ENVIRONMENT_CUTOFF)
        if close:
            warnings.append(f"the environment sets {key}, which is no setting: did you mean"
                            f" {close[0]}?")
    return warnings


def _env_file_keys(path: Path) -> list[str]:
    from dotenv import dotenv_values

    if not path.is_file():
        return []
    try:
        return [key for key in dotenv_values(path, encoding="utf-8") if key]
    except (OSError, UnicodeDecodeError):  # pydantic-settings reads it too, and says so
        return []


def compiled_translations(path: Path) -> list[str]:
    """The languages in the translations folder ``path`` (LOCALES_DIR, or the shipped
    one), each ``.po`` compiled to its ``.mo`` when that is older; a folder that is
    not there, or where the ``.mo`` files can't be written, is a ``ConfigError``."""
    from bot.shop.messaging.translation_files import compile_locales

    if not path.is_dir():
        raise ConfigError(f"configuration error: LOCALES_DIR: no folder {str(path)!r}: point it at"
                          " a folder of <lang>/LC_MESSAGES/messages.po, or leave it empty for the"
                          " shipped translations")
    try:
        return compile_locales(path)
    except OSError as exc:  # a read-only install: the .mo files cannot be written next to the .po
        raise ConfigError(f"configuration error: LOCALES_DIR: cannot compile the translations in"
                          f" {path} ({exc.strerror or exc}): make the folder writable, or copy it"
                          " somewhere writable and point LOCALES_DIR there") from None


def load_settings(**overrides: Any) -> Settings:
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    location = [str(part) for part in error.get("loc", ()) if part != "__root__"]
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    if not location:
        return f"configuration error: {message}"
    setting = location[0].upper()
    detail = f" (item {'.'.join(location[1:])})" if len(location) > 1 else ""
    return f"configuration error: {setting}{detail}: {message}"
