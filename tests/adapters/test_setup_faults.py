"""bootstrap() from Python: every setup fault is a typed `SetupError`, never a driver's."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from mana_credits_adapters.bootstrap import bootstrap
from mana_credits_adapters.errors import (
    CorruptDatabase,
    CorruptSigningKey,
    DatabaseUnreachable,
    InvalidDatabaseUrl,
    NoDatabase,
    NoFolder,
    NotAFolder,
    SetupError,
    UnsupportedDatabase,
)
from mana_credits_adapters.identity.dev import KEY_FILE, SigningKey
from mana_credits_adapters.settings import Settings
from mana_credits_core import CreditsError, TransactionType

from ..postgres import free_port


async def opened(settings: Settings, *, create: bool = True, connect: bool = False) -> None:
    async with bootstrap(settings, create=create, connect=connect) as services:
        await services.credits.credit("alice", 1, TransactionType.GRANT, "probe")


def tree(root: Path) -> list[Path]:
    return sorted(root.rglob("*"))


async def test_a_file_that_is_not_sqlite_is_named(tmp_path: Path) -> None:
    (tmp_path / "credits.db").write_text("not a database\n")
    with pytest.raises(CorruptDatabase) as raised:
        await opened(Settings(MANA_CREDITS_HOME=tmp_path))
    assert raised.value.code == "corrupt_database"
    assert str(tmp_path / "credits.db") in raised.value.message
    assert isinstance(raised.value, CreditsError)


@pytest.mark.parametrize("url", ["garbage", "postgres//mana:s3cret@db/x"])
async def test_a_url_that_is_no_url(url: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidDatabaseUrl) as raised:
        await opened(Settings(MANA_CREDITS_HOME=tmp_path, DATABASE_URL=url))
    assert "s3cret" not in raised.value.message
    assert "sqlite:////absolute/path/credits.db" in raised.value.message


@pytest.mark.parametrize(
    "url", ["mysql://mana:s3cret@db/credits", "mssql+pyodbc://mana@db/x", "sqlite://"]
)
async def test_another_database_says_which_are_supported(url: str, tmp_path: Path) -> None:
    with pytest.raises(UnsupportedDatabase) as raised:
        await opened(Settings(MANA_CREDITS_HOME=tmp_path, DATABASE_URL=url))
    assert "s3cret" not in raised.value.message
    assert "sqlite:////absolute/path/credits.db" in raised.value.message
    if url.startswith("mysql"):
        assert "mysql://mana:***@db/credits" in raised.value.message
        assert "postgresql://" in raised.value.message


async def test_without_create_a_missing_file_is_no_database_and_nothing_is_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings(DATABASE_URL="sqlite:///typo/x.db")
    with pytest.raises(NoDatabase) as raised:
        await opened(settings, create=False)
    # Three slashes: relative to the current folder, and said as an absolute path.
    assert f"no database at {tmp_path / 'typo' / 'x.db'}," in raised.value.message
    assert tree(tmp_path) == []


async def test_without_create_the_embedded_default_makes_no_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with pytest.raises(NoDatabase, match="MANA_CREDITS_HOME"):
        await opened(Settings(MANA_CREDITS_HOME=home), create=False)
    assert not home.exists()


async def test_a_urls_missing_folder_is_named_and_not_made(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/nowhere/x.db"
    with pytest.raises(NoFolder) as raised:
        await opened(Settings(DATABASE_URL=url))
    assert f"folder {tmp_path / 'nowhere'} does not exist" in raised.value.message
    assert tree(tmp_path) == []


async def test_a_url_in_an_existing_folder_is_created(tmp_path: Path) -> None:
    await opened(Settings(DATABASE_URL=f"sqlite:///{tmp_path}/x.db"))
    assert (tmp_path / "x.db").exists()
    await opened(Settings(DATABASE_URL=f"sqlite:///{tmp_path}/x.db"), create=False)


async def test_the_embedded_default_makes_its_home(tmp_path: Path) -> None:
    home = tmp_path / "a" / "home"
    await opened(Settings(MANA_CREDITS_HOME=home))
    assert (home / "credits.db").exists()


async def test_a_home_that_is_a_file(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.write_text("")
    for create in (True, False):
        with pytest.raises(NotAFolder, match=f"MANA_CREDITS_HOME {home} is not a folder"):
            await opened(Settings(MANA_CREDITS_HOME=home), create=create)


async def test_an_unreachable_postgresql_names_host_port_and_cause(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    url = f"postgresql://mana:s3cret@127.0.0.1:{port}/credits"
    with pytest.raises(DatabaseUnreachable) as raised:
        await opened(Settings(DATABASE_URL=url), connect=True)
    message = raised.value.message
    assert f"PostgreSQL at 127.0.0.1:{port}" in message
    assert f"postgresql://mana:***@127.0.0.1:{port}/credits" in message
    assert "refused" in message.lower()
    assert "s3cret" not in message
    assert "\n" not in message


async def test_migrating_an_unreachable_postgresql_is_the_same_fault(tmp_path: Path) -> None:
    url = f"postgresql://mana@127.0.0.1:{free_port()}/credits"
    with pytest.raises(DatabaseUnreachable):
        async with bootstrap(Settings(DATABASE_URL=url), migrate=True):
            pass


def test_a_corrupt_signing_key_is_named(tmp_path: Path) -> None:
    (tmp_path / KEY_FILE).write_text("-----BEGIN PRIVATE KEY-----\nnope\n")
    with pytest.raises(CorruptSigningKey) as raised:
        SigningKey.load_or_create(tmp_path)
    assert str(tmp_path / KEY_FILE) in raised.value.message
    assert "delete it" in raised.value.message


def test_a_signing_key_of_another_kind_is_named(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (tmp_path / KEY_FILE).write_bytes(pem)
    with pytest.raises(CorruptSigningKey, match="not an Ed25519 private key"):
        SigningKey.load_or_create(tmp_path)


def test_the_signing_key_home_is_made_and_the_key_kept(tmp_path: Path) -> None:
    home = tmp_path / "new"
    first = SigningKey.load_or_create(home)
    assert SigningKey.load_or_create(home).kid == first.kid
    assert os.stat(home / KEY_FILE).st_mode & 0o777 == 0o600


def test_every_setup_fault_is_a_credits_error_with_its_code() -> None:
    def leaves(cls: type[SetupError]) -> list[type[SetupError]]:
        return [cls, *(leaf for sub in cls.__subclasses__() for leaf in leaves(sub))]

    codes = [cls.code for cls in leaves(SetupError)]
    assert len(codes) == len(set(codes))
    assert all(issubclass(cls, CreditsError) for cls in leaves(SetupError))


async def test_the_embedded_default_is_its_owners_only(tmp_path: Path) -> None:
    home = tmp_path / "home"
    async with bootstrap(Settings(MANA_CREDITS_HOME=home)) as services:
        await services.credits.refund("alice", 5, "welcome")
        files = sorted(home.iterdir())
        # While the store is open SQLite keeps its WAL and shared memory beside the file.
        assert {f.name for f in files} >= {"credits.db", "credits.db-wal", "credits.db-shm"}
        modes = {f.name: stat.S_IMODE(f.stat().st_mode) for f in files}
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert set(modes.values()) == {0o600}, modes


async def test_a_sqlite_file_made_for_a_url_is_its_owners_only(tmp_path: Path) -> None:
    database = tmp_path / "x.db"
    await opened(Settings(MANA_CREDITS_HOME=tmp_path / "h", DATABASE_URL=f"sqlite:///{database}"))
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
