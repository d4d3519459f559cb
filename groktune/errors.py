"""UserError: bad input the user can fix (a config, a flag, a data file, a checkpoint, a folder).

Raised with a one-line message; the CLI prints it and exits 2.
"""


class UserError(Exception):
    """A problem the user can fix; the message is one line naming what is wrong."""


__all__ = ["UserError"]
