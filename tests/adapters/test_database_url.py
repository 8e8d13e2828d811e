"""`DATABASE_URL` for people: anything unparseable is `invalid_database_url`, and no
password (user part or query parameter) is ever shown, whatever the string."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mana_credits_adapters.errors import InvalidDatabaseUrl, SetupError
from mana_credits_adapters.settings import normalise_database_url
from mana_credits_adapters.sql.target import parse, redact

BROKEN = [
    "postgresql://u:secret@127.0.0.1:notaport/db",
    "postgresql://u:secret@[::1/db",
    "postgresql+psycopg2://u:secret@host:99999999999999999999999/db",
    "postgresql://u:secret@host:-5/db",
    "postgresql://u:secret@more@host/db",
]


@pytest.mark.parametrize("url", BROKEN)
def test_a_url_that_does_not_parse_is_invalid_and_hides_the_password(url: str) -> None:
    with pytest.raises(InvalidDatabaseUrl) as raised:
        parse(normalise_database_url(url))
    assert raised.value.code == "invalid_database_url"
    assert "secret" not in raised.value.message
    assert "more" not in raised.value.message
    assert "u:***@" in raised.value.message
    assert "secret" not in redact(url)


@pytest.mark.parametrize("parameter", ["password", "sslpassword", "PassWord", "client_secret"])
def test_a_password_in_the_query_string_is_hidden(parameter: str) -> None:
    url = f"postgresql+psycopg://u@db/credits?sslmode=require&{parameter}=secret2"
    shown = redact(url)
    assert "secret2" not in shown
    assert f"{parameter}=***" in shown
    assert "sslmode=require" in shown
    assert shown.startswith("postgresql://u@db/credits?")
    # Unparseable, the query's password is hidden as well.
    assert "secret2" not in redact(f"postgresql://u:secret@[::1/db?{parameter}=secret2")


# The password's marker never occurs in the other parts (ASCII only).
PASSWORD = st.text(min_size=1, max_size=20).map(lambda text: f"Ωpw{text}")
PART = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789.-_", min_size=1, max_size=12)
SCHEME = st.sampled_from(
    ["postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2", "sqlite", "mysql"]
)
PORT = st.one_of(st.integers(0, 99999).map(str), PART, st.just(""))
HOST = st.one_of(PART, st.just("[::1]"), st.just("[::1"), st.just(""))


def refusal(url: str) -> str | None:
    """The message `parse` refuses `url` with (any other exception fails the test)."""
    try:
        parse(normalise_database_url(url))
    except SetupError as exc:
        return exc.message
    return None


def hidden(password: str, shown: str) -> bool:
    return all(form not in shown for form in (password, quote(password, safe=""), "Ωpw"))


@given(scheme=SCHEME, user=PART, password=PASSWORD, host=HOST, port=PORT, database=PART)
def test_a_urlish_string_never_shows_its_password(
    scheme: str, user: str, password: str, host: str, port: str, database: str
) -> None:
    for secret in (quote(password, safe=""), password):
        url = f"{scheme}://{user}:{secret}@{host}:{port}/{database}"
        assert hidden(password, redact(url)), redact(url)
        message = refusal(url)
        assert message is None or hidden(password, message), message


@given(
    scheme=SCHEME,
    user=PART,
    password=PASSWORD,
    host=HOST,
    key=st.sampled_from(["password", "sslpassword"]),
)
def test_a_query_password_is_never_shown(
    scheme: str, user: str, password: str, host: str, key: str
) -> None:
    url = f"{scheme}://{user}@{host}/db?sslmode=require&{key}={quote(password, safe='')}"
    assert hidden(password, redact(url)), redact(url)


@given(st.text())
def test_any_text_is_redacted_or_refused_with_a_typed_error(text: str) -> None:
    redact(text)
    refusal(text)
