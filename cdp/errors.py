"""The errors cdp-ml raises on purpose.

Every message names what the user has to look at (the config file, the source, the
file, the row, the column) and what was expected. The CLI prints the message as one
line and exits non-zero; nothing below the CLI prints or exits.
Messages never carry an email, phone number or name.
"""


class CdpError(Exception):
    """Base of every error a user can act on."""


class ConfigError(CdpError):
    """The config file is missing, unreadable or says something invalid."""


class SourceError(CdpError):
    """A source file cannot be read as configured (missing file or column, empty, wrong delimiter)."""


class SchemaError(CdpError):
    """Data has the wrong shape for the stage that reads it."""


class StoreError(CdpError):
    """The store cannot be opened or is not in the state a stage needs."""
