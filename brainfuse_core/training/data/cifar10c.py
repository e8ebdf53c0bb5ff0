"""Loader for the published CIFAR-10-C files (Hendrycks & Dietterich 2019), nothing downloaded.

Layout of the published folder (e.g. ``CIFAR-10-C/``): one ``<corruption>.npy`` per corruption
(``gaussian_noise.npy``, ``shot_noise.npy``, ``impulse_noise.npy``, ``gaussian_blur.npy``,
``contrast.npy``, ...), each a uint8 array (5·N, 32, 32, 3): the N = 10000 test images at
severity 1, then the same images at severity 2, ..., 5; and ``labels.npy`` with the class
(0..9) of every row (length 5·N; a file with just the N labels of one severity is accepted too).
Arrays are opened memory-mapped, so only the requested severities are read.
"""

from pathlib import Path

import numpy as np
import torch

from .corruptions import CORRUPTIONS, SEVERITIES
from .errors import DataError, DataFileNotFoundError

IMAGE_SHAPE = (32, 32, 3)
N_SEVERITIES = len(SEVERITIES)
N_CLASSES = 10


def _open(path, what):
    if not path.is_file():
        raise DataFileNotFoundError(
            f"CIFAR-10-C {what} {path} does not exist; the folder must hold the published "
            f"<corruption>.npy files and labels.npy (download CIFAR-10-C and unpack it there)")
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise DataError(f"{path} is not a readable .npy array ({exc}); re-extract it from the CIFAR-10-C archive") from exc


def _check_images(array, path):
    if array.dtype != np.uint8 or array.ndim != 4 or array.shape[1:] != IMAGE_SHAPE:
        raise DataError(f"{path}: expected uint8 images of shape (5·N, 32, 32, 3); got {array.dtype} "
                        f"{array.shape}; the file is not a CIFAR-10-C corruption array (re-extract it)")
    if array.shape[0] == 0 or array.shape[0] % N_SEVERITIES:
        raise DataError(f"{path}: {array.shape[0]} images is not a positive multiple of 5 (one block per "
                        "severity 1..5); the file is truncated or not from CIFAR-10-C (re-extract it)")
    return array.shape[0] // N_SEVERITIES


def _labels_for(labels, n_per_severity, labels_path, images_path):
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{labels_path}: expected a 1-D integer array of labels; got {labels.dtype} {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() >= N_CLASSES):
        raise DataError(f"{labels_path}: labels must be classes 0..{N_CLASSES - 1} (got {labels.min()}..{labels.max()}); "
                        "use the labels.npy shipped with CIFAR-10-C")
    if len(labels) == n_per_severity:
        return lambda severity: labels
    if len(labels) == N_SEVERITIES * n_per_severity:
        return lambda severity: labels[(severity - 1) * n_per_severity: severity * n_per_severity]
    raise DataError(f"{labels_path} has {len(labels)} labels but {images_path} has {n_per_severity} images per "
                    f"severity ({N_SEVERITIES * n_per_severity} rows); labels.npy must have one label per row "
                    "(or per image of one severity): use the labels.npy shipped with the same archive")


def load_cifar10c(folder, corruptions=CORRUPTIONS, severities=SEVERITIES, limit=None, dtype=torch.float32):
    """CIFAR-10-C test sets: ``{(corruption, severity): (images, labels)}``.

    ``images`` are (n, 3, 32, 32) tensors of ``dtype`` in [0, 1] (pixel / 255, channels first),
    ``labels`` int64 (n,). ``limit`` keeps only the first ``limit`` images of each severity
    (for smoke runs). Missing folder or files, wrong shapes or dtypes and a labels file of the
    wrong length raise ``DataError`` naming the file and the fix.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataFileNotFoundError(f"CIFAR-10-C folder {folder} does not exist; pass the folder that "
                                    "holds the unpacked <corruption>.npy files and labels.npy")
    if any(s not in SEVERITIES for s in severities):
        raise DataError(f"severities must be integers 1..5 (got {list(severities)})")
    if limit is not None and limit < 1:
        raise DataError(f"limit must be a positive number of images per severity (got {limit}); use None for all")
    labels_path = folder / "labels.npy"
    labels = _open(labels_path, "labels file")
    out = {}
    for name in corruptions:
        path = folder / f"{name}.npy"
        array = _open(path, "corruption file")
        n = _check_images(array, path)
        labels_of = _labels_for(labels, n, labels_path, path)
        count = n if limit is None else min(limit, n)
        for s in severities:
            block = np.array(array[(s - 1) * n: (s - 1) * n + count])
            images = torch.from_numpy(block).permute(0, 3, 1, 2).to(dtype) / 255.0
            out[(name, s)] = (images.contiguous(), torch.from_numpy(np.array(labels_of(s)[:count], dtype=np.int64)))
    return out
