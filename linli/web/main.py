"""The ASGI entry point for uvicorn (``linli.web.main:app``), configured from the environment."""

from linli.web.app import create_app

app = create_app(server_process=True)
