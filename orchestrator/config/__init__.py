"""groktune orchestrator: config."""
