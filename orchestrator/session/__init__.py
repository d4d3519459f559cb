"""groktune orchestrator: session."""
