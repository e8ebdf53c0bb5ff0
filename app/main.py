"""Entry point for ``panel serve app/main.py [--args PROJECT]``; ``brainfuse serve`` is the usual way."""

import sys

from app.server import load_extensions
from app.shell import create_app

load_extensions()
create_app(sys.argv[1] if len(sys.argv) > 1 else None).servable()
