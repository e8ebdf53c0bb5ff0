"""Synaptic weights as integer mantissas with one shared power-of-two exponent per projection.

A projection's weights w (any unit) become w ≈ m · 2^e · lsb with integer mantissas m of ``bits``
bits and one exponent e: magnitudes 0..2^bits − 1 when all weights share a sign (the sign is the
projection's, as Loihi's excitatory/inhibitory sign modes), −2^(bits−1)..2^(bits−1) − 1 when signs
are mixed. e is the smallest exponent at which the largest weight still fits, so the rounding
error of every weight is at most half a step, 2^(e−1)·lsb.
"""

import dataclasses
import math

import numpy as np

from ..errors import ModelError

SIGN_MODES = ("excitatory", "inhibitory", "mixed")


@dataclasses.dataclass
class QuantizedWeights:
    """``mantissa`` (int64 array), ``exponent``, ``bits``, ``sign_mode``, ``lsb`` (the unit of m·2^e) and
    the error of the quantized weights against the float ones (same unit as the input weights)."""

    mantissa: np.ndarray
    exponent: int
    bits: int
    sign_mode: str
    lsb: float
    max_abs_error: float
    max_rel_error: float
    rms_error: float
    error_bound: float

    def values(self):
        """The quantized weights in the input unit."""
        return self.mantissa * (2.0 ** self.exponent) * self.lsb

    def report(self):
        return {"bits": self.bits, "exponent": self.exponent, "sign_mode": self.sign_mode,
                "max_abs_error": self.max_abs_error, "max_rel_error": self.max_rel_error,
                "rms_error": self.rms_error, "error_bound": self.error_bound}


def quantize_weights(weights, bits=8, lsb=1.0):
    """Quantize a weight matrix to ``bits``-bit mantissas and a shared exponent (see the module docstring).

    ``lsb`` is the value of one unit of m·2^e (for the chip: one LSB of the synaptic conductance state).
    ``max_rel_error`` is relative to the largest |w|; ``error_bound`` = 2^(e−1)·lsb."""
    if int(bits) != bits or not 2 <= bits <= 16:
        raise ModelError(f"weight bits must be an integer in 2..16, got {bits!r}")
    w = np.asarray(weights, dtype=np.float64)
    if not np.all(np.isfinite(w)):
        raise ModelError("weights must be finite numbers")
    sign_mode = "inhibitory" if w.size and w.max() <= 0 and w.min() < 0 else "mixed" if w.size and w.min() < 0 < w.max() else "excitatory"
    high = 2 ** (bits - 1) - 1 if sign_mode == "mixed" else 2 ** bits - 1
    scaled = w / lsb
    largest = float(np.abs(scaled).max()) if w.size else 0.0
    exponent = 0 if largest == 0 else math.ceil(math.log2(largest / high))
    low = -high - 1 if sign_mode == "mixed" else -high
    while not _fits(np.round(scaled / 2.0 ** exponent), low, high):
        exponent += 1
    mantissa = np.round(scaled / 2.0 ** exponent).astype(np.int64)
    error = mantissa * 2.0 ** exponent * lsb - w
    scale = float(np.abs(w).max()) if w.size else 0.0
    return QuantizedWeights(
        mantissa=mantissa, exponent=int(exponent), bits=int(bits), sign_mode=sign_mode, lsb=float(lsb),
        max_abs_error=float(np.abs(error).max(initial=0.0)),
        max_rel_error=float(np.abs(error).max(initial=0.0) / scale) if scale else 0.0,
        rms_error=float(np.sqrt(np.mean(error ** 2))) if w.size else 0.0,
        error_bound=float(2.0 ** (exponent - 1) * lsb),
    )


def _fits(mantissa, low, high):
    return mantissa.size == 0 or (mantissa.min() >= low and mantissa.max() <= high)
