"""asyncssh, imported without a warning reaching the host process.

asyncssh 2.24 names cryptography's DSA classes at import, and cryptography
51+ answers each name with a `CryptographyDeprecationWarning`, which aborts a
host test suite that runs with `filterwarnings = error` (and prints ten lines
on every CLI call). The sandbox never uses DSA, so exactly that warning,
raised from asyncssh's own modules, is ignored for the length of the import;
`catch_warnings` puts the host's filters back as they were. Where the host
imported asyncssh first, this import finds it loaded and does nothing.

Every bwsandbox module that needs asyncssh imports this module first
(`bwsandbox.server` does so for its rooms); it is never imported at the
import of `bwsandbox`, `bwsandbox.testing` or the pytest plugin.
"""

import warnings

from cryptography.utils import CryptographyDeprecationWarning

with warnings.catch_warnings():
    warnings.filterwarnings(
        "ignore", message="DSA is deprecated", category=CryptographyDeprecationWarning, module=r"asyncssh\."
    )
    import asyncssh

__all__ = ["asyncssh"]
