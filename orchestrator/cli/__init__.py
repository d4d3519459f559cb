"""groktune orchestrator: cli."""
