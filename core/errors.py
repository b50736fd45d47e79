"""The one exception type users see: a one-line message that names the bad value and the fix."""


class UserError(Exception):
    """Bad input from the user (a path, a flag, a dataset). The CLI prints it as one line."""


class RunCancelled(UserError):
    """The user asked a run to stop (a ``cancel`` file appeared in its folder)."""
