"""Shared test configuration.

The tests drive asyncssh directly (clients, low-level requests); asyncssh is
imported here through `bwsandbox.sshlib`, as the sandbox imports it, so that
cryptography's DSA deprecation warning at asyncssh's import does not abort
this suite, which runs with `filterwarnings = error` like an integrator's."""

from bwsandbox import sshlib  # noqa: F401
