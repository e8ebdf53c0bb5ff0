"""Common image corruptions at severities 1..5, after CIFAR-10-C (Hendrycks & Dietterich, ICLR 2019).

Images are float tensors (..., H, W) in [0, 1] (any leading batch/channel axes); every corruption
returns a tensor of the same shape and dtype, clipped to [0, 1], and is reproducible by ``seed``.

The five corruptions and their per-severity constants (``SEVERITY_CONSTANTS``):

- ``gaussian_noise``: x + N(0, c²) per pixel; c is the standard deviation.
- ``shot_noise``: Poisson(x·c) / c per pixel; c is photons per unit intensity (fewer is noisier).
- ``impulse_noise``: each pixel independently becomes 0 (pepper) with probability c/2 or
  1 (salt) with probability c/2.
- ``gaussian_blur``: Gaussian filter of standard deviation c pixels, kernel truncated at 4 c,
  edges padded with the nearest pixel (as scikit-image's ``gaussian`` used by the original).
- ``contrast``: (x − m)·c + m with m each image's (and channel's) mean intensity.

Two tables are given: ``"cifar10c"`` (the default; the constants the CIFAR-10-C files were made
with) and ``"imagenet_c"`` (the published ImageNet-C constants, much stronger). On the digits
(17 grey levels) the CIFAR-10-C noise levels are too weak to matter: a logistic regression
trained on clean digits (split seed 0) keeps its clean test accuracy (0.967) under Gaussian
and shot noise at every severity, and drops to 0.92–0.96 under impulse noise; with the ImageNet-C noise levels it
falls to 0.82, 0.82 and 0.76 at severity 5, while ImageNet-C blur and contrast take it to chance.
Tables can be mixed by merging dicts, e.g. ImageNet-C noise with CIFAR-10-C blur and contrast:
``{**corrupted_test_sets(x, NOISES, constants="imagenet_c"),
**corrupted_test_sets(x, ("gaussian_blur", "contrast"))}``.

Adaptation to the 8×8 digits: the noise and contrast corruptions act per pixel or per image and
need none. The blur σ stays in pixels of the image it is applied to, so on 8×8 digits it is
4× wider relative to the image than on 32×32 CIFAR images. Scaling σ to the image width
(σ·8/32 ≤ 0.25 px) would move less than 0.2 % of a pixel's intensity to its neighbours, i.e.
no corruption at all; in pixel units σ = 0.4..1 px blurs strokes that are 1–2 px wide, as
σ = 0.4..1 px blurs the fine detail of a CIFAR image.
"""

import numpy as np
import torch
import torch.nn.functional as F

from .errors import DataError

CORRUPTIONS = ("gaussian_noise", "shot_noise", "impulse_noise", "gaussian_blur", "contrast")
NOISES = CORRUPTIONS[:3]
SEVERITIES = (1, 2, 3, 4, 5)

SEVERITY_CONSTANTS = {
    "cifar10c": {
        "gaussian_noise": (0.04, 0.06, 0.08, 0.09, 0.10),
        "shot_noise": (500.0, 250.0, 100.0, 75.0, 50.0),
        "impulse_noise": (0.01, 0.02, 0.03, 0.05, 0.07),
        "gaussian_blur": (0.4, 0.6, 0.7, 0.8, 1.0),
        "contrast": (0.75, 0.5, 0.4, 0.3, 0.15),
    },
    "imagenet_c": {
        "gaussian_noise": (0.08, 0.12, 0.18, 0.26, 0.38),
        "shot_noise": (60.0, 25.0, 12.0, 5.0, 3.0),
        "impulse_noise": (0.03, 0.06, 0.09, 0.17, 0.27),
        "gaussian_blur": (1.0, 2.0, 3.0, 4.0, 6.0),
        "contrast": (0.4, 0.3, 0.2, 0.1, 0.05),
    },
}

BLUR_TRUNCATE = 4.0


def severity_constant(corruption, severity, constants="cifar10c"):
    """The constant c of ``corruption`` at ``severity`` (1..5) in table ``constants``."""
    if constants not in SEVERITY_CONSTANTS:
        raise DataError(f"unknown corruption constants {constants!r}; use one of {sorted(SEVERITY_CONSTANTS)}")
    if corruption not in CORRUPTIONS:
        raise DataError(f"unknown corruption {corruption!r}; use one of {list(CORRUPTIONS)}")
    if severity not in SEVERITIES:
        raise DataError(f"severity must be an integer 1..5 (got {severity!r})")
    return SEVERITY_CONSTANTS[constants][corruption][severity - 1]


def _generator(images, seed):
    return torch.Generator(device=images.device).manual_seed(int(seed))


def _gaussian_noise(x, c, gen):
    return x + c * torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)


def _shot_noise(x, c, gen):
    return torch.poisson(x * c, generator=gen) / c


def _impulse_noise(x, c, gen):
    u = torch.rand(x.shape, generator=gen, device=x.device, dtype=x.dtype)
    x = torch.where(u < c / 2, torch.zeros_like(x), x)
    return torch.where((u >= c / 2) & (u < c), torch.ones_like(x), x)


def gaussian_kernel(sigma, dtype=torch.float64):
    """Normalised 1-D Gaussian weights of standard deviation ``sigma`` pixels, radius round(4 σ)."""
    radius = int(BLUR_TRUNCATE * sigma + 0.5)
    offsets = torch.arange(-radius, radius + 1, dtype=dtype)
    weights = torch.exp(-0.5 * (offsets / sigma) ** 2)
    return weights / weights.sum()


def _gaussian_blur(x, sigma, gen):
    kernel = gaussian_kernel(sigma, x.dtype).to(x.device)
    radius = len(kernel) // 2
    flat = x.reshape(-1, 1, *x.shape[-2:])
    # Separable filter: rows then columns, each with nearest-pixel padding.
    flat = F.conv2d(F.pad(flat, (radius, radius, 0, 0), mode="replicate"), kernel.view(1, 1, 1, -1))
    flat = F.conv2d(F.pad(flat, (0, 0, radius, radius), mode="replicate"), kernel.view(1, 1, -1, 1))
    return flat.reshape(x.shape)


def _contrast(x, c, gen):
    mean = x.mean(dim=(-2, -1), keepdim=True)
    return (x - mean) * c + mean


_APPLY = {
    "gaussian_noise": _gaussian_noise,
    "shot_noise": _shot_noise,
    "impulse_noise": _impulse_noise,
    "gaussian_blur": _gaussian_blur,
    "contrast": _contrast,
}


def _check_images(images):
    if not isinstance(images, torch.Tensor) or not images.is_floating_point():
        raise DataError("images must be a floating-point torch tensor (..., H, W) in [0, 1]; "
                        "convert uint8 images with images.float() / 255")
    if images.dim() < 2:
        raise DataError(f"images must have at least two axes (..., H, W); got shape {tuple(images.shape)}")
    if images.numel() and (images.min() < 0 or images.max() > 1):
        raise DataError(f"image values must lie in [0, 1] (got {float(images.min()):.3g}..{float(images.max()):.3g}); "
                        "scale them first (digits: divide by 16, uint8: divide by 255)")


def corrupt(images, corruption, severity, seed=0, constants="cifar10c"):
    """``images`` (..., H, W) in [0, 1] with ``corruption`` at ``severity`` 1..5, clipped to [0, 1].

    Random corruptions draw from a generator seeded with ``seed`` on the images' device, so the
    same call gives the same result; blur and contrast are deterministic.
    """
    c = severity_constant(corruption, severity, constants)
    _check_images(images)
    return _APPLY[corruption](images, c, _generator(images, seed)).clamp(0.0, 1.0)


def corruption_seed(seed, corruption, severity):
    """The seed ``corrupted_test_sets`` uses for one (corruption, severity): independent streams per pair."""
    state = np.random.SeedSequence([int(seed), CORRUPTIONS.index(corruption), int(severity)])
    return int(state.generate_state(1, dtype=np.uint32)[0])


def corrupted_test_sets(images, corruptions=CORRUPTIONS, severities=SEVERITIES, seed=0, constants="cifar10c"):
    """Every corrupted copy of a test set: ``{(corruption, severity): tensor}`` shaped like ``images``.

    Each pair uses its own seed (``corruption_seed(seed, corruption, severity)``), so adding or
    dropping a pair leaves the others unchanged. Labels are those of ``images``.
    """
    return {(name, s): corrupt(images, name, s, corruption_seed(seed, name, s), constants)
            for name in corruptions for s in severities}
