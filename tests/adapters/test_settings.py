"""Only the documented names configure the service; code overrides keep both spellings."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from mana_credits_adapters.errors import InvalidSetting
from mana_credits_adapters.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
FIELDS = Settings.model_fields
ALIASES = {name: str(field.alias) for name, field in FIELDS.items()}


def another_value(name: str) -> tuple[str, Any]:
    """A valid value for the field other than its default: as text, and as read back."""
    default = Settings(MANA_CREDITS_HOME="/unused").model_dump()[name]
    annotation = FIELDS[name].annotation
    if annotation is bool or name == "auto_migrate":
        return ("false", False) if default in (True, None) else ("true", True)
    if annotation is int:
        return str(default + 1), default + 1
    if annotation is float:
        return str(default + 1), default + 1
    if annotation is Path:
        return "/elsewhere", Path("/elsewhere")
    if name == "database_url":
        return "memory://leak", "memory://leak"
    if name == "trusted_proxies":
        return "192.0.2.7", "192.0.2.7"
    if name == "log_level":
        return "debug", "DEBUG"
    if name == "cors_origins":
        return "https://app.example", "https://app.example"
    if name in ("base_url", "auth_url", "stripe_api_base", "notify_url"):
        return "https://elsewhere.example", "https://elsewhere.example"
    return "leak", "leak"


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No setting in the environment under any spelling; HOME is a temporary folder."""
    for name, alias in ALIASES.items():
        for spelling in (name, name.upper(), alias, alias.lower()):
            monkeypatch.delenv(spelling, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def test_field_names_in_the_environment_configure_nothing(
    clean_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    baseline = Settings().model_dump()
    undocumented = set()
    for name, alias in ALIASES.items():
        text, _ = another_value(name)
        for spelling in (name, name.upper(), alias.lower()):
            if spelling != alias and spelling != "HOME":  # HOME is the user's, tested below
                monkeypatch.setenv(spelling, text)
                undocumented.add(spelling)
    assert {"AUTH_URL", "SERVICE_KEY", "auth_url", "service_key", "home"} <= undocumented
    assert Settings().model_dump() == baseline


def test_home_in_the_environment_is_the_users_home_not_ours(
    clean_environment: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "someone"))
    settings = Settings()
    assert settings.home == tmp_path / "someone" / ".mana-credits"
    assert settings.effective_database_url.endswith("/someone/.mana-credits/credits.db")


@pytest.mark.parametrize("name", sorted(ALIASES))
def test_each_documented_name_configures_its_setting(
    name: str, clean_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text, expected = another_value(name)
    monkeypatch.setenv(ALIASES[name], text)
    assert getattr(Settings(), name) == expected


def test_code_overrides_by_documented_name_and_by_field_name(clean_environment: Path) -> None:
    by_alias = Settings(MANA_CREDITS_HOME="/a", MANA_AUTH_URL="https://auth", PORT=4000)
    by_name = Settings(home="/a", auth_url="https://auth", port=4000)
    assert by_alias == by_name
    assert (by_name.home, by_name.auth_url, by_name.port) == (Path("/a"), "https://auth", 4000)


def test_code_overrides_win_over_the_environment(
    clean_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MANA_SERVICE_KEY", "from-env")
    assert Settings(service_key="from-code").service_key == "from-code"
    assert Settings(MANA_SERVICE_KEY="from-code").service_key == "from-code"


def test_every_documented_name_is_in_the_readme_configuration_table() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", table))
    assert set(ALIASES.values()) <= documented


def test_an_unusable_value_is_one_invalid_setting_naming_it(
    clean_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORT", "eighty")
    monkeypatch.setenv("MANA_CREDITS_DB_POOL_SIZE", "0")
    with pytest.raises(InvalidSetting) as raised:
        Settings()
    assert raised.value.code == "invalid_setting"
    assert "PORT='eighty'" in raised.value.message
    assert "MANA_CREDITS_DB_POOL_SIZE='0'" in raised.value.message
    assert "\n" not in raised.value.message
    assert isinstance(raised.value, ValueError)  # as pydantic's own error was


def test_a_misspelt_override_is_refused_not_ignored(clean_environment: Path) -> None:
    with pytest.raises(InvalidSetting, match="MANA_CREDIT_HOME is not a setting"):
        Settings(MANA_CREDIT_HOME="/typo")


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgres://mana@db/x", "postgresql+psycopg://mana@db/x"),
        ("postgresql+psycopg2://mana@db/x", "postgresql+psycopg://mana@db/x"),
        ("sqlite:////var/lib/x.db", "sqlite+aiosqlite:////var/lib/x.db"),
        ("sqlite+pysqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("mysql://mana@db/x", "mysql://mana@db/x"),
    ],
)
def test_database_urls_get_our_drivers(given: str, used: str, clean_environment: Path) -> None:
    assert Settings(DATABASE_URL=given).database_url == used


@pytest.mark.parametrize(
    "alias", ["MANA_CREDITS_HOME", "PORT", "BASE_URL", "DATABASE_URL", "MANA_CREDITS_DB_POOL_SIZE"]
)
def test_an_empty_value_in_the_environment_means_unset(
    alias: str, clean_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    baseline = Settings().model_dump()
    monkeypatch.setenv(alias, "")
    assert Settings().model_dump() == baseline
    assert Settings().home == clean_environment / ".mana-credits"  # never the current folder


@pytest.mark.parametrize("value", ["70000", "-1", "65536", "abc"])
def test_a_port_out_of_range_names_port_and_the_value(
    value: str, clean_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORT", value)
    with pytest.raises(InvalidSetting) as raised:
        Settings()
    assert f"PORT={value!r}" in raised.value.message
    assert "\n" not in raised.value.message


def test_the_default_base_url_follows_the_port(
    clean_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Settings().base_url == "http://localhost:3061"
    monkeypatch.setenv("PORT", "3062")
    settings = Settings()
    assert settings.base_url == "http://localhost:3062"
    # Dev tokens are minted without PORT: the issuer stays the same whatever the port.
    assert settings.issuer == "http://localhost:3061"
    monkeypatch.setenv("BASE_URL", "https://credits.example/")
    assert Settings().base_url == "https://credits.example/"
    assert Settings().issuer == "https://credits.example"


@pytest.mark.parametrize(
    "name", ["BASE_URL", "MANA_AUTH_URL", "MANA_NOTIFY_URL", "STRIPE_API_BASE"]
)
@pytest.mark.parametrize(
    "value",
    [
        "notaurl",
        "ftp://files.example",
        "http://",
        "http://h:99999",
        "http://h:0",
        "https://h/?a=1",
        "http://a b",
        "http://x.example/a b",
        "http://a\x01b.example",
        "http://user:pw@x.example",
    ],
)
def test_a_url_setting_must_be_an_http_url(name: str, value: str, clean_environment: Path) -> None:
    with pytest.raises(InvalidSetting) as raised:
        Settings(**{name: value})
    assert f"{name}={value!r}: pass an http:// or https:// URL with a host" in raised.value.message
    assert "e.g. https://credits.example" in raised.value.message


@pytest.mark.parametrize(
    "value", ["https://credits.example", " http://127.0.0.1:3061/ ", "https://h.example/mana"]
)
def test_a_url_setting_takes_http_urls(value: str, clean_environment: Path) -> None:
    assert Settings(BASE_URL=value).base_url == value.strip()


@pytest.mark.parametrize("value", ["nan", "inf", "0", "-1", "3601"])
def test_the_shutdown_timeout_is_a_finite_number_of_seconds(
    value: str, clean_environment: Path
) -> None:
    with pytest.raises(InvalidSetting, match="MANA_CREDITS_SHUTDOWN_TIMEOUT"):
        Settings(MANA_CREDITS_SHUTDOWN_TIMEOUT=value)


@pytest.mark.parametrize(
    "value", ["*", "http://x.example/", "x.example", "https://a.example,ftp://b"]
)
def test_cors_origins_must_be_origins(value: str, clean_environment: Path) -> None:
    with pytest.raises(InvalidSetting, match="is not an origin: pass scheme://host"):
        Settings(CORS_ORIGINS=value)


def test_cors_origins_take_origins(clean_environment: Path) -> None:
    origins = "https://app.example, http://localhost:5173"
    assert Settings(CORS_ORIGINS=origins).cors_origins == origins
