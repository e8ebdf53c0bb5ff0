"""Serving the workbench: ``brainfuse serve`` and ``panel serve app/main.py`` both end here."""

import panel as pn

from .shell import create_app

DEFAULT_PORT = 5006
EXTENSIONS = ("codeeditor", "tabulator")


def load_extensions():
    """The Panel extensions the panes use, loaded once before any page is built."""
    pn.extension(*EXTENSIONS, notifications=True)


def serve(project=None, port=DEFAULT_PORT, address="127.0.0.1", show=False, threaded=False, start=True):
    """Serve the workbench on ``address:port`` (localhost by default); every browser session gets a fresh
    page built by ``create_app``. Returns the server (already started in a thread when ``threaded``)."""
    origins = [f"{host}:{port}" for host in ("localhost", "127.0.0.1", address)]
    load_extensions()
    return pn.serve({"/": lambda: create_app(project)}, port=port, address=address, show=show, threaded=threaded,
                    start=start, allow_websocket_origin=sorted(set(origins)), title="BrainFuse workbench",
                    websocket_max_message_size=200 * 1024 * 1024)
