"""The exceptions users see: one-line messages that name the bad value and the fix."""

from __future__ import annotations

import math
from collections.abc import Iterable


class UserError(Exception):
    """Bad input from the user (a path, a flag, a dataset). The CLI prints it as one line."""


class RunCancelled(UserError):
    """The user asked a run to stop (a ``cancel`` file appeared in its folder)."""


class RunDamaged(UserError):
    """A run folder that says it is complete but whose files do not check out."""


class ReadOnly(UserError):
    """A write refused: this session may only read (a viewer, or a server shared without sign-in)."""


class DiskFull(UserError):
    """A write failed for lack of space; the message names the folder and the space needed."""


def check_choice(what: str, value: str, choices: Iterable[str]) -> str:
    """``value`` if it is one of ``choices``.

    Raises:
        UserError: "unknown <what> '<value>'; choose one of: ...".
    """
    choices = list(choices)
    if value not in choices:
        raise UserError(f"unknown {what} '{value}'; choose one of: {', '.join(choices)}")
    return value


def check_count(flag: str, value: float) -> float:
    """``value`` if it is a finite positive number of images per class.

    Raises:
        UserError: "<flag> must be a positive number of images per class, not <value>".
    """
    if not 0 < value < math.inf:
        raise UserError(f"{flag} must be a positive number of images per class, not {value:g}")
    return value


def check_share(flag: str, value: float) -> float:
    """``value`` if it is strictly between 0 and 1 (an accuracy, a level, a share).

    Raises:
        UserError: "<flag> must be between 0 and 1, not <value>".
    """
    if not 0 < value < 1:
        raise UserError(f"{flag} must be between 0 and 1, not {value:g}")
    return value
