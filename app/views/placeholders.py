"""Panes that later work fills: training (learning issue) and chip deployment (chip issue)."""

import panel as pn


class _Placeholder:
    text = ""

    def __init__(self, workbench):
        self.workbench = workbench

    def view(self):
        return pn.Column(pn.pane.Markdown(self.text), sizing_mode="stretch_width")


class TrainPane(_Placeholder):
    text = ("### Train\nFitting channel and synapse parameters to recordings, and training HH layers, will appear here. "
            "From code today: any channel parameter, density or weight given as a tensor with `requires_grad` is learnable "
            "through `Simulation.run`.")


class DeployPane(_Placeholder):
    text = ("### Deploy\nQuantizing the project to fixed point and running it on a neuromorphic chip profile "
            "(Lava, Loihi) will appear here.")
