"""The Lava backend (brainfuse_core/chip/lava_backend.py): Lava's fixed-point run equals the NumPy
reference bit for bit; crashes, timeouts and a missing environment give errors naming the fix.

Lava runs in ``.venv-lava`` (made by ``bash .ci/setup.sh``); the tests that need it are skipped
without it. Each Lava run starts a Python 3.10 process and Lava's runtime: about 1 s here."""

import os
import stat
import sys
import time

import numpy as np
import pytest
import torch

import brainfuse_core as bf
from brainfuse_core.chip.lava_backend import LavaBackendError, lava_available, run_lava
from brainfuse_core.chip.quantize import quantize
from brainfuse_core.chip.reference import simulate

needs_lava = pytest.mark.skipif(not lava_available(), reason="no Lava environment (.venv-lava): run `bash .ci/setup.sh` to make it")


def squid_cell(area=31416.0):
    return bf.Cell.point(area=area, channels=[bf.channel("hh_na"), bf.channel("hh_k"), bf.channel("leak")])


def small_network():
    """Four driven excitatory cells onto three undriven inhibitory ones (all to all, graded weights),
    which inhibit the excitatory cells back: the inhibitory cells fire only through the dense synapses."""
    cell = squid_cell(area=1000.0)
    net = bf.Network([bf.Population("exc", cell, 4), bf.Population("inh", cell, 3)])
    net.connect(bf.Projection("exc", "inh", bf.ExpSynapse(2.0, 0.0), torch.linspace(0.002, 0.008, 12, dtype=torch.float64),
                              rule=bf.AllToAll()))
    net.connect(bf.Projection("inh", "exc", bf.ExpSynapse(5.0, -80.0), 0.004, rule=bf.AllToAll(), initial_conductance=0.002))
    stimuli = [bf.IClamp(amp=a, delay=2.0, dur=60.0, density=True, population="exc", cells=[i], name=f"drive{i}")
               for i, a in enumerate((8.0, 12.0, 20.0, 40.0))]
    probes = [bf.Probe("exc", "v"), bf.Probe("inh", "v"), bf.Probe("inh", "hh_k.n", cells=[1])]
    return net, stimuli, probes


@needs_lava
def test_lava_fixed_point_population_equals_reference_bit_for_bit():
    net = bf.Network([bf.Population("cell", squid_cell(), 3)])
    stimuli = [bf.IClamp(amp=a, delay=1.0, dur=40.0, density=True, cells=[i], name=f"s{i}") for i, a in enumerate((7.0, 15.0, 60.0))]
    artifact = quantize(net, 50.0, stimuli=stimuli, probes=[bf.Probe("cell", "v"), bf.Probe("cell", "hh_na.h", cells=[0, 2])])
    reference = simulate(artifact)
    started = time.perf_counter()
    lava = run_lava(artifact, mode="fixed", timeout=120)
    print(f"Lava fixed-point run of 500 chip steps x 3 cells: {time.perf_counter() - started:.2f} s "
          f"(import {lava.timings['import_s']:.2f} s, compile+run {lava.timings['run_s']:.2f} s)")
    assert lava.backend == "lava-fixed"
    assert "lava" not in sys.modules  # Lava ran in its own process only
    assert reference.counts["spikes"] >= 6
    assert lava.same_bits(reference) == (True, "identical")


@needs_lava
def test_lava_fixed_point_network_equals_reference_bit_for_bit():
    net, stimuli, probes = small_network()
    artifact = quantize(net, 60.0, stimuli=stimuli, probes=probes)
    reference = simulate(artifact)
    assert len(reference.spike_steps["inh"]) > 0  # only the dense synapses drive these cells
    assert reference.counts["synaptic_ops"] == 3 * len(reference.spike_steps["exc"]) + 4 * len(reference.spike_steps["inh"])
    lava = run_lava(artifact, mode="fixed", timeout=120)
    assert lava.same_bits(reference) == (True, "identical")


@needs_lava
def test_lava_floating_point_run_agrees_with_fixed_point():
    net, stimuli, probes = small_network()
    artifact = quantize(net, 60.0, stimuli=stimuli, probes=probes)
    fixed = simulate(artifact)
    lava_float = run_lava(artifact, mode="float", timeout=120)
    assert lava_float.backend == "lava-float" and not lava_float.fixed
    for pop in ("exc", "inh"):
        counts_float = lava_float.spikes[pop].counts()
        counts_fixed = fixed.spikes[pop].counts()
        assert np.abs(counts_float - counts_fixed).max() <= 1, pop
    for name, trace in fixed.traces.items():
        assert np.median(np.abs(lava_float.traces[name] - trace)) < 0.5, name


@needs_lava
def test_lava_process_crash_names_the_failure(tmp_path):
    artifact = quantize(bf.Network([bf.Population("cell", squid_cell(), 1)]), 1.0)
    folder = artifact.save(tmp_path / "deploy")
    # An initial voltage for five cells in a population of one: Lava itself fails to build the run.
    np.save(os.path.join(folder, "pop0_v0.npy"), np.zeros(5, dtype=np.int64))
    with pytest.raises(LavaBackendError, match=r"exited with code 1(.|\n)*Error(.|\n)*bash \.ci/setup\.sh"):
        run_lava(folder, timeout=120)


def fake_python(tmp_path, body):
    script = tmp_path / "python"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def test_crash_of_the_lava_process_gives_a_clear_error(tmp_path):
    artifact = quantize(bf.Network([bf.Population("cell", squid_cell(), 1)]), 1.0)
    python = fake_python(tmp_path, 'echo "Fatal Python error: Segmentation fault" >&2; exit 139')
    with pytest.raises(LavaBackendError, match=r"exited with code 139(.|\n)*Segmentation fault(.|\n)*bash \.ci/setup\.sh"):
        run_lava(artifact, python=python, timeout=30)


def test_timeout_of_the_lava_process_stops_it_and_says_so(tmp_path):
    artifact = quantize(bf.Network([bf.Population("cell", squid_cell(), 1)]), 1.0)
    pid_file = tmp_path / "worker.pid"
    # A worker of its own, as Lava starts: the timeout must end it too.
    python = fake_python(tmp_path, f"sleep 30 & echo $! > {pid_file}; wait")
    started = time.perf_counter()
    with pytest.raises(LavaBackendError, match="timeout of 1 s"):
        run_lava(artifact, python=python, timeout=1)
    assert time.perf_counter() - started < 10
    assert not _alive(int(pid_file.read_text()))


def _alive(pid):
    """Whether process ``pid`` runs (a killed child not yet reaped by init counts as ended)."""
    for _ in range(20):
        try:
            with open(f"/proc/{pid}/stat") as handle:
                state = handle.read().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return False
        if state in ("Z", "X"):
            return False
        time.sleep(0.1)
    return True


def test_missing_lava_environment_names_the_set_up(tmp_path):
    artifact = quantize(bf.Network([bf.Population("cell", squid_cell(), 1)]), 1.0)
    with pytest.raises(LavaBackendError, match=r"no Lava environment(.|\n)*bash \.ci/setup\.sh"):
        run_lava(artifact, python=tmp_path / "nowhere" / "python")
