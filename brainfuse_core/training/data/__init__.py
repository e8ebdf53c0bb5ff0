"""Data for the HH-vs-LIF experiments: images, corruptions, dataset loaders, spike encodings, temporal tasks.

All tensors are batch-first (N, ...) and float32 unless ``dtype`` says otherwise; spike tensors
are (N, T, channels) with T steps of ``dt_ms`` ms; everything random is reproducible by ``seed``.

- ``digits``: scikit-learn's 8×8 digits in [0, 1], stratified train/test split (``digits_split``).
- ``corruptions``: CIFAR-10-C-style corruptions at severities 1..5 (``corrupt``,
  ``corrupted_test_sets``).
- ``cifar10c``: the published CIFAR-10-C ``.npy`` files (``load_cifar10c``).
- ``shd``: the Spiking Heidelberg Digits HDF5 files (``load_shd``, ``iter_shd_batches``,
  ``read_shd_events``).
- ``encoding``: rate and latency spike codes, digits shown row by row (``digit_rows``).
- ``temporal``: delayed match-to-sample and temporal XOR spike tasks.
"""

from .cifar10c import load_cifar10c
from .corruptions import CORRUPTIONS, NOISES, SEVERITIES, SEVERITY_CONSTANTS, corrupt, corrupted_test_sets
from .digits import DigitsSplit, digits_split
from .encoding import digit_rows, latency_encode, rate_encode, row_windows
from .errors import DataError, DataFileNotFoundError
from .shd import bin_events, iter_shd_batches, load_shd, read_shd_events
from .temporal import delayed_match_to_sample, temporal_xor

__all__ = [
    "CORRUPTIONS", "NOISES", "SEVERITIES", "SEVERITY_CONSTANTS", "DataError", "DataFileNotFoundError", "DigitsSplit",
    "bin_events", "corrupt", "corrupted_test_sets", "delayed_match_to_sample", "digit_rows", "digits_split",
    "iter_shd_batches", "latency_encode", "load_cifar10c", "load_shd", "rate_encode", "read_shd_events",
    "row_windows", "temporal_xor",
]
