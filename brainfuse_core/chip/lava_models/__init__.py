"""Lava processes and process models of the chip backend. They import Lava: only the Lava side
(``chip/lava_runner.py`` under ``.venv-lava``'s Python 3.10) loads these modules, by path, so
that Lava's search for process models scans this folder and nothing else; the main process
never imports them."""
