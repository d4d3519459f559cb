"""UserError lives in the shared base (groktune.errors); re-exported here for existing imports."""

from groktune.errors import UserError

__all__ = ["UserError"]
