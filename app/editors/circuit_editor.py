"""Placeholder while the editor is being built."""

import panel as pn


class CircuitEditor:
    def __init__(self, workbench):
        self.workbench = workbench

    def view(self):
        return pn.pane.Markdown("CircuitEditor")
