"""The operator console's session key: `MANA_CONSOLE_SECRET`, or a file in the home folder.

Sessions are Fernet-encrypted cookies (aiohttp-session); the key must stay the same
across restarts and be shared by every process serving the console, so without the
setting it is made once, randomly, and kept beside the dev signing key.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import tempfile
from pathlib import Path

from .errors import CorruptSigningKey, NotWritable
from .home import check_home

KEY_FILE = "console-session.key"


def console_key(secret: str, home: Path) -> bytes:
    """32 key bytes: SHA-256 of `secret` when set (any length), else those in
    `home/console-session.key`, created (owner-only) on first use. Raises
    `CorruptSigningKey` for a file that holds no key, `NotWritable` / `NotAFolder`
    when `home` cannot hold a new one."""
    if secret:
        return hashlib.sha256(secret.encode()).digest()
    path = (home / KEY_FILE).absolute()
    if not path.exists():
        _create(path, home)
    return _read(path)


def _create(path: Path, home: Path) -> None:
    check_home(home, create=True)
    text = base64.urlsafe_b64encode(secrets.token_bytes(32)) + b"\n"
    try:
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".console-key-")
        with os.fdopen(fd, "wb") as out:
            out.write(text)
        try:
            # A hard link appears whole or not at all, and never replaces another
            # process's key: every process ends up reading the same file.
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(temporary)
    except OSError as exc:
        raise NotWritable(
            f"cannot write the console key {path}: {exc.strerror}, make MANA_CREDITS_HOME "
            "writable or set MANA_CONSOLE_SECRET"
        ) from exc


def _read(path: Path) -> bytes:
    try:
        key = base64.urlsafe_b64decode(path.read_bytes().strip())
    except OSError as exc:
        raise CorruptSigningKey(f"cannot read the console key {path}: {exc.strerror}") from exc
    except ValueError:
        key = b""
    if len(key) != 32:
        raise CorruptSigningKey(
            f"{path} holds no console key, delete it: a new one is made on the next start "
            "(operators then sign in again)"
        )
    return key
