"""The training data package: digits, corruptions, CIFAR-10-C and SHD loaders, spike encodings, temporal tasks."""

import h5py
import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from brainfuse_core.training.data import (CORRUPTIONS, NOISES, SEVERITIES, SEVERITY_CONSTANTS, DataError,
                                          DataFileNotFoundError, corrupt, corrupted_test_sets,
                                          delayed_match_to_sample, digit_rows, digits_split, iter_shd_batches,
                                          latency_encode, load_cifar10c, load_shd, rate_encode, read_shd_events,
                                          row_windows, temporal_xor)
from brainfuse_core.training.data.corruptions import corruption_seed

@pytest.fixture(scope="module")
def digits():
    return digits_split(seed=0)


# --- digits ---------------------------------------------------------------------------------------

def test_digits_split_shapes_ranges_and_stratification(digits):
    assert digits.x_train.shape == (1437, 1, 8, 8) and digits.x_test.shape == (360, 1, 8, 8)
    assert digits.x_train.dtype == torch.float32 and digits.y_train.dtype == torch.int64
    assert float(digits.x_train.min()) == 0.0 and float(digits.x_train.max()) == 1.0
    raw = load_digits()
    class_sizes = np.bincount(raw.target)
    assert np.all(np.abs(np.bincount(digits.y_test.numpy()) - 0.2 * class_sizes) <= 1)
    # Train and test together are the whole data set, each image once, with its own label.
    ours = np.concatenate([digits.x_train.flatten(1).numpy(), digits.x_test.flatten(1).numpy()]) * 16
    ours = np.column_stack([ours, np.concatenate([digits.y_train.numpy(), digits.y_test.numpy()])])
    reference = np.column_stack([raw.data, raw.target])
    assert np.array_equal(np.unique(ours, axis=0, return_counts=True)[1],
                          np.unique(reference, axis=0, return_counts=True)[1])
    assert np.array_equal(np.unique(ours, axis=0), np.unique(reference, axis=0))


def test_digits_split_is_reproducible_by_seed(digits):
    again, other = digits_split(seed=0), digits_split(seed=1)
    assert torch.equal(again.x_test, digits.x_test) and torch.equal(again.y_train, digits.y_train)
    assert not torch.equal(other.x_test, digits.x_test)
    assert digits_split(seed=0, dtype=torch.float64).x_test.dtype == torch.float64
    with pytest.raises(DataError, match="test_fraction"):
        digits_split(test_fraction=1.0)


# --- corruptions ----------------------------------------------------------------------------------

def test_corruptions_keep_shape_and_range_and_grow_with_severity(digits):
    clean = digits.x_test
    sets = corrupted_test_sets(clean, seed=3)
    assert set(sets) == {(c, s) for c in CORRUPTIONS for s in SEVERITIES}
    for name in CORRUPTIONS:
        change = []
        for s in SEVERITIES:
            x = sets[(name, s)]
            assert x.shape == clean.shape and x.dtype == clean.dtype
            assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
            change.append(float((x - clean).abs().mean()))
        assert change[0] > 0 and all(b > a for a, b in zip(change, change[1:])), (name, change)
        assert torch.equal(sets[(name, 2)], corrupt(clean, name, 2, corruption_seed(3, name, 2)))


def test_random_corruptions_are_reproducible_by_seed(digits):
    for name in NOISES:
        a, b = corrupt(digits.x_test, name, 3, seed=7), corrupt(digits.x_test, name, 3, seed=7)
        assert torch.equal(a, b)
        assert not torch.equal(a, corrupt(digits.x_test, name, 3, seed=8))
    assert not torch.equal(corrupted_test_sets(digits.x_test, seed=0)[("shot_noise", 1)],
                           corrupted_test_sets(digits.x_test, seed=1)[("shot_noise", 1)])


def test_noise_corruptions_have_the_published_statistics():
    x = torch.full((200, 3, 32, 32), 0.5, dtype=torch.float64)
    for s in SEVERITIES:
        sigma = SEVERITY_CONSTANTS["cifar10c"]["gaussian_noise"][s - 1]
        noisy = corrupt(x, "gaussian_noise", s, seed=s)
        assert float((noisy - x).std()) == pytest.approx(sigma, rel=0.02)  # 0.5 ± 5σ never clips
        photons = SEVERITY_CONSTANTS["cifar10c"]["shot_noise"][s - 1]
        shot = corrupt(x, "shot_noise", s, seed=s)
        assert float(shot.mean()) == pytest.approx(0.5, abs=0.003)
        assert float(shot.var()) == pytest.approx(0.5 / photons, rel=0.03)  # Poisson: var = mean / c
        assert torch.allclose(shot * photons, torch.round(shot * photons))
        amount = SEVERITY_CONSTANTS["imagenet_c"]["impulse_noise"][s - 1]
        impulse = corrupt(x, "impulse_noise", s, seed=s, constants="imagenet_c")
        assert set(impulse.unique().tolist()) <= {0.0, 0.5, 1.0}
        assert float((impulse == 0).double().mean()) == pytest.approx(amount / 2, rel=0.05)
        assert float((impulse == 1).double().mean()) == pytest.approx(amount / 2, rel=0.05)


def test_blur_matches_scipy_gaussian_filter_and_contrast_the_formula(digits):
    x = digits.x_test[:20].double()
    for table in SEVERITY_CONSTANTS:
        for s in SEVERITIES:
            sigma = SEVERITY_CONSTANTS[table]["gaussian_blur"][s - 1]
            ours = corrupt(x, "gaussian_blur", s, constants=table)
            reference = gaussian_filter(x.numpy(), sigma=(0, 0, sigma, sigma), mode="nearest", truncate=4.0)
            np.testing.assert_allclose(ours.numpy(), np.clip(reference, 0, 1), atol=1e-12)
            c = SEVERITY_CONSTANTS[table]["contrast"][s - 1]
            low = corrupt(x, "contrast", s, constants=table)
            mean = x.mean(dim=(2, 3), keepdim=True)
            np.testing.assert_allclose(low.numpy(), (c * x + (1 - c) * mean).numpy(), atol=1e-12)
            np.testing.assert_allclose(low.std(dim=(2, 3)).numpy(), c * x.std(dim=(2, 3)).numpy(), rtol=1e-9)


def test_corruption_arguments_are_checked(digits):
    with pytest.raises(DataError, match="unknown corruption 'fog'"):
        corrupt(digits.x_test, "fog", 1)
    with pytest.raises(DataError, match="severity"):
        corrupt(digits.x_test, "contrast", 6)
    with pytest.raises(DataError, match="divide by 16"):
        corrupt(digits.x_test * 16, "contrast", 1)
    with pytest.raises(DataError, match="floating-point"):
        corrupt((digits.x_test * 16).to(torch.uint8), "contrast", 1)
    with pytest.raises(DataError, match="imagenet_c"):
        corrupt(digits.x_test, "contrast", 1, constants="mnist_c")


# --- CIFAR-10-C -----------------------------------------------------------------------------------

PER_SEVERITY = 2


def write_cifar10c(folder, names=("gaussian_noise", "contrast"), labels_length=5 * PER_SEVERITY, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(exist_ok=True)
    arrays = {name: rng.integers(0, 256, (5 * PER_SEVERITY, 32, 32, 3), dtype=np.uint8) for name in names}
    for name, array in arrays.items():
        np.save(folder / f"{name}.npy", array)
    labels = rng.integers(0, 10, labels_length).astype(np.int64)
    np.save(folder / "labels.npy", labels)
    return arrays, labels


def test_cifar10c_loader_reads_the_generated_files_exactly(tmp_path):
    arrays, labels = write_cifar10c(tmp_path / "CIFAR-10-C")
    data = load_cifar10c(tmp_path / "CIFAR-10-C", corruptions=("gaussian_noise", "contrast"))
    assert set(data) == {(c, s) for c in ("gaussian_noise", "contrast") for s in SEVERITIES}
    for (name, s), (images, y) in data.items():
        rows = slice((s - 1) * PER_SEVERITY, s * PER_SEVERITY)
        assert images.shape == (PER_SEVERITY, 3, 32, 32) and images.dtype == torch.float32
        for i in range(PER_SEVERITY):
            for channel in range(3):
                expected = arrays[name][rows][i, :, :, channel].astype(np.float32) / 255
                np.testing.assert_array_equal(images[i, channel].numpy(), expected)
        assert y.dtype == torch.int64 and y.tolist() == labels[rows].tolist()
    limited = load_cifar10c(tmp_path / "CIFAR-10-C", corruptions=("contrast",), severities=(5,), limit=1)
    assert list(limited) == [("contrast", 5)] and limited[("contrast", 5)][0].shape == (1, 3, 32, 32)
    assert limited[("contrast", 5)][1].tolist() == labels[8:9].tolist()


def test_cifar10c_accepts_one_severitys_labels(tmp_path):
    _, labels = write_cifar10c(tmp_path, names=("shot_noise",), labels_length=PER_SEVERITY)
    data = load_cifar10c(tmp_path, corruptions=("shot_noise",))
    assert all(data[("shot_noise", s)][1].tolist() == labels.tolist() for s in SEVERITIES)


def test_cifar10c_malformed_folders_are_explained(tmp_path):
    with pytest.raises(DataFileNotFoundError, match="folder .* does not exist"):
        load_cifar10c(tmp_path / "absent")
    write_cifar10c(tmp_path, names=("contrast",))
    with pytest.raises(DataFileNotFoundError, match="impulse_noise.npy does not exist"):
        load_cifar10c(tmp_path, corruptions=("impulse_noise",))
    (tmp_path / "labels.npy").unlink()
    with pytest.raises(DataFileNotFoundError, match="labels.npy does not exist"):
        load_cifar10c(tmp_path, corruptions=("contrast",))
    np.save(tmp_path / "labels.npy", np.zeros(7, dtype=np.int64))
    with pytest.raises(DataError, match="7 labels but .* 2 images per severity"):
        load_cifar10c(tmp_path, corruptions=("contrast",))
    np.save(tmp_path / "labels.npy", np.full(10, 10, dtype=np.int64))
    with pytest.raises(DataError, match=r"classes 0\.\.9"):
        load_cifar10c(tmp_path, corruptions=("contrast",))
    np.save(tmp_path / "labels.npy", np.zeros(10, dtype=np.int64))
    np.save(tmp_path / "fog.npy", np.zeros((10, 32, 32), dtype=np.uint8))
    with pytest.raises(DataError, match=r"shape \(5·N, 32, 32, 3\)"):
        load_cifar10c(tmp_path, corruptions=("fog",))
    np.save(tmp_path / "fog.npy", np.zeros((10, 32, 32, 3), dtype=np.float32))
    with pytest.raises(DataError, match="uint8"):
        load_cifar10c(tmp_path, corruptions=("fog",))
    np.save(tmp_path / "fog.npy", np.zeros((9, 32, 32, 3), dtype=np.uint8))
    with pytest.raises(DataError, match="multiple of 5"):
        load_cifar10c(tmp_path, corruptions=("fog",))
    (tmp_path / "fog.npy").write_text("not numpy")
    with pytest.raises(DataError, match="not a readable .npy"):
        load_cifar10c(tmp_path, corruptions=("fog",))


# --- SHD ------------------------------------------------------------------------------------------

SHD_SAMPLES = [  # (spike times in s, units, label)
    ([0.0005, 0.0015, 0.0019, 0.0102, 0.5, 1.2], [3, 3, 699, 3, 0, 5], 7),
    ([], [], 0),
    ([0.02, 0.02, 0.0999], [10, 11, 10], 19),
]


def write_shd(path, samples=SHD_SAMPLES, drop=None, times_dtype=np.float32):
    with h5py.File(path, "w") as f:
        times = f.create_dataset("spikes/times", (len(samples),), dtype=h5py.vlen_dtype(times_dtype))
        units = f.create_dataset("spikes/units", (len(samples),), dtype=h5py.vlen_dtype(np.uint16))
        for i, (t, u, _) in enumerate(samples):
            times[i] = np.asarray(t, dtype=times_dtype)
            units[i] = np.asarray(u, dtype=np.uint16)
        f.create_dataset("labels", data=np.array([label for *_, label in samples], dtype=np.uint16))
        f.create_dataset("extra/speaker", data=np.zeros(len(samples), dtype=np.uint16))
        if drop:
            del f[drop]
    return path


def expected_dense(samples, dt_ms, max_time_ms):
    steps = int(np.ceil(max_time_ms / dt_ms))
    dense = np.zeros((len(samples), steps, 700))
    for i, (times, units, _) in enumerate(samples):
        for t, u in zip(np.asarray(times, dtype=np.float32).astype(np.float64), units):
            k = int(t * 1000 // dt_ms)
            if k < steps:
                dense[i, k, u] += 1
    return dense


def test_shd_loader_reads_the_generated_file_exactly(tmp_path):
    path = write_shd(tmp_path / "shd_test.h5")
    events, labels = read_shd_events(path)
    assert labels.tolist() == [7, 0, 19]
    for (times, units), (t, u, _) in zip(events, SHD_SAMPLES):
        np.testing.assert_array_equal(times, np.asarray(t, dtype=np.float32))
        np.testing.assert_array_equal(units, u)
    for dt_ms, max_time_ms in ((1.0, 1000.0), (10.0, 100.0), (0.5, 30.0)):
        spikes, labels = load_shd(path, dt_ms=dt_ms, max_time_ms=max_time_ms)
        assert spikes.dtype == torch.float32 and labels.dtype == torch.int64
        np.testing.assert_array_equal(spikes.numpy(), expected_dense(SHD_SAMPLES, dt_ms, max_time_ms))
    spikes, _ = load_shd(path, dt_ms=1.0, max_time_ms=1000.0)
    assert spikes[0, 1, 3] == 1 and spikes[0, 1, 699] == 1 and spikes[0, 500, 0] == 1 and spikes.sum() == 8
    counts, _ = load_shd(path, dt_ms=10.0, max_time_ms=100.0)
    binary, _ = load_shd(path, dt_ms=10.0, max_time_ms=100.0, binary=True)
    assert counts[0, 0, 3] == 2 and binary[0, 0, 3] == 1 and torch.equal(binary, (counts > 0).float())
    assert load_shd(path, limit=2)[0].shape == (2, 100, 700)


def test_shd_batches_cover_the_file_in_a_seeded_order(tmp_path):
    samples = [(np.sort(np.random.default_rng(i).uniform(0, 0.2, 5)), [i] * 5, i) for i in range(7)]
    path = write_shd(tmp_path / "shd.h5", samples)
    dense, labels = load_shd(path, dt_ms=5.0, max_time_ms=200.0)
    batches = list(iter_shd_batches(path, 3, dt_ms=5.0, max_time_ms=200.0, shuffle=True, seed=4))
    assert [len(y) for _, y in batches] == [3, 3, 1]
    order = torch.cat([y for _, y in batches])  # labels are the sample indices here
    assert sorted(order.tolist()) == list(range(7)) and order.tolist() != list(range(7))
    assert torch.equal(torch.cat([x for x, _ in batches]), dense[order])
    again = torch.cat([y for _, y in iter_shd_batches(path, 3, dt_ms=5.0, max_time_ms=200.0, shuffle=True, seed=4)])
    assert torch.equal(again, order)
    assert torch.cat([y for _, y in iter_shd_batches(path, 2)]).tolist() == labels.tolist()


def test_shd_malformed_files_are_explained(tmp_path):
    with pytest.raises(DataFileNotFoundError, match="gunzip"):
        load_shd(tmp_path / "absent.h5")
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(DataError, match="not a readable HDF5 file"):
        load_shd(tmp_path / "text.h5")
    with pytest.raises(DataError, match=r"lacks the dataset\(s\) \['spikes/units'\]"):
        load_shd(write_shd(tmp_path / "a.h5", drop="spikes/units"))
    with h5py.File(write_shd(tmp_path / "b.h5"), "a") as f:
        del f["labels"]
        f.create_dataset("labels", data=np.zeros(2, dtype=np.uint16))
    with pytest.raises(DataError, match=r"\(3, 3, 2\) samples"):
        load_shd(tmp_path / "b.h5")
    with h5py.File(tmp_path / "c.h5", "w") as f:
        f.create_dataset("spikes/times", (1,), dtype=h5py.vlen_dtype(np.float32))[0] = np.array([0.1, 0.2], np.float32)
        f.create_dataset("spikes/units", (1,), dtype=h5py.vlen_dtype(np.uint16))[0] = np.array([1], np.uint16)
        f.create_dataset("labels", data=np.zeros(1, dtype=np.uint16))
    with pytest.raises(DataError, match="sample 0 has 2 spike times but 1 units"):
        read_shd_events(tmp_path / "c.h5")
    with pytest.raises(DataError, match="unit 700, outside 0..699"):
        load_shd(write_shd(tmp_path / "d.h5", [([0.1], [700], 0)]))
    with pytest.raises(DataError, match="negative or non-finite"):
        load_shd(write_shd(tmp_path / "e.h5", [([-0.1], [1], 0)]))
    with pytest.raises(DataError, match="dt_ms and max_time_ms must be positive"):
        load_shd(write_shd(tmp_path / "f.h5"), dt_ms=0.0)


# --- encodings ------------------------------------------------------------------------------------

def test_rate_code_rates_follow_intensities():
    x = torch.tensor([[0.0, 0.25, 0.5, 1.0]]).repeat(50, 1)
    steps, dt_ms, max_rate_hz = 400, 1.0, 200.0
    spikes = rate_encode(x, steps, dt_ms, max_rate_hz, seed=1)
    assert spikes.shape == (50, steps, 4) and spikes.dtype == torch.float32
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}
    trials = 50 * steps
    p = x[0].double() * max_rate_hz * dt_ms / 1000
    observed = spikes.double().sum(dim=(0, 1)) / trials
    assert observed[0] == 0
    assert torch.all((observed - p).abs() <= 4 * torch.sqrt(p * (1 - p) / trials) + 1e-12)
    counts = rate_encode(x, steps, dt_ms, max_rate_hz, seed=1, mode="poisson").double()
    assert torch.allclose(counts.mean(dim=(0, 1)), p, atol=4 * float(torch.sqrt(p.max() / trials)))
    assert torch.allclose(counts.var(dim=(0, 1)), p, atol=0.01)  # Poisson: variance = mean
    assert counts.max() > 1
    assert torch.equal(rate_encode(x, 10, seed=2), rate_encode(x, 10, seed=2))
    assert not torch.equal(rate_encode(x, 10, seed=2), rate_encode(x, 10, seed=3))
    with pytest.raises(DataError, match="lower the rate or dt_ms"):
        rate_encode(x, 10, dt_ms=10.0, max_rate_hz=200.0)


def test_latency_code_spikes_once_brighter_earlier():
    x = torch.tensor([[0.0, 0.1, 0.5, 1.0]])
    spikes = latency_encode(x, 11, threshold=0.05)
    assert spikes.sum(dim=1).tolist() == [[0.0, 1.0, 1.0, 1.0]]
    assert spikes[0, :, 1:].argmax(dim=0).tolist() == [9, 5, 0]  # round((1 - x) · 10)


def test_digit_rows_present_each_row_in_its_window(digits):
    images = digits.x_test[:30]
    dt_ms, row_ms, gap_ms, threshold = 2.0, 40.0, 10.0, 0.2
    windows = row_windows(8, dt_ms, row_ms, gap_ms)
    assert windows[1] == (25, 45) and windows[-1] == (175, 195)
    spikes = digit_rows(images, dt_ms, row_ms, gap_ms, code="latency", threshold=threshold)
    assert spikes.shape == (30, 200, 8)
    silent = torch.ones(200, dtype=torch.bool)
    for r, (start, stop) in enumerate(windows):
        silent[start:stop] = False
        pixels = images[:, 0, r]
        window = spikes[:, start:stop]
        assert torch.equal(window.sum(dim=1), (pixels > threshold).float())
        when = torch.round((1 - pixels) * (stop - start - 1))
        fired = pixels > threshold
        assert torch.equal(window.argmax(dim=1)[fired], when[fired].long())
    assert spikes[:, silent].sum() == 0
    rate = digit_rows(images, dt_ms, row_ms, gap_ms, code="rate", max_rate_hz=250.0, seed=5)
    for r, (start, stop) in enumerate(windows):
        expected = images[:, 0, r].sum(dim=0) * 0.5 * (stop - start)  # p = x · 250 Hz · 2 ms
        observed = rate[:, start:stop].sum(dim=(0, 1))
        assert torch.all((observed - expected).abs() <= 4 * torch.sqrt(expected) + 1)
    assert rate[:, silent].sum() == 0
    with pytest.raises(DataError, match="'rate' or 'latency'"):
        digit_rows(images, code="phase")


# --- temporal tasks -------------------------------------------------------------------------------

def chance_accuracy(train_features, train_labels, test_features, test_labels):
    model = LogisticRegression(C=0.1, max_iter=300).fit(train_features, train_labels)
    return model.score(test_features, test_labels)


def test_delayed_match_to_sample_needs_both_windows():
    dt_ms, sample_ms, delay_ms = 2.0, 50.0, 300.0
    kwargs = dict(dt_ms=dt_ms, channels=40, n_patterns=4, sample_ms=sample_ms, delay_ms=delay_ms, pattern_seed=9)
    train_x, train_y = delayed_match_to_sample(1200, seed=1, **kwargs)
    test_x, test_y = delayed_match_to_sample(800, seed=2, **kwargs)
    window, test_start = 25, 25 + 150
    assert train_x.shape == (1200, 25 + 150 + 25 + 25, 40) and set(train_x.unique().tolist()) == {0.0, 1.0}
    assert int(train_y.sum()) == 600 and int(test_y.sum()) == 400
    assert torch.equal(delayed_match_to_sample(50, seed=1, **kwargs)[0], delayed_match_to_sample(50, seed=1, **kwargs)[0])
    assert not torch.equal(train_x[:50], delayed_match_to_sample(50, seed=3, **kwargs)[0])

    def first(x):
        return x[:, :window].flatten(1).numpy()

    def second(x):
        return x[:, test_start:test_start + window].flatten(1).numpy()

    for part in (first, second):
        accuracy = chance_accuracy(part(train_x), train_y.numpy(), part(test_x), test_y.numpy())
        assert abs(accuracy - 0.5) < 0.06, (part.__name__, accuracy)

    def similarity(x):  # both windows together: how alike the sample and the test are
        smooth = torch.nn.functional.avg_pool1d
        a = smooth(x[:, :window].transpose(1, 2), 3, 1, 1).flatten(1)
        b = smooth(x[:, test_start:test_start + window].transpose(1, 2), 3, 1, 1).flatten(1)
        return torch.nn.functional.cosine_similarity(a, b).numpy()

    train_s, test_s = similarity(train_x), similarity(test_x)
    threshold = max(np.unique(train_s), key=lambda t: np.mean((train_s > t) == train_y.numpy()))
    assert np.mean((test_s > threshold) == test_y.numpy()) > 0.9


def test_delayed_match_to_sample_with_variable_delay():
    spikes, labels = delayed_match_to_sample(300, dt_ms=1.0, delay_ms=(200.0, 400.0), background_hz=0.0,
                                             jitter_ms=0.0, seed=4)
    assert spikes.shape == (300, 50 + 400 + 50 + 50, 40)
    # Without background every spike belongs to the sample or the test, which starts 200..400 ms later.
    after = spikes[:, 50:].sum(dim=2)
    onsets = [int(torch.nonzero(row)[0]) for row in after]
    assert min(onsets) >= 200 and max(onsets) < 450 and max(onsets) - min(onsets) > 150
    assert spikes[:, 500:].sum() == 0
    assert int(labels.sum()) == 150


def test_temporal_xor_needs_both_cues():
    dt_ms, cue_ms, jitter_ms = 2.0, 50.0, 10.0
    kwargs = dict(dt_ms=dt_ms, channels=20, cue_ms=cue_ms, delay_ms=(200.0, 300.0), jitter_ms=jitter_ms)
    train_x, train_y = temporal_xor(1000, seed=1, **kwargs)
    test_x, test_y = temporal_xor(800, seed=2, **kwargs)
    first_end = 30  # (cue_ms + jitter_ms) / dt_ms
    assert train_x.shape == (1000, 2 * 30 + 150 + 25, 20)
    assert int(train_y.sum()) == 500 and int(test_y.sum()) == 400
    assert torch.equal(temporal_xor(40, seed=1, **kwargs)[0], temporal_xor(40, seed=1, **kwargs)[0])

    def halves(x):  # spike counts of the bit-0 and bit-1 channel halves
        return torch.stack([x[..., :10].sum(dim=(1, 2)), x[..., 10:].sum(dim=(1, 2))], dim=1).numpy()

    first, second = halves(test_x[:, :first_end]), halves(test_x[:, first_end:])
    for part in (slice(None, first_end), slice(first_end, None)):
        accuracy = chance_accuracy(halves(train_x[:, part]), train_y.numpy(), halves(test_x[:, part]), test_y.numpy())
        assert abs(accuracy - 0.5) < 0.06, (part, accuracy)
    bit_a, bit_b = first[:, 1] > first[:, 0], second[:, 1] > second[:, 0]
    assert np.mean((bit_a ^ bit_b) == test_y.numpy()) > 0.95
    assert abs(np.mean(bit_a) - 0.5) < 0.05 and abs(np.mean(bit_b) - 0.5) < 0.05


def test_temporal_task_arguments_are_checked():
    with pytest.raises(DataError, match="even number"):
        temporal_xor(10, channels=5)
    with pytest.raises(DataError, match="low ≤ high"):
        temporal_xor(10, delay_ms=(300.0, 200.0))
    with pytest.raises(DataError, match="n_patterns"):
        delayed_match_to_sample(10, n_patterns=1)
    with pytest.raises(DataError, match="lower the rate or dt_ms"):
        delayed_match_to_sample(10, dt_ms=5.0, pattern_rate_hz=300.0)
