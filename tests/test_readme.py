"""The README's Python quickstart runs as written and prints what it says it prints."""

import re
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def test_readme_quickstart_runs_and_matches_its_comments():
    text = (ROOT / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)  # the project's own documentation
    assert np.allclose(namespace["sim"].network.populations["cell"].n, 1)
    assert torch.is_tensor(namespace["gna"].grad) and float(namespace["gna"].grad) != 0.0
    squid_times = re.search(r"# spike times \(ms\): ([\d., ]+)", code).group(1).strip(" ,.").split(", ")
    cell = namespace["bf"].Cell.point(area=31416.0, channels=[namespace["bf"].channel(n) for n in ("hh_na", "hh_k", "leak")])
    result = namespace["bf"].Simulation(cell, stimuli=[namespace["bf"].IClamp(10.0, dur=100.0, density=True)]).run(100.0)
    assert np.allclose(result.spikes["cell"].times()[: len(squid_times)], [float(t) for t in squid_times], atol=0.01)


def test_the_readme_layers_example_runs_and_its_gradient_reaches_the_conductances():
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    code = next(block for block in blocks if "HHLayer" in block)
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)  # the project's own documentation
    assert namespace["spikes"].shape == (16, 20, 64)
    grad = namespace["model"][1].log_gbar.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
