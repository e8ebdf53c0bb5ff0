"""Spike encodings of intensities in [0, 1] over discrete time steps of ``dt_ms`` milliseconds.

Every encoder returns batch-first, time-second tensors: intensities (N, *features) become spikes
(N, T, *features) of ``dtype`` (1.0 = a spike in that step; Poisson counts may exceed 1), and
random encoders are reproducible by ``seed``.

- ``rate_encode``: each step spikes with probability x · max_rate_hz · dt_ms / 1000 (Bernoulli),
  or draws a Poisson count of that mean; the expected rate is x · max_rate_hz.
- ``latency_encode``: one spike per feature, brighter earlier: at step round((1 − x)(T − 1));
  features with x ≤ threshold stay silent.
- ``digit_rows``: an image shown row by row (a temporal task): row r of H is presented during its
  own window of ``row_ms``, followed by ``gap_ms`` of silence, on W channels (one per column),
  each window coded by ``rate_encode`` or ``latency_encode``. Row r starts at
  r · (row_ms + gap_ms) ms; the whole image takes H · (row_ms + gap_ms) ms, e.g. 8 rows × 40 ms
  = 320 ms, so a classifier must keep the first rows in memory for hundreds of ms.
"""

import torch

from .errors import DataError


def ms_to_steps(ms, dt_ms, what="duration"):
    """Whole steps of ``dt_ms`` in ``ms`` (rounded to the nearest step; must be ≥ 0)."""
    if not dt_ms > 0:
        raise DataError(f"dt_ms must be positive (got {dt_ms}); e.g. dt_ms=1.0")
    if ms < 0:
        raise DataError(f"{what} must be ≥ 0 ms (got {ms})")
    return int(round(ms / dt_ms))


def spike_probability(rate_hz, dt_ms, what="rate"):
    """Probability of a spike in one step of ``dt_ms`` at ``rate_hz`` (must not exceed 1)."""
    p = rate_hz * dt_ms / 1000.0
    if not 0.0 <= p <= 1.0:
        raise DataError(f"{what} {rate_hz} Hz with dt {dt_ms} ms gives a spike probability {p:.3g} per step, "
                        "outside [0, 1]; lower the rate or dt_ms")
    return p


def _check_intensities(x):
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() < 1:
        raise DataError("intensities must be a floating-point tensor (N, *features) in [0, 1]")
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise DataError(f"intensities must lie in [0, 1] (got {float(x.min()):.3g}..{float(x.max()):.3g}); "
                        "scale them first (digits: divide by 16)")


def rate_encode(x, steps, dt_ms=1.0, max_rate_hz=200.0, seed=0, mode="bernoulli", dtype=torch.float32):
    """Rate code: (N, *features) intensities → (N, steps, *features) spikes at rate x · max_rate_hz.

    ``mode="bernoulli"``: at most one spike per step, probability x · max_rate_hz · dt_ms / 1000;
    ``mode="poisson"``: a Poisson count with that mean per step.
    """
    _check_intensities(x)
    if steps < 1:
        raise DataError(f"steps must be a positive number of time steps (got {steps})")
    p_max = spike_probability(max_rate_hz, dt_ms, "max_rate_hz")
    gen = torch.Generator().manual_seed(int(seed))
    p = (x.detach().to("cpu", torch.float64) * p_max).unsqueeze(1).expand(x.shape[0], steps, *x.shape[1:])
    if mode == "bernoulli":
        spikes = torch.bernoulli(p, generator=gen)
    elif mode == "poisson":
        spikes = torch.poisson(p.contiguous(), generator=gen)
    else:
        raise DataError(f"mode must be 'bernoulli' or 'poisson' (got {mode!r})")
    return spikes.to(device=x.device, dtype=dtype)


def latency_encode(x, steps, threshold=0.0, dtype=torch.float32):
    """Latency code: one spike per feature at step round((1 − x)(steps − 1)); x ≤ threshold: none."""
    _check_intensities(x)
    if steps < 1:
        raise DataError(f"steps must be a positive number of time steps (got {steps})")
    when = torch.round((1.0 - x) * (steps - 1)).long().clamp(0, steps - 1)
    spikes = torch.zeros(x.shape[0], steps, *x.shape[1:], dtype=dtype, device=x.device)
    spikes.scatter_(1, when.unsqueeze(1), (x > threshold).to(dtype).unsqueeze(1))
    return spikes


def _row_steps(dt_ms, row_ms, gap_ms):
    row, gap = ms_to_steps(row_ms, dt_ms, "row_ms"), ms_to_steps(gap_ms, dt_ms, "gap_ms")
    if row < 1:
        raise DataError(f"row_ms {row_ms} is shorter than one step of {dt_ms} ms; lengthen it or lower dt_ms")
    return row, gap


def row_windows(rows, dt_ms=1.0, row_ms=40.0, gap_ms=0.0):
    """(start, stop) steps of each row's window in ``digit_rows``; stop is exclusive."""
    row, gap = _row_steps(dt_ms, row_ms, gap_ms)
    return [(r * (row + gap), r * (row + gap) + row) for r in range(rows)]


def digit_rows(images, dt_ms=1.0, row_ms=40.0, gap_ms=0.0, code="rate", max_rate_hz=200.0, threshold=0.0,
               seed=0, dtype=torch.float32):
    """Images shown row by row: (N, H, W) or (N, 1, H, W) in [0, 1] → spikes (N, T, W).

    Channel j carries column j; during row r's window (``row_windows``) it codes pixel (r, j)
    with ``code="rate"`` (``rate_encode`` at max_rate_hz) or ``code="latency"``
    (``latency_encode`` within the window). T = H · (row_ms + gap_ms) / dt_ms steps.
    """
    if images.dim() == 4 and images.shape[1] == 1:
        images = images[:, 0]
    if images.dim() != 3:
        raise DataError(f"images must be (N, H, W) or (N, 1, H, W); got shape {tuple(images.shape)}")
    _check_intensities(images)
    n, rows, width = images.shape
    row_steps, gap_steps = _row_steps(dt_ms, row_ms, gap_ms)
    if code == "rate":
        coded = rate_encode(images.reshape(n, rows * width), row_steps, dt_ms, max_rate_hz, seed, dtype=dtype)
    elif code == "latency":
        coded = latency_encode(images.reshape(n, rows * width), row_steps, threshold, dtype=dtype)
    else:
        raise DataError(f"code must be 'rate' or 'latency' (got {code!r})")
    coded = coded.view(n, row_steps, rows, width)
    spikes = torch.zeros(n, rows * (row_steps + gap_steps), width, dtype=dtype, device=images.device)
    for r, (start, stop) in enumerate(row_windows(rows, dt_ms, row_ms, gap_ms)):
        spikes[:, start:stop] = coded[:, :, r]
    return spikes
