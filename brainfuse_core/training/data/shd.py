"""Loader for the Spiking Heidelberg Digits (SHD, Cramer et al. 2020) HDF5 files, nothing downloaded.

A published file (``shd_train.h5``, ``shd_test.h5``) holds, per sample i:

- ``spikes/times[i]``: spike times in seconds (variable-length float),
- ``spikes/units[i]``: the input channel 0..699 of each spike (variable-length uint16),
- ``labels[i]``: the class 0..19,

(plus ``extra/`` metadata, ignored). Two forms are offered: the events themselves
(``read_shd_events``, the sparse form) and dense binned spike tensors (N, T, 700) with
T = ceil(max_time_ms / dt_ms) bins of dt_ms (``load_shd``, or ``iter_shd_batches`` batch by
batch so that the whole set never has to be dense at once). Bin k counts the spikes with
k·dt ≤ t < (k+1)·dt (ms); spikes at or after ``max_time_ms`` are dropped.
"""

import math
from pathlib import Path

import h5py
import numpy as np
import torch

from .errors import DataError, DataFileNotFoundError

N_UNITS = 700
REQUIRED = ("spikes/times", "spikes/units", "labels")


def _open(path):
    path = Path(path)
    if not path.is_file():
        raise DataFileNotFoundError(f"SHD file {path} does not exist; pass the path of an unpacked "
                                    "shd_train.h5 or shd_test.h5 (gunzip the downloaded .h5.gz first)")
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise DataError(f"{path} is not a readable HDF5 file ({exc}); unpack the .h5.gz archive or download it again") from exc
    missing = [key for key in REQUIRED if key not in handle]
    if missing:
        handle.close()
        raise DataError(f"{path} lacks the dataset(s) {missing}; an SHD file needs spikes/times, spikes/units "
                        "and labels (is this an SHD file from the published archive?)")
    n = len(handle["labels"])
    if len(handle["spikes/times"]) != n or len(handle["spikes/units"]) != n:
        lengths = (len(handle["spikes/times"]), len(handle["spikes/units"]), n)
        handle.close()
        raise DataError(f"{path}: spikes/times, spikes/units and labels have {lengths} samples; they must "
                        "have one entry per sample each (the file is truncated or corrupt: download it again)")
    return handle


def _check_sample(path, i, times, units, n_units):
    if times.shape != units.shape or times.ndim != 1:
        raise DataError(f"{path}: sample {i} has {times.size} spike times but {units.size} units; "
                        "each spike needs one time and one unit (the file is corrupt)")
    if times.size and not (np.isfinite(times).all() and times.min() >= 0):
        raise DataError(f"{path}: sample {i} has negative or non-finite spike times; times must be seconds ≥ 0")
    if units.size and units.max() >= n_units:
        raise DataError(f"{path}: sample {i} has unit {int(units.max())}, outside 0..{n_units - 1}; "
                        f"pass n_units={int(units.max()) + 1} if the file really has more channels")


def _read(handle, path, indices, n_units):
    """(times in s, units) per requested sample, and their labels; ``indices`` ascending."""
    times_ds, units_ds = handle["spikes/times"], handle["spikes/units"]
    events = []
    for i in indices:
        times = np.asarray(times_ds[i], dtype=np.float64)
        units = np.asarray(units_ds[i], dtype=np.int64)
        _check_sample(path, i, times, units, n_units)
        events.append((times, units))
    labels = np.asarray(handle["labels"][()], dtype=np.int64)[np.asarray(indices, dtype=np.int64)]
    return events, torch.from_numpy(labels)


def _count(path, limit):
    with _open(path) as handle:
        n = len(handle["labels"])
    if limit is not None and limit < 1:
        raise DataError(f"limit must be a positive number of samples (got {limit}); use None for all")
    return n if limit is None else min(n, limit)


def read_shd_events(path, limit=None, n_units=N_UNITS):
    """The sparse form: ``(events, labels)`` with ``events[i] = (times_s, units)`` numpy arrays.

    ``times_s`` are float64 seconds, ``units`` int64 channels 0..n_units−1, ``labels`` an int64
    tensor (N,). ``limit`` reads only the first ``limit`` samples. Malformed files raise
    ``DataError`` naming the sample and the fix.
    """
    n = _count(path, limit)
    with _open(path) as handle:
        return _read(handle, path, range(n), n_units)


def n_bins(dt_ms, max_time_ms):
    """Number of time bins T = ceil(max_time_ms / dt_ms) (a tiny tolerance absorbs rounding)."""
    if not (dt_ms > 0 and max_time_ms > 0):
        raise DataError(f"dt_ms and max_time_ms must be positive (got {dt_ms}, {max_time_ms}); e.g. dt_ms=10, max_time_ms=1000")
    return math.ceil(max_time_ms / dt_ms - 1e-9)


def bin_events(events, dt_ms, max_time_ms, n_units=N_UNITS, binary=False, dtype=torch.float32):
    """Dense spike tensor (N, T, n_units) from ``events`` (as ``read_shd_events`` returns them).

    Entry [i, k, u] counts the spikes of unit u in bin k of sample i (1 or 0 with ``binary``).
    """
    steps = n_bins(dt_ms, max_time_ms)
    dense = torch.zeros(len(events), steps, n_units, dtype=dtype)
    for i, (times, units) in enumerate(events):
        bins = np.floor(np.asarray(times) * 1000.0 / dt_ms).astype(np.int64)
        keep = bins < steps
        flat = torch.from_numpy(bins[keep] * n_units + np.asarray(units)[keep])
        counts = torch.bincount(flat, minlength=steps * n_units).view(steps, n_units)
        dense[i] = (counts > 0).to(dtype) if binary else counts.to(dtype)
    return dense


def load_shd(path, dt_ms=10.0, max_time_ms=1000.0, limit=None, binary=False, n_units=N_UNITS, dtype=torch.float32):
    """Dense SHD set: ``(spikes (N, T, n_units), labels (N,))``, T = ceil(max_time_ms / dt_ms).

    The full training set at dt = 10 ms, 1 s is 8156 × 100 × 700 floats (2.3 GB in float32):
    use ``limit`` or ``iter_shd_batches`` when that is too much.
    """
    events, labels = read_shd_events(path, limit, n_units)
    return bin_events(events, dt_ms, max_time_ms, n_units, binary, dtype), labels


def iter_shd_batches(path, batch_size, dt_ms=10.0, max_time_ms=1000.0, shuffle=False, seed=0, limit=None,
                     binary=False, n_units=N_UNITS, dtype=torch.float32):
    """Yield dense ``(spikes (B, T, n_units), labels (B,))`` batches, reading each batch from the file.

    With ``shuffle`` the sample order is a permutation drawn from ``seed`` (the same each time);
    the last batch may be smaller.
    """
    if batch_size < 1:
        raise DataError(f"batch_size must be a positive integer (got {batch_size})")
    n = _count(path, limit)
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    with _open(path) as handle:
        for start in range(0, n, batch_size):
            chunk = order[start:start + batch_size]
            ascending = np.sort(chunk)
            events, labels = _read(handle, path, ascending, n_units)
            # Back from file order to the requested (shuffled) order.
            position = np.searchsorted(ascending, chunk)
            events = [events[p] for p in position]
            labels = labels[torch.from_numpy(position)]
            yield bin_events(events, dt_ms, max_time_ms, n_units, binary, dtype), labels
