"""ResultsError: a results folder that cannot be analysed (missing, empty or malformed).

It is a UserError, so `groktune report` prints it as one line and exits 2, and a ValueError,
so library callers can catch it as bad input.
"""

from __future__ import annotations

from groktune.errors import UserError


class ResultsError(UserError, ValueError):
    """A results folder that cannot be read; the message is one line naming the path and why."""
