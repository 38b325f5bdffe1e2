"""The simulated vendor app (docs/architecture.md): queue, user directory, apply, notify."""
