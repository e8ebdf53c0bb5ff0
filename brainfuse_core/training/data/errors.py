"""Errors of the data package: each message names the problem and the fix."""

from ...errors import BrainFuseError


class DataError(BrainFuseError, ValueError):
    """A data set, file or data-generation argument is invalid."""


class DataFileNotFoundError(DataError, FileNotFoundError):
    """A data folder or file the loader needs does not exist."""
