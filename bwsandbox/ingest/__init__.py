"""The simulated vendor app (issue #4): queue, user directory, apply, notify."""
