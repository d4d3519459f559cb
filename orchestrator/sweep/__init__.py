"""groktune orchestrator: sweep."""
