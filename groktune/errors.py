"""The errors a user can fix, one hierarchy: every one is a UserError with a one-line message,
which the CLI prints as `groktune: error: ...` before it exits 2.

    UserError                 a flag, a folder, a file the user named
    ├── ConfigError           a config file or --set override (orchestrator.config.tree)
    ├── DataError             a data file: missing, empty, too short, malformed (tasks.lm)
    ├── SetupError            a config that validated but cannot run here (fp16 without CUDA)
    ├── CheckpointError       a checkpoint that is missing, corrupt or of another config
    └── ResultsError          a results folder that cannot be analysed (analysis.load)

All but UserError itself are ValueErrors too, so a library caller can catch them as bad input
and the config checks (which turn a ValueError into a ConfigError naming the key) pass them on.
"""


class UserError(Exception):
    """A problem the user can fix; the message is one line naming what is wrong."""


class ConfigError(UserError, ValueError):
    """Bad user input in a config file or override; the message is one line for the user."""


class DataError(UserError, ValueError):
    """A data file the user named cannot be used; the message names the path and the problem."""


class SetupError(UserError, ValueError):
    """A config that validated but cannot run here (e.g. fp16 without CUDA); one line."""


class CheckpointError(UserError, ValueError):
    """A checkpoint that is missing, corrupt or written for another config (one line)."""


class ResultsError(UserError, ValueError):
    """A results folder that cannot be read; the message is one line naming the path and why."""


class DamagedFile(UserError):
    """A file groktune reads back is damaged; the message is one line naming it and what is wrong."""


__all__ = ["CheckpointError", "ConfigError", "DamagedFile", "DataError", "ResultsError", "SetupError", "UserError"]
