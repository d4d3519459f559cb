"""groktune orchestrator: storage."""
