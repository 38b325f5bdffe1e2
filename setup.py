"""Only the C extensions live here (setuptools' stable API for them); all other
metadata is in pyproject.toml. They are the validator's one-pass structure
scan (bwsandbox/validator/_scan.c) and its value fast path
(bwsandbox/validator/_cells.c), and the server's one-call
chacha20-poly1305 for small SSH packets (bwsandbox/server/_sshcrypt.c) and
its busy-polling epoll wait (bwsandbox/server/_poll.c); README "Benchmarks".

The server's two are speed-ups only, and the server runs without them:
`_poll` (epoll) is built on Linux only, `_sshcrypt` (needs `__int128`) is
skipped with a warning where it cannot be built. On Linux the tests check
that both are in use."""

import sys

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("bwsandbox.validator._cscan", ["bwsandbox/validator/_scan.c"]),
        Extension("bwsandbox.validator._ccells", ["bwsandbox/validator/_cells.c"]),
        Extension("bwsandbox.server._sshcrypt", ["bwsandbox/server/_sshcrypt.c"], optional=True),
        *(
            [Extension("bwsandbox.server._poll", ["bwsandbox/server/_poll.c"])]
            if sys.platform.startswith("linux")
            else []
        ),
    ]
)
