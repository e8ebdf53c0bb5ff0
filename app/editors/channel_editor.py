"""Placeholder while the editor is being built."""

import panel as pn


class ChannelEditor:
    def __init__(self, workbench):
        self.workbench = workbench

    def view(self):
        return pn.pane.Markdown("ChannelEditor")
