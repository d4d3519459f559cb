"""DataError: a data file the user named cannot be used (missing, empty, too short, malformed)."""


class DataError(ValueError):
    """One-line message naming the path and the problem. A ValueError so callers that turn
    ValueError into a user-facing error (orchestrator.config.tree) handle it too."""
