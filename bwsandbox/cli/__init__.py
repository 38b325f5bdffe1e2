"""Thin commands; rich is used by the rendering modules only: `render.py`,
`render_server.py`, `live.py`, `layout.py` and `safe.py` (every text a tenant
wrote is shown through `safe`)."""
