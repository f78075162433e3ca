"""The ASGI app for uvicorn: `uvicorn api.main:app`; settings come from ABLATE_* variables."""

from api.app import create_app

app = create_app()
