"""Errors that describe a user's mistake or a missing resource.

The CLI turns every `UserError` into one clear message and exit code 2, with no traceback.
"""

from collections.abc import Iterable


def unknown_name(what: str, name: object, known: Iterable[str]) -> str:
    """The message for a name that is not among the ``known`` ones."""
    return f"unknown {what} {name!r}; choose one of {', '.join(known)}"


class UserError(Exception):
    """A problem the user can fix: bad input, missing data, a wrong checkpoint."""


class DatasetNotFoundError(UserError):
    """A dataset is neither on disk nor downloadable."""


class CardError(UserError):
    """A model card is missing, malformed, or names something unknown."""


class CheckpointError(UserError):
    """A checkpoint is missing, corrupt, unsafe, or does not match its card."""
