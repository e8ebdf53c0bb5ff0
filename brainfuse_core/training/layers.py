"""Spiking layers for PyTorch models: Hodgkin–Huxley neurons of any channel set, and leaky
integrate-and-fire neurons, advanced by the same engine.

Both layers take a batch-first input of shape (batch, time bins, neurons), read as an injected
current density in µA/cm² held over each bin of ``bin_ms`` ms (so they sit after ``nn.Linear`` or
``nn.Conv2d`` + flatten), and advance their cells ``bin_ms / dt`` steps per bin through the compiled
gradient kernels of ``solvers/gradient_kernel.py``: the step is generated from the channel
definitions (``step_source.point_step``), its adjoint from that step, and the backward pass
recomputes states from checkpoints instead of storing them. The LIF cell is a point cell with
one leak channel and a threshold reset in that same step; nothing differs between the two layers
but their cells.

Spikes are upward crossings of ``threshold`` (mV) between steps, counted per bin (``surrogate.py``).
Their gradient is the fast-sigmoid surrogate of ``spikes.threshold_crossing`` (Zenke & Ganguli 2018):
∂s/∂v = β / (1 + β·|v − θ|)² at the step's voltage (before a LIF reset), β = ``surrogate_beta``
(1/mV). A LIF reset itself passes no gradient (the usual detached reset).

On a CUDA device the layers run the Triton gradient kernels (``gpu/point_backward.py``, the same
statements rendered for the GPU); ``engine="triton"`` asks for them on the CPU too, where they run
under Triton's interpreter (TRITON_INTERPRET=1), which only tests need.

Every forward starts from rest (``stateful=False``, the default) or from where the previous call
ended (``stateful=True``, detached; ``reset_state()`` returns to rest). Outputs follow the input's
device and dtype. On the CPU the kernels compute in float64 whatever the input's dtype; the model's
numbers and the traces around the kernels are in the input's precision.
"""

import copy
import math

import torch
from torch import nn

from ..cells import Cell
from ..channels import Channel, channel as library_channel
from ..errors import ModelError
from ..solvers import gradient_kernel
from ..solvers.membrane import CompiledCell
from .surrogate import spike_counts

READOUTS = ("spikes", "voltage")
ENGINES = ("auto", "triton")
# µA/cm² × µm² → nA
_DENSITY_TO_NA = 1e-5


class SpikingLayer(nn.Module):
    """The engine shared by HHLayer and LIFLayer: a population of ``size`` identical point cells
    built by the subclass's ``_cell()`` (whose numbers may be the module's parameters), with a
    ``reset`` (threshold, v_reset) mV for integrate-and-fire cells or None."""

    def __init__(self, size, *, bin_ms, dt, threshold, celsius, surrogate_beta, output, stateful, v_rest,
                 checkpoint_every, engine):
        super().__init__()
        if not (isinstance(size, int) and size > 0):
            raise ModelError(f"a spiking layer needs a positive number of neurons, got size={size!r}")
        for name, value in (("bin_ms", bin_ms), ("dt", dt), ("surrogate_beta", surrogate_beta)):
            if not (isinstance(value, (int, float)) and value > 0 and math.isfinite(value)):
                raise ModelError(f"{name} must be a positive number, got {value!r}")
        substeps = bin_ms / dt
        if abs(substeps - round(substeps)) > 1e-9 * substeps:
            raise ModelError(f"bin_ms ({bin_ms} ms) must be a whole number of steps of dt ({dt} ms)")
        if engine not in ENGINES:
            raise ModelError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
        if output not in READOUTS:
            raise ModelError(f"output must be one of {', '.join(READOUTS)}, got {output!r}")
        self.size, self.bin_ms, self.dt, self.substeps = size, float(bin_ms), float(dt), int(round(substeps))
        self.threshold, self.celsius, self.surrogate_beta = float(threshold), float(celsius), float(surrogate_beta)
        self.output, self.stateful, self.v_rest = output, stateful, float(v_rest)
        self.checkpoint_every, self.engine = checkpoint_every, engine
        self._state = None

    reset = None

    def reset_state(self):
        """Start the next forward from rest."""
        self._state = None

    def forward(self, current_density):
        """``current_density`` (batch, bins, neurons) µA/cm² → spikes per bin (batch, bins, neurons),
        or with ``output="voltage"`` the voltage at the end of each bin (mV; before a LIF reset)."""
        if current_density.dim() != 3 or current_density.shape[2] != self.size:
            raise ModelError(f"{type(self).__name__} of {self.size} neurons takes input (batch, bins, {self.size}); "
                             f"got shape {tuple(current_density.shape)}")
        if not torch.isfinite(current_density.detach()).all():
            raise ModelError(f"{type(self).__name__}: the input current holds NaN or infinite values")
        batch, bins, _ = current_density.shape
        # The CPU kernels compute in float64; the trace and the spikes around them keep the input's
        # precision, which halves the memory and time of a float32 model's surrogate.
        dtype = current_density.dtype if current_density.dtype in (torch.float32, torch.float64) else torch.float32
        kernels, device = self._engine(current_density.device)
        block = CompiledCell(self._cell(), dtype, device)
        state = self._initial_state(block, batch, dtype, device)
        amps = current_density.to(device=device, dtype=dtype) * (float(block.area[0]) * _DENSITY_TO_NA)
        injected = amps.transpose(0, 1).repeat_interleave(self.substeps, dim=0)
        trace, final = kernels.run_with_gradients(block, state, self.dt, injected, self.celsius,
                                                  checkpoint_every=self.checkpoint_every, reset=self.reset)
        if self.stateful:
            self._state = {name: value.detach() for name, value in final.items()}
        out = self._spikes(trace, state["v"][..., 0]) if self.output == "spikes" else trace[self.substeps - 1::self.substeps]
        return out.transpose(0, 1).to(device=current_density.device, dtype=current_density.dtype)

    def _engine(self, device):
        """(kernels, device): the Triton gradient kernels where the input lives on a CUDA device (or
        where ``engine="triton"`` asks for them: on the CPU that is Triton's interpreter, for tests),
        else the compiled CPU kernels."""
        if device.type != "cuda" and self.engine != "triton":
            return gradient_kernel, torch.device("cpu")
        try:
            from ..gpu import point_backward
        except ImportError:
            raise ModelError(f"{type(self).__name__} on {device} needs Triton (pip install triton), "
                             "or move the model to the CPU") from None
        return point_backward, device

    def _initial_state(self, block, batch, dtype, device):
        state = self._state
        if state is not None and state["v"].shape[0] == batch and state["v"].dtype == dtype and state["v"].device == device:
            return state
        rest = torch.full((batch, self.size, 1), self.v_rest, dtype=dtype, device=device)
        return block.initial_state(rest, self.celsius)

    def _spikes(self, trace, v_start):
        """Spike counts per bin (bins, batch, neurons) from the voltage after every step."""
        return spike_counts(trace, v_start, self.substeps, self.threshold, self.surrogate_beta, self.reset)


class HHLayer(SpikingLayer):
    """``size`` Hodgkin–Huxley point neurons of any channel set.

    ``channels``: library channel names or ``Channel`` objects (default squid HH: hh_na, hh_k,
    leak). With ``learn_conductances`` each channel's density gbar (S/cm²) is a parameter, learnt
    in log space so that it stays positive (``log_gbar``, one per channel, shared by the layer's
    neurons). ``area`` µm² (input is a density, so it sets only the absolute currents reported),
    ``cm`` µF/cm², ``celsius`` °C, ``dt`` ms, ``threshold`` mV, ``v_rest`` mV (gates start at
    their steady state there), ``reversals`` mV per ion."""

    def __init__(self, size, channels=("hh_na", "hh_k", "leak"), *, bin_ms=1.0, dt=0.05, threshold=-20.0, celsius=6.3,
                 area=1000.0, cm=1.0, reversals=None, learn_conductances=True, surrogate_beta=0.5, output="spikes",
                 stateful=False, v_rest=-65.0, checkpoint_every=None, engine="auto"):
        super().__init__(size, bin_ms=bin_ms, dt=dt, threshold=threshold, celsius=celsius, surrogate_beta=surrogate_beta,
                         output=output, stateful=stateful, v_rest=v_rest, checkpoint_every=checkpoint_every,
                         engine=engine)
        self.channels = [library_channel(c) if isinstance(c, str) else c for c in channels]
        if not self.channels or not all(isinstance(c, Channel) for c in self.channels):
            raise ModelError("HHLayer needs channels: library names (e.g. 'hh_na') or Channel objects")
        self.area, self.cm, self.reversals = float(area), float(cm), reversals
        gbar = torch.tensor([float(c.gbar) for c in self.channels], dtype=torch.float64)
        if (gbar <= 0).any():
            raise ModelError("HHLayer: every channel needs a positive gbar (S/cm²) to be learnt in log space")
        self.log_gbar = nn.Parameter(gbar.log(), requires_grad=learn_conductances)

    def _cell(self):
        gbar = self.log_gbar.exp()
        channels = []
        for k, base in enumerate(self.channels):
            channel = copy.copy(base)
            channel.gbar = gbar[k]
            channels.append(channel)
        return Cell.point(area=self.area, channels=channels, cm=self.cm, reversals=self.reversals, v_init=self.v_rest)

    def extra_repr(self):
        names = ", ".join(c.name for c in self.channels)
        return f"{self.size}, channels=({names}), bin_ms={self.bin_ms}, dt={self.dt}, celsius={self.celsius}"


class LIFLayer(SpikingLayer):
    """``size`` leaky integrate-and-fire neurons: C dv/dt = −g_L (v − v_rest) + I with
    τ_m = C / g_L = ``tau_m`` ms; where v reaches ``threshold`` mV it is set to ``v_reset`` mV.
    The same point cell and engine as HHLayer (one leak channel and a reset in the generated step),
    so its input (µA/cm² per bin), outputs and surrogate are the same. With ``learn_tau`` the
    membrane time constant is a parameter (learnt in log space)."""

    def __init__(self, size, *, tau_m=10.0, threshold=-50.0, v_reset=-65.0, v_rest=-65.0, bin_ms=1.0, dt=0.05,
                 area=1000.0, cm=1.0, learn_tau=False, surrogate_beta=0.5, output="spikes", stateful=False,
                 checkpoint_every=None, engine="auto"):
        super().__init__(size, bin_ms=bin_ms, dt=dt, threshold=threshold, celsius=6.3, surrogate_beta=surrogate_beta,
                         output=output, stateful=stateful, v_rest=v_rest, checkpoint_every=checkpoint_every,
                         engine=engine)
        if not (tau_m > 0 and v_reset < threshold):
            raise ModelError(f"LIFLayer needs tau_m > 0 ms and v_reset < threshold (got {tau_m}, {v_reset}, {threshold})")
        self.area, self.cm = float(area), float(cm)
        self.reset = (float(threshold), float(v_reset))
        self.log_tau_m = nn.Parameter(torch.tensor(float(tau_m), dtype=torch.float64).log(), requires_grad=learn_tau)

    def _cell(self):
        # τ_m = C / g_L: cm µF/cm² over g_L S/cm² is 10⁻³·cm/g_L ms.
        g_leak = 1e-3 * self.cm / self.log_tau_m.exp()
        leak = library_channel("leak", gbar=g_leak, reversal=self.v_rest)
        return Cell.point(area=self.area, channels=[leak], cm=self.cm, v_init=self.v_rest)

    def extra_repr(self):
        threshold, v_reset = self.reset
        return (f"{self.size}, tau_m={float(self.log_tau_m.exp()):g} ms, threshold={threshold}, v_reset={v_reset}, "
                f"bin_ms={self.bin_ms}, dt={self.dt}")
