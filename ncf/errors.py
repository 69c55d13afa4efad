"""Errors a user can cause. Each message says what was found and what is expected."""


class NCFError(Exception):
    """Base class for every error the app and CLI show to a user as a plain message."""


class DataError(NCFError):
    """A ratings source could not be read: bad file, bad archive, failed download."""


class UnknownIdError(NCFError, KeyError):
    """A raw user or item id that the dataset does not contain."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ConfigError(NCFError, ValueError):
    """An impossible model or training configuration."""


class RunError(NCFError):
    """A run folder that is missing, incomplete, tampered with or not ours."""
