"""Setup faults: the service cannot start or open its store as configured.

Each is a `CreditsError` with a stable `code`; the message names the file, the URL
(password hidden) or the port, then says what to do, so a front end prints it as is
(`error: <code>: <message>`). Nothing was changed when one is raised.
"""

from __future__ import annotations

from mana_credits_core.errors import CreditsError


class SetupError(CreditsError):
    """Root of the setup faults: configuration, files of the home folder, the store's reach."""

    code = "setup_error"
    default_message = "The service is not set up correctly"


class InvalidSetting(SetupError, ValueError):
    """A setting (environment variable or code override) has a value it cannot take."""

    code = "invalid_setting"


class MissingSetting(SetupError):
    """A setting production mode needs (PostgreSQL: keys, auth, Stripe) is not set."""

    code = "missing_setting"


class InvalidDatabaseUrl(SetupError):
    """`DATABASE_URL` is not a URL at all."""

    code = "invalid_database_url"


class UnsupportedDatabase(SetupError):
    """`DATABASE_URL` names a database or driver this service does not speak."""

    code = "unsupported_database"


class NoDatabase(SetupError):
    """A command that only reads found no database where the URL points (none was made)."""

    code = "no_database"


class NoFolder(SetupError):
    """The folder meant to hold the SQLite file does not exist (none was made)."""

    code = "no_folder"


class NotAFolder(SetupError):
    """A path that must be a folder (the home, the SQLite file's folder) is something else."""

    code = "not_a_folder"


class NotWritable(SetupError):
    """A folder or file the service must write to is read-only for it."""

    code = "not_writable"


class CorruptDatabase(SetupError):
    """The SQLite file is not a SQLite database."""

    code = "corrupt_database"


class CorruptSigningKey(SetupError):
    """The embedded default's signing key file cannot be read as an Ed25519 key."""

    code = "corrupt_signing_key"


class DatabaseUnreachable(SetupError):
    """The database server could not be reached (host, port and the driver's cause given)."""

    code = "database_unreachable"


class DatabaseForbidden(SetupError):
    """The database answered but refused a read for lack of privileges."""

    code = "database_forbidden"


class ForeignTables(SetupError):
    """The database holds tables of this service's names that its migrations did not
    create (another application's, or the old service's database)."""

    code = "foreign_tables"


class PortInUse(SetupError):
    """Another process already listens on the server's address."""

    code = "port_in_use"


class CannotListen(SetupError):
    """The server's address cannot be bound for another reason (unknown host, privileges)."""

    code = "cannot_listen"
