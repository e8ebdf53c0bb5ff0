"""Entry point for ``panel serve app/main.py [--args PROJECT]``; ``brainfuse serve`` is the usual way."""

import sys

import panel as pn

from app.shell import create_app

pn.extension("codeeditor", notifications=True)
create_app(sys.argv[1] if len(sys.argv) > 1 else None).servable()
