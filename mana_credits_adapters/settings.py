"""Settings from the environment (the names of the API contract, plus a few of ours).

Only the documented names configure the service: each field is read from its alias
(`MANA_CREDITS_HOME`, `MANA_AUTH_URL`, ...), never from its Python name (`HOME` or
`AUTH_URL` in the environment mean something else or nothing). Code may pass either.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import InvalidSetting
from .networks import networks_setting

DEV_SERVICE_KEY = "dev-service-key"
DEFAULT_PORT = 3061
MAX_PORT = 65535
DEV_ISSUER = f"http://localhost:{DEFAULT_PORT}"


def default_home() -> Path:
    """`$HOME/.mana-credits`, looked up when settings are made (not at import)."""
    return Path.home() / ".mana-credits"


# The scheme of the URLs operators already have, whatever driver they name.
_SCHEME = re.compile(r"^(postgres|postgresql|sqlite)(\+\w+)?://")
_OUR_DRIVERS = {
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "sqlite": "sqlite+aiosqlite",
}


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def log_level_setting(value: str) -> str:
    """`LOG_LEVEL`: one of `LOG_LEVELS`, in any case; upper-cased."""
    level = value.strip().upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"pass one of {', '.join(LOG_LEVELS)}")
    return level


BAD_URL = (
    "pass an http:// or https:// URL with a host and no credentials, blanks or query,"
    " e.g. https://credits.example"
)


def http_url_setting(value: str) -> str:
    """A URL setting (`BASE_URL`, `MANA_AUTH_URL`, ...): empty (not set), or an absolute
    http or https URL naming a host (port 1..65535 if given), without credentials,
    blanks, controls, query or fragment; surrounding blanks dropped. Raises
    `ValueError` saying what to pass."""
    url = value.strip()
    if not url:
        return url
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a port that is no number or too large
    except ValueError:
        raise ValueError(BAD_URL) from None
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.username is not None  # credentials would travel in every link
        or port == 0
        or parts.query
        or parts.fragment
        or any(c.isspace() or not c.isprintable() for c in url)
    ):
        raise ValueError(BAD_URL)
    return url


def origins_setting(value: str) -> str:
    """`CORS_ORIGINS`: comma-separated origins as browsers send them in `Origin`
    (`https://app.example`, `http://localhost:5173`: scheme, host and port, no path, not
    even `/`), or empty. `*` is refused: answers carry credentials, which a wildcard
    may not. Raises `ValueError` naming the first bad origin."""
    for origin in (part.strip() for part in value.split(",")):
        if not origin:
            continue
        try:
            http_url_setting(origin)
        except ValueError:
            has_path = True
        else:
            has_path = bool(urlsplit(origin).path)
        if has_path:
            raise ValueError(
                f"{origin!r} is not an origin: pass scheme://host[:port] without a path"
                " (no trailing /), e.g. https://app.example"
            )
    return value


def normalise_database_url(url: str) -> str:
    """Accept the URLs operators already have (`postgres://`, `postgresql+psycopg2://`,
    `sqlite:///`...) and pick our async drivers for them; anything else is left as is."""
    found = _SCHEME.match(url)
    if found is None:
        return url
    return f"{_OUR_DRIVERS[found.group(1)]}://{url[found.end() :]}"


class Settings(BaseSettings):
    """Every knob of the service; read from the environment, overridable in code.

    `Settings(MANA_CREDITS_HOME=...)` and `Settings(home=...)` both override a field; the
    environment is read under the documented (alias) names only, case-sensitively.

    Raises `InvalidSetting` (a `ValueError`) naming the setting when a value is unusable
    or a code override names no setting.
    """

    # `populate_by_name` would make the environment source read `HOME`, `AUTH_URL`...
    # too: field names are mapped to aliases in `__init__` instead, for code only.
    # `env_ignore_empty`: `MANA_CREDITS_HOME=` (or any setting left empty) means unset,
    # never "the current folder" or an empty secret standing in for a missing one.
    model_config = SettingsConfigDict(
        env_prefix="",
        extra="forbid",
        populate_by_name=False,
        case_sensitive=True,
        env_ignore_empty=True,
    )

    port: int = Field(DEFAULT_PORT, alias="PORT", ge=0, le=MAX_PORT)
    home: Path = Field(default_factory=default_home, alias="MANA_CREDITS_HOME")
    database_url: str = Field("", alias="DATABASE_URL")
    auth_url: Annotated[str, AfterValidator(http_url_setting)] = Field("", alias="MANA_AUTH_URL")
    service_key: str = Field("", alias="MANA_SERVICE_KEY")
    # Empty means `http://localhost:<PORT>`: links point at the port being served.
    base_url: Annotated[str, AfterValidator(http_url_setting)] = Field("", alias="BASE_URL")
    stripe_secret_key: str = Field("", alias="STRIPE_SECRET_KEY")
    stripe_webhook_secret: str = Field("", alias="STRIPE_WEBHOOK_SECRET")
    stripe_api_base: Annotated[str, AfterValidator(http_url_setting)] = Field(
        "", alias="STRIPE_API_BASE"
    )
    cors_origins: Annotated[str, AfterValidator(origins_setting)] = Field("", alias="CORS_ORIGINS")
    notify_url: Annotated[str, AfterValidator(http_url_setting)] = Field(
        "", alias="MANA_NOTIFY_URL"
    )
    # The operator console's session key; empty: a random one kept in the home folder.
    console_secret: str = Field("", alias="MANA_CONSOLE_SECRET")

    db_pool_size: int = Field(10, alias="MANA_CREDITS_DB_POOL_SIZE", ge=1)
    db_max_overflow: int = Field(10, alias="MANA_CREDITS_DB_MAX_OVERFLOW", ge=0)
    db_pool_timeout: float = Field(5.0, alias="MANA_CREDITS_DB_POOL_TIMEOUT", gt=0)
    db_probe_interval_seconds: float = Field(10.0, alias="MANA_CREDITS_DB_PROBE_INTERVAL", gt=0)
    auto_migrate: bool | None = Field(None, alias="MANA_CREDITS_AUTO_MIGRATE")
    reservation_ttl_seconds: int = Field(900, alias="MANA_CREDITS_RESERVATION_TTL", ge=1)
    sweep_interval_seconds: float = Field(60.0, alias="MANA_CREDITS_SWEEP_INTERVAL", gt=0)
    # The console's reconcile status: a full read of balances, lots and holds, hourly.
    reconcile_interval_seconds: float = Field(3600.0, alias="MANA_CREDITS_RECONCILE_INTERVAL", gt=0)
    # Credits; a debit taking the spendable balance below it notifies the user. 0: never.
    low_balance_credits: int = Field(50, alias="MANA_CREDITS_LOW_BALANCE", ge=0)
    max_body_bytes: int = Field(64 * 1024, alias="MANA_CREDITS_MAX_BODY_BYTES", ge=1024)
    debit_batching: bool = Field(True, alias="MANA_CREDITS_DEBIT_BATCHING")
    debit_batch_max: int = Field(256, alias="MANA_CREDITS_DEBIT_BATCH_MAX", ge=1, le=10_000)
    debit_batch_wait_ms: float = Field(0.0, alias="MANA_CREDITS_DEBIT_BATCH_WAIT_MS", ge=0, le=100)
    debit_writers: int = Field(1, alias="MANA_CREDITS_DEBIT_WRITERS", ge=1, le=64)
    log_level: Annotated[str, AfterValidator(log_level_setting)] = Field("INFO", alias="LOG_LEVEL")
    billing_enabled: bool = Field(True, alias="MANA_CREDITS_BILLING_ENABLED")
    billing_interval_seconds: float = Field(3600.0, alias="MANA_CREDITS_BILLING_INTERVAL", gt=0)
    gift_failures_allowed: int = Field(30, alias="MANA_CREDITS_GIFT_FAILURES", ge=1)
    gift_failure_window_seconds: float = Field(600.0, alias="MANA_CREDITS_GIFT_WINDOW", gt=0)
    # Reverse proxies whose X-Forwarded-For names the client the gift-guessing limit counts.
    trusted_proxies: Annotated[str, AfterValidator(networks_setting)] = Field(
        "", alias="MANA_CREDITS_TRUSTED_PROXIES"
    )
    # Headers and body, from the request's first byte (a new connection's opening).
    request_read_timeout_seconds: float = Field(
        30.0, alias="MANA_CREDITS_REQUEST_READ_TIMEOUT", gt=0
    )
    # On SIGTERM: how long requests under way get to finish. `serve --workers N` kills a
    # worker still stopping after twice that plus 5 s (its cleanup's share).
    shutdown_timeout_seconds: float = Field(
        10.0, alias="MANA_CREDITS_SHUTDOWN_TIMEOUT", gt=0, le=3600
    )
    # Per client address and process; 0: no cap. Trusted proxies are never capped.
    max_connections_per_client: int = Field(
        128, alias="MANA_CREDITS_MAX_CONNECTIONS_PER_CLIENT", ge=0
    )
    gift_expiry_interval_seconds: float = Field(
        300.0, alias="MANA_CREDITS_GIFT_EXPIRY_INTERVAL", gt=0
    )
    # Bounded: past it, a key the auth service withdrew would stay trusted too long.
    jwks_refresh_interval_seconds: float = Field(
        300.0, alias="MANA_CREDITS_JWKS_REFRESH_INTERVAL", gt=0, le=3600
    )
    _base_url_given: bool = PrivateAttr(default=False)

    def __init__(self, **values: Any) -> None:
        given = {_ALIASES.get(name, name): value for name, value in values.items()}
        try:
            super().__init__(**given)
        except ValidationError as exc:
            raise InvalidSetting(describe_invalid(exc)) from exc

    @field_validator("database_url")
    @classmethod
    def _normalise(cls, value: str) -> str:
        return normalise_database_url(value.strip())

    @model_validator(mode="after")
    def _default_base_url(self) -> Settings:
        self._base_url_given = bool(self.base_url.strip())
        if not self._base_url_given:
            self.base_url = f"http://localhost:{self.port}"
        return self

    @property
    def effective_database_url(self) -> str:
        """`DATABASE_URL`, or the embedded default: a SQLite file under the home folder."""
        return self.database_url or f"sqlite+aiosqlite:///{self.home / 'credits.db'}"

    @property
    def is_embedded(self) -> bool:
        return not self.effective_database_url.startswith("postgresql")

    @property
    def migrate_on_start(self) -> bool:
        # The embedded default creates its schema itself; production runs `db upgrade`.
        return self.is_embedded if self.auto_migrate is None else self.auto_migrate

    @property
    def service_keys(self) -> list[str]:
        """Accepted service keys; several (comma-separated) while one is rotated out.

        The embedded default accepts the well-known dev key when none is configured.
        """
        keys = [key.strip() for key in self.service_key.split(",") if key.strip()]
        if not keys and self.is_embedded:
            return [DEV_SERVICE_KEY]
        return keys

    @property
    def dev_identity(self) -> bool:
        """Without `MANA_AUTH_URL` the embedded default signs and verifies its own tokens."""
        return not self.auth_url and self.is_embedded

    @property
    def issuer(self) -> str:
        """`MANA_AUTH_URL`, else `BASE_URL`; without either, one fixed URL whatever the
        port, so `dev token` (run without `PORT`) mints tokens a server on any port takes."""
        if self.auth_url:
            return self.auth_url.rstrip("/")
        return (self.base_url if self._base_url_given else DEV_ISSUER).rstrip("/")

    @property
    def cors_origin_list(self) -> list[str]:
        return [origin.strip() for origin in self.cors_origins.split(",") if origin.strip()]

    def production_problems(self) -> list[str]:
        """Why this configuration must not serve production traffic (empty if fine)."""
        if self.is_embedded:
            return []
        problems = []
        keys = self.service_keys
        if not keys:
            problems.append("MANA_SERVICE_KEY is not set")
        elif DEV_SERVICE_KEY in keys:
            problems.append("MANA_SERVICE_KEY is the public development key")
        if not self.auth_url:
            problems.append("MANA_AUTH_URL is not set")
        if not self.stripe_secret_key:
            problems.append("STRIPE_SECRET_KEY is not set")
        if not self.stripe_webhook_secret:
            problems.append("STRIPE_WEBHOOK_SECRET is not set")
        return problems


_ALIASES = {name: field.alias for name, field in Settings.model_fields.items() if field.alias}


def describe_invalid(error: ValidationError) -> str:
    """One line naming each bad setting, its value and pydantic's reason.

    Only numbers, booleans, the log level and proxy networks can fail (every secret is
    free text), so no secret is ever repeated here.
    """
    problems = []
    for item in error.errors(include_url=False):
        name = ".".join(str(part) for part in item["loc"]) or "settings"
        if item["type"] == "extra_forbidden":
            problems.append(f"{name} is not a setting")
            continue
        reason = item["msg"].removeprefix("Value error, ")  # our validators' own words
        problems.append(f"{name}={item.get('input')!r}: {reason}")
    return "; ".join(problems) + ", see the Configuration table of the README"
