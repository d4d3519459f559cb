"""groktune orchestrator: search."""
