"""Synthetic spike tasks that need memory over hundreds of milliseconds.

Both tasks return ``(spikes, labels)``: spikes (N, T, channels) of ``dtype`` with 1.0 where a
channel spikes in a step of ``dt_ms`` ms (at most one spike per channel and step), labels int64
(N,). Two cues are separated by a delay (a number of ms, or a (low, high) range drawn uniformly
per trial); every channel also fires background spikes at ``background_hz`` throughout.
Labels are balanced (the two classes differ in count by at most one) and each cue on its own
carries no information about the label: only holding the first cue through the delay and
combining it with the second solves the task.

Timing (ms, with delay d of the trial):

- ``delayed_match_to_sample``: sample pattern in [0, sample_ms), test pattern in
  [sample_ms + d, sample_ms + d + test_ms); T covers sample_ms + max d + test_ms + tail_ms.
- ``temporal_xor``: first cue in [j1, j1 + cue_ms), second in [s, s + cue_ms) with
  s = cue_ms + jitter_ms + d + j2, where j1, j2 are onset jitters uniform in [0, jitter_ms];
  T covers 2 (cue_ms + jitter_ms) + max d + tail_ms.
"""

import numpy as np
import torch

from .encoding import ms_to_steps, spike_probability
from .errors import DataError


def _delays(delay_ms, n, dt_ms, rng):
    """Per-trial delays in steps and their maximum."""
    low, high = (delay_ms, delay_ms) if np.isscalar(delay_ms) else tuple(delay_ms)
    if not 0 <= low <= high:
        raise DataError(f"delay_ms must be ≥ 0 ms or a (low, high) range with 0 ≤ low ≤ high (got {delay_ms})")
    lo, hi = ms_to_steps(low, dt_ms, "delay_ms"), ms_to_steps(high, dt_ms, "delay_ms")
    return rng.integers(lo, hi + 1, size=n), hi


def _balanced(n, classes, rng):
    """``n`` labels cycling through ``classes`` values, shuffled: class counts differ by at most one."""
    if n < 1:
        raise DataError(f"n must be a positive number of trials (got {n})")
    return rng.permutation(np.arange(n) % classes)


def _background(n, steps, channels, background_hz, dt_ms, rng):
    p = spike_probability(background_hz, dt_ms, "background_hz")
    return rng.random((n, steps, channels)) < p


def delayed_match_to_sample(n, dt_ms=1.0, channels=40, n_patterns=4, sample_ms=50.0, delay_ms=(200.0, 400.0),
                            test_ms=50.0, tail_ms=50.0, pattern_rate_hz=40.0, jitter_ms=2.0, background_hz=5.0,
                            seed=0, pattern_seed=0, dtype=torch.float32):
    """Delayed match-to-sample: is the test pattern the same as the sample shown before the delay?

    ``n_patterns`` frozen patterns are drawn once from ``pattern_seed``: on each channel a
    Poisson spike train at ``pattern_rate_hz`` over ``sample_ms`` (= ``test_ms``). A trial shows a
    pattern chosen uniformly (the sample), waits the delay, then shows the same pattern (label 1)
    or a different one chosen uniformly among the others (label 0); every shown spike is moved by
    Gaussian jitter of s.d. ``jitter_ms`` (kept inside its window). Sample and test patterns are
    each uniform over the patterns whatever the label. Use one ``pattern_seed`` and different
    ``seed`` values for the training and test sets.
    """
    if n_patterns < 2:
        raise DataError(f"n_patterns must be at least 2 for a non-match to exist (got {n_patterns})")
    if test_ms != sample_ms:
        raise DataError(f"test_ms ({test_ms}) must equal sample_ms ({sample_ms}): the test shows the same kind of pattern")
    window = ms_to_steps(sample_ms, dt_ms, "sample_ms")
    if window < 1:
        raise DataError(f"sample_ms {sample_ms} is shorter than one step of {dt_ms} ms; lengthen it or lower dt_ms")
    p_pattern = spike_probability(pattern_rate_hz, dt_ms, "pattern_rate_hz")
    pattern_rng = np.random.default_rng(pattern_seed)
    patterns = [np.nonzero(pattern_rng.random((window, channels)) < p_pattern) for _ in range(n_patterns)]

    rng = np.random.default_rng(seed)
    labels = _balanced(n, 2, rng)
    sample = rng.integers(0, n_patterns, size=n)
    shift = rng.integers(1, n_patterns, size=n)
    test = np.where(labels == 1, sample, (sample + shift) % n_patterns)
    delays, max_delay = _delays(delay_ms, n, dt_ms, rng)
    steps = window + max_delay + window + ms_to_steps(tail_ms, dt_ms, "tail_ms")
    spikes = _background(n, steps, channels, background_hz, dt_ms, rng)

    def place(trials, onsets, pattern):
        times, units = patterns[pattern]
        moved = times[None, :] + np.round(rng.normal(0.0, jitter_ms / dt_ms, (len(trials), len(times))))
        moved = np.clip(moved, 0, window - 1).astype(np.int64) + onsets[:, None]
        spikes[trials[:, None], moved, units[None, :]] = True

    for k in range(n_patterns):
        shown_first, shown_second = np.nonzero(sample == k)[0], np.nonzero(test == k)[0]
        place(shown_first, np.zeros(len(shown_first), dtype=np.int64), k)
        place(shown_second, window + delays[shown_second], k)
    return torch.from_numpy(spikes).to(dtype), torch.from_numpy(labels.astype(np.int64))


def temporal_xor(n, dt_ms=1.0, channels=20, cue_ms=50.0, delay_ms=300.0, tail_ms=50.0, burst_hz=100.0,
                 jitter_ms=10.0, background_hz=5.0, seed=0, dtype=torch.float32):
    """Temporal XOR: two cue bits as bursts separated by a delay; label = first bit XOR second bit.

    The channels form two halves: a bit 0 is a Poisson burst at ``burst_hz`` on the first half
    for ``cue_ms``, a bit 1 the same burst on the second half. The four (bit, bit) combinations
    are equally frequent (so is each label), and each bit alone is independent of the label.
    Each cue's onset is jittered uniformly by up to ``jitter_ms``.
    """
    if channels < 2 or channels % 2:
        raise DataError(f"channels must be an even number ≥ 2 (two halves code the bit; got {channels})")
    cue, jitter = ms_to_steps(cue_ms, dt_ms, "cue_ms"), ms_to_steps(jitter_ms, dt_ms, "jitter_ms")
    if cue < 1:
        raise DataError(f"cue_ms {cue_ms} is shorter than one step of {dt_ms} ms; lengthen it or lower dt_ms")
    p_burst = spike_probability(burst_hz, dt_ms, "burst_hz")
    rng = np.random.default_rng(seed)
    combination = _balanced(n, 4, rng)
    first, second = combination // 2, combination % 2
    delays, max_delay = _delays(delay_ms, n, dt_ms, rng)
    steps = 2 * (cue + jitter) + max_delay + ms_to_steps(tail_ms, dt_ms, "tail_ms")
    spikes = _background(n, steps, channels, background_hz, dt_ms, rng)
    half = channels // 2
    step_index = np.arange(steps)[None, :]
    for bits, onsets in ((first, rng.integers(0, jitter + 1, size=n)),
                         (second, cue + jitter + delays + rng.integers(0, jitter + 1, size=n))):
        in_cue = (step_index >= onsets[:, None]) & (step_index < onsets[:, None] + cue)
        burst = (rng.random((n, steps, half)) < p_burst) & in_cue[:, :, None]
        for bit in (0, 1):
            chosen = bits == bit
            spikes[chosen, :, bit * half:(bit + 1) * half] |= burst[chosen]
    labels = (first ^ second).astype(np.int64)
    return torch.from_numpy(spikes).to(dtype), torch.from_numpy(labels)
