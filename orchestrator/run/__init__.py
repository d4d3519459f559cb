"""groktune orchestrator: run."""
