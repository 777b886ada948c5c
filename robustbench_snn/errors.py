"""Errors that describe a user's mistake or a missing resource.

The CLI turns every `UserError` into one clear message and its exit code (2, or 3 when no stored
result matches), with no traceback.
"""

import difflib
from collections.abc import Iterable


def did_you_mean(name: object, known: Iterable[str]) -> str:
    """``; did you mean X?`` for the known names closest to ``name`` (empty when none is close)."""
    close = difflib.get_close_matches(str(name), list(known), n=3)
    return f"; did you mean {' or '.join(close)}?" if close else ""


def unknown_name(what: str, name: object, known: Iterable[str]) -> str:
    """The message for a name that is not among the ``known`` ones, with the closest of them."""
    known = list(known)
    return f"unknown {what} {name!r}{did_you_mean(name, known)}; choose one of {', '.join(known)}"


class UserError(Exception):
    """A problem the user can fix: bad input, missing data, a wrong checkpoint."""

    exit_code = 2


class DatasetNotFoundError(UserError):
    """A dataset is neither on disk nor downloadable."""


class DataError(UserError):
    """A data file is malformed: wrong header, counts that disagree, cut short, values out of range."""


class CardError(UserError):
    """A model card is missing, malformed, or names something unknown."""


class CheckpointError(UserError):
    """A checkpoint is missing, corrupt, unsafe, or does not match its card."""


class NoResultsError(UserError):
    """No stored result matches what was asked for (a separate exit code, so scripts can tell)."""

    exit_code = 3
