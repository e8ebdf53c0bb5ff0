"""scikit-learn's bundled handwritten digits (offline), scaled to [0, 1], split by seed.

The 1797 images are 8×8 pixels with integer values 0..16 (counts of set pixels in 4×4 blocks of
the original 32×32 bitmaps); they are divided by 16 so that 0 is background and 1 full ink.
"""

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from .errors import DataError

DIGITS_MAX_VALUE = 16.0


@dataclass
class DigitsSplit:
    """Train and test images (N, 1, 8, 8) in [0, 1] and integer labels (N,) 0..9."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def digits_split(seed=0, test_fraction=0.2, dtype=torch.float32):
    """The digits split into train and test sets, stratified by class, reproducible by ``seed``.

    Images come as (N, 1, 8, 8) tensors of ``dtype`` in [0, 1] (channel axis for ``nn.Conv2d``;
    ``x.flatten(1)`` gives 64 features for ``nn.Linear``), labels as int64 (N,). Each class keeps
    its share in both sets; the same seed gives the same split on every machine.
    """
    if not 0.0 < test_fraction < 1.0:
        raise DataError(f"test_fraction must lie strictly between 0 and 1 (got {test_fraction}); "
                        "use e.g. 0.2 for a fifth of the images in the test set")
    bunch = load_digits()
    images = bunch.images.astype(np.float64) / DIGITS_MAX_VALUE
    x_train, x_test, y_train, y_test = train_test_split(
        images, bunch.target, test_size=test_fraction, stratify=bunch.target, random_state=seed)

    def as_images(x):
        return torch.as_tensor(x, dtype=dtype).unsqueeze(1)

    def as_labels(y):
        return torch.as_tensor(y, dtype=torch.int64)

    return DigitsSplit(as_images(x_train), as_labels(y_train), as_images(x_test), as_labels(y_test))
