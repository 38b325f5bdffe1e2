"""bwsandbox: a local, faithful stand-in for the Betterworks SFTP user feed.

The public API is small on purpose; everything else is private to its package.
"""

from bwsandbox.errors import BwsandboxError

__version__ = "0.1.0"
__all__ = ["BwsandboxError", "__version__"]
