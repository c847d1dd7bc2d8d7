"""`taskrouter serve`: the router behind an OpenAI-compatible HTTP API (FastAPI under uvicorn).

A face: nothing in the package imports it, and `import app` loads none of FastAPI. `create_app` builds the ASGI
application around one Router.
"""

from __future__ import annotations

from app.gateway.server import create_app

__all__ = ["create_app"]
