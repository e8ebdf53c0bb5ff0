"""The integer arithmetic of a fixed-point HH population: Q-formats and one substep.

NumPy only, no package-relative imports: the Lava side (``lava_runner.py``, Python 3.10 without
torch) imports this file as a top-level module, so the NumPy reference and the Lava process model
run the very same neuron update.

Formats (the defaults of ``Formats``; every width is a setting recorded in the artifact):

* voltage V: Q7.16 mV in a signed 24-bit word (``v_bits``, ``v_frac``): range [−128, 128) mV,
  LSB 2⁻¹⁶ mV ≈ 15 nV; updates saturate at the word's ends.
* gates x: Q1.20 (``gate_frac``), 0 ≤ x ≤ 1 with 1 exactly representable (fits a 24-bit word).
  Q1.15 was measured too coarse: on the squid cell at 6.5-7 µA/cm² (just above rheobase) its
  spike times drift from the float model's by up to 0.3 ms over 200 ms; from Q1.18 on they do not.
* open fraction Π xᵖ: Q0.24 (``open_frac``), kept wider than a gate so m³h at rest keeps digits.
* conductances as G = g·dt/C (dimensionless: the fraction of the distance to reversal a
  conductance pulls V in one substep): Q11.20 (``g_frac``) in int32; channels, synapses and the
  implicit step's denominator 1 + ΣG share it. Synaptic G saturates at the int32 range.
* injected current as its voltage increment I·dt/C per substep: Q7.16 mV, like V.
* lookup tables over [−128, 128] mV in 2^``table_bits`` bins (default 12: 1/16 mV bins, 4097
  entries at the bin edges), read by linear interpolation between the two entries around V (the
  top ``table_bits`` bits of V pick the bin, the rest weight the neighbours): steady state x∞(V)
  in the gate format and per-substep decay exp(−dt/τ(V)) in Q0.24 (``decay_frac``); synaptic
  decays exp(−dt/τ_syn) share Q0.24.

One substep (NEURON's fixed-step order, as ``solvers/membrane.py``): the channels' G from gates
of the previous substep; the linearised backward-Euler voltage step
ΔV = (I·dt/C + Σ G·(E − V)) / (1 + Σ G), one integer division rounded half up; gates advance by
exponential Euler x ← x∞ + (x − x∞)·d from the tables at the new V; synaptic G decays.
Every product is formed in int64 and brought back by an arithmetic right shift that rounds half
up (add 2^(s−1), shift).
"""

import dataclasses

import numpy as np

SATURATED = ("v", "gates", "syn")


@dataclasses.dataclass(frozen=True)
class Formats:
    """Bit widths of the fixed-point state (see the module docstring)."""

    v_bits: int = 24
    v_frac: int = 16
    gate_frac: int = 20
    open_frac: int = 24
    g_frac: int = 20
    decay_frac: int = 24
    table_bits: int = 12

    def __post_init__(self):
        if not 8 <= self.v_bits <= 32 or not 0 <= self.v_frac < self.v_bits:
            raise ValueError(f"voltage format: need 8 ≤ v_bits ≤ 32 and 0 ≤ v_frac < v_bits, got {self.v_bits}, {self.v_frac}")
        if not 4 <= self.table_bits <= self.v_bits:
            raise ValueError(f"table_bits must lie in 4..v_bits ({self.v_bits}), got {self.table_bits}")
        for name in ("gate_frac", "open_frac", "g_frac", "decay_frac"):
            if not 4 <= getattr(self, name) <= 30:
                raise ValueError(f"{name} must lie in 4..30, got {getattr(self, name)}")

    @property
    def v_range_mv(self):
        """(lowest, highest) representable voltage in mV."""
        return (-(2 ** (self.v_bits - 1)) / 2 ** self.v_frac, (2 ** (self.v_bits - 1) - 1) / 2 ** self.v_frac)

    def table_voltages(self):
        """Voltage (mV) of each table entry: the 2^table_bits + 1 bin edges from −2^(v_bits−1) LSB up."""
        step = 2.0 ** (self.v_bits - self.table_bits - self.v_frac)
        return self.v_range_mv[0] + step * np.arange(2 ** self.table_bits + 1)

    def to_dict(self):
        return dataclasses.asdict(self)

    def describe(self):
        """The Q-format of each quantity, in words (written into the artifact's manifest)."""
        v_int = self.v_bits - 1 - self.v_frac
        return {
            "v": f"Q{v_int}.{self.v_frac} mV, signed {self.v_bits}-bit, saturating",
            "gates": f"Q1.{self.gate_frac}, 0..1",
            "open_fraction": f"Q0.{self.open_frac}",
            "conductance": f"G = g·dt/C, Q11.{self.g_frac} (int32); synaptic G saturates at the int32 range",
            "current": f"I·dt/C per substep, Q{v_int}.{self.v_frac} mV",
            "tables": f"2^{self.table_bits} bins over the V range, linear interpolation; x∞ Q1.{self.gate_frac}, "
                      f"exp(−dt/τ) Q0.{self.decay_frac}",
            "synaptic_decay": f"exp(−dt/τ_syn) Q0.{self.decay_frac}",
            "weights": "integer mantissa × 2^exponent per projection, in units of the conductance LSB",
        }


def to_fixed(value, frac, bits=None):
    """Round ``value`` to the nearest multiple of 2^−frac (ties away from zero), as int64; with ``bits``,
    saturate to the signed range of that many bits."""
    raw = np.round(np.asarray(value, dtype=np.float64) * 2.0 ** frac)
    if bits is not None:
        raw = np.clip(raw, -(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    return raw.astype(np.int64)


def from_fixed(raw, frac):
    return np.asarray(raw, dtype=np.float64) / 2.0 ** frac


def shift_round(x, s):
    """x / 2^s rounded half up, by an arithmetic shift (int64)."""
    return (x + (1 << (s - 1))) >> s


def divide_round(numerator, denominator):
    """numerator / denominator rounded half up, for positive denominators (int64 floor division)."""
    return (2 * numerator + denominator) // (2 * denominator)


def table_position(v, fmt):
    """(bin, weight): the table bin of voltages ``v`` (raw) and where in it V lies, in units of 2^−s of a bin
    (s = v_bits − table_bits)."""
    s = fmt.v_bits - fmt.table_bits
    above_floor = v + (1 << (fmt.v_bits - 1))
    return above_floor >> s, above_floor & ((1 << s) - 1)


def interpolate(table, position, fmt):
    """Linear interpolation of a table at ``position`` (from ``table_position``), rounded half up."""
    bin_, weight = position
    low = table[bin_]
    s = fmt.v_bits - fmt.table_bits
    return low + shift_round((table[bin_ + 1] - low) * weight, s) if s > 0 else low


def substep(state, pop, fmt, current, counts):
    """Advance ``state`` (dict of int64 arrays: ``v`` (n,), ``gates`` (n_gates, n), ``syn`` (n_receptors, n))
    by one substep in place and return the boolean spike vector (upward crossing of the threshold).

    ``pop`` holds the population's constants (see ``artifact.Artifact.population_constants``): per channel
    ``gbar`` (G, Q.g_frac), ``e_rev`` (raw V) and the gate indices/powers of its open fraction; per gate
    the tables ``inf`` and ``decay``; per receptor ``syn_e`` (raw V) and ``syn_decay`` (Q0.decay_frac);
    ``threshold`` (raw V). ``current`` is I·dt/C (raw V) per cell. ``counts`` (dict) accumulates the
    number of saturated values per variable."""
    v, gates, syn = state["v"], state["gates"], state["syn"]
    one_g = np.int64(1) << fmt.g_frac
    drive = np.zeros_like(v)
    total_g = np.full_like(v, one_g)
    for c in range(len(pop["gbar"])):
        fraction = np.full_like(v, np.int64(1) << fmt.open_frac)
        for gate, power in zip(pop["channel_gates"][c], pop["channel_powers"][c]):
            for _ in range(power):
                fraction = shift_round(fraction * gates[gate], fmt.gate_frac)
        g = shift_round(pop["gbar"][c] * fraction, fmt.open_frac)
        drive += g * (pop["e_rev"][c] - v)
        total_g += g
    for r in range(syn.shape[0]):
        drive += syn[r] * (pop["syn_e"][r] - v)
        total_g += syn[r]
    numerator = current + shift_round(drive, fmt.g_frac)
    v_new = v + divide_round(numerator << fmt.g_frac, total_g)
    v_new = _saturate(v_new, -(2 ** (fmt.v_bits - 1)), 2 ** (fmt.v_bits - 1) - 1, counts, "v")
    spiked = (v < pop["threshold"]) & (v_new >= pop["threshold"])
    position = table_position(v_new, fmt)
    for gate in range(gates.shape[0]):
        inf = interpolate(pop["inf"][gate], position, fmt)
        x = inf + shift_round((gates[gate] - inf) * interpolate(pop["decay"][gate], position, fmt), fmt.decay_frac)
        gates[gate] = _saturate(x, 0, 1 << fmt.gate_frac, counts, "gates")
    for r in range(syn.shape[0]):
        syn[r] = shift_round(syn[r] * pop["syn_decay"][r], fmt.decay_frac)
    state["v"] = v_new
    return spiked


def receive(state, arrivals, counts):
    """Add synaptic input (raw G, shape (n_receptors, n)) to the synaptic state, saturating at int32."""
    state["syn"] = _saturate(state["syn"] + arrivals, -(2 ** 31), 2 ** 31 - 1, counts, "syn")


def _saturate(x, low, high, counts, name):
    out = np.clip(x, low, high)
    counts[name] = counts.get(name, 0) + int(np.count_nonzero(out != x))
    return out


def loihi_dense(mantissa, exponent, bits, sign_mode):
    """A projection's (weights, weight_exp) for Loihi's dense synapse with 8-bit weights (Lava's ``Dense``).

    Loihi keeps weights as 8-bit magnitudes (9 bits signed in mixed mode, whose lowest bit is
    dropped) and scales the summed input by 2^weight_exp. A ``bits``-bit mantissa is shifted up to the
    top of that word and the exponent lowered by as much, so that (Σ weights) · 2^weight_exp = Σ m · 2^e."""
    spare = 8 - bits + (sign_mode == "mixed")
    return (np.asarray(mantissa, dtype=np.int64) << spare).astype(np.int32), int(exponent) - spare


def dense_input(weights, weight_exp, spikes):
    """Loihi's dense synaptic input: the sum of the weights of the spiking inputs, scaled by 2^weight_exp
    (arithmetic right shift, i.e. rounded down, for negative exponents). int64."""
    total = weights[:, spikes].astype(np.int64).sum(axis=1)
    return total << weight_exp if weight_exp > 0 else total >> -weight_exp


def activity_counts(manifest, spike_counts, mantissas):
    """Work done in a run: neuron updates (cells × chip steps, and × substeps), spikes, and synaptic
    operations (each spike times the non-zero weights it fans out to). ``spike_counts``: per population,
    spikes per cell; ``mantissas``: per projection, its (post, pre) mantissa matrix."""
    steps, substeps = manifest["steps"], manifest["substeps"]
    cells = sum(pop["n"] for pop in manifest["populations"])
    synaptic = 0
    for proj, mantissa in zip(manifest["projections"], mantissas):
        fan_out = np.count_nonzero(mantissa, axis=0)
        synaptic += int(np.dot(fan_out, spike_counts[proj["pre"]]))
    return {
        "neuron_updates": int(cells * steps), "neuron_substeps": int(cells * steps * substeps),
        "spikes": int(sum(int(np.sum(c)) for c in spike_counts)),
        "spikes_per_population": {pop["name"]: int(np.sum(c)) for pop, c in zip(manifest["populations"], spike_counts)},
        "synaptic_ops": synaptic,
    }
