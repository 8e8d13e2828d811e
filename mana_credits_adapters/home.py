"""The embedded default's folder (`MANA_CREDITS_HOME`): its SQLite file and dev signing key."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import NotAFolder, NotWritable


def check_home(home: Path, *, create: bool) -> None:
    """The embedded default's folder: made when `create` (mode 0700: it holds the ledger
    and the signing key, its owner's only); raises `NotAFolder`, `NotWritable`."""
    home = home.absolute()
    if home.exists() and not home.is_dir():
        raise NotAFolder(
            f"MANA_CREDITS_HOME {home} is not a folder, point MANA_CREDITS_HOME at a folder"
        )
    if not create:
        return
    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise NotWritable(
            f"cannot create MANA_CREDITS_HOME {home}: {exc.strerror}, create it or point "
            "MANA_CREDITS_HOME at a writable folder"
        ) from exc
    if not os.access(home, os.W_OK):
        raise NotWritable(
            f"MANA_CREDITS_HOME {home} is read-only, make it writable or point "
            "MANA_CREDITS_HOME at another folder"
        )
