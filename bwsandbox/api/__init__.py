"""The HTTP control plane and web UI, for any language (docs/api.md).

    HttpService(settings)     a Sandbox service: serves `app.create_app()` with
                              uvicorn on the sandbox's own event loop

Importing this package imports no HTTP library: FastAPI and uvicorn load
when the service starts, so `bwsandbox`, `bwsandbox.testing` and the pytest
plugin stay light.
"""

from bwsandbox.api.service import HttpService

__all__ = ["HttpService"]
