"""Placeholder while the pane is being built."""

import panel as pn


class SimulatePane:
    def __init__(self, workbench):
        self.workbench = workbench

    def view(self):
        return pn.pane.Markdown("SimulatePane")
