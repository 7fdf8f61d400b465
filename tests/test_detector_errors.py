"""The detector-error bank: views, mirror images, safe loading, replay on training windows, the trainer option."""

import math

import numpy as np
import pytest
import torch

from video3d.detector_errors import (ARMS, LEGS, VIEW_BINS, BankError, DetectorErrors, ErrorBank, load_bank,
                                     mirrored, view_azimuth, view_bin)
from video3d.training import TrainConfig, TrainConfigError, augment_tensor, train


def standing(facing_deg: float) -> torch.Tensor:
    """A T-ish pose (root-relative, camera axes) of a person turned by facing_deg about the vertical: 0 faces
    the camera, 90 faces the right of the image."""
    p = torch.zeros(17, 3)
    p[4], p[1] = torch.tensor([0.12, 0.0, 0.0]), torch.tensor([-0.12, 0.0, 0.0])  # left hip at the image's right
    p[11], p[14] = torch.tensor([0.2, -0.5, 0.0]), torch.tensor([-0.2, -0.5, 0.0])
    p[8] = torch.tensor([0.0, -0.5, 0.0])
    p[9] = torch.tensor([0.0, -0.6, -0.1])  # the nose, towards the camera
    a = math.radians(facing_deg)
    # turning the person to face the image's right: their forward (-z) goes to +x
    rot = torch.tensor([[math.cos(a), 0.0, -math.sin(a)], [0.0, 1.0, 0.0], [math.sin(a), 0.0, math.cos(a)]])
    return p @ rot.T


@pytest.mark.parametrize("facing, expected_bin", [(0, 0), (44, 1), (46, 1), (90, 2), (180, 4), (-180, 4), (-90, 6),
                                                  (-30, 7), (-20, 0)])
def test_view_azimuth_and_bins(facing, expected_bin):
    az = math.degrees(float(view_azimuth(standing(facing))))
    if abs(facing) == 180:
        assert abs(az) == pytest.approx(180, abs=1e-3)
    else:
        assert az == pytest.approx(facing, abs=1e-3)
    assert int(view_bin(torch.tensor(math.radians(az)))) == expected_bin


def random_bank(n=12, window=81, seed=0) -> ErrorBank:
    rng = np.random.default_rng(seed)
    return ErrorBank(rng.normal(0, 0.1, (n, window, 17, 2)).astype(np.float32), rng.random((n, window, 2)) < 0.2,
                     rng.integers(0, VIEW_BINS, n), {"detector": "test"})


def test_a_bank_saves_and_loads_and_its_mirror_is_the_flip(tmp_path):
    bank = random_bank()
    loaded = load_bank(bank.save(tmp_path / "bank.npz"))
    np.testing.assert_array_equal(loaded.residual, bank.residual)
    np.testing.assert_array_equal(loaded.swapped, bank.swapped)
    assert loaded.meta == {"detector": "test"}
    both = mirrored(loaded)
    assert len(both.residual) == 2 * len(bank.residual)
    from video3d.layouts import H36M17

    mirror = both.residual[len(bank.residual):]
    np.testing.assert_allclose(mirror[:, :, H36M17.flip_index, 0], -bank.residual[..., 0])  # x negated, sides swapped
    np.testing.assert_allclose(mirror[:, :, H36M17.flip_index, 1], bank.residual[..., 1])
    expected = {0: 0, 1: 7, 2: 6, 3: 5, 4: 4, 5: 3, 6: 2, 7: 1}
    assert [expected[int(v)] for v in bank.view] == both.view[len(bank.view):].tolist()


def test_a_bank_file_is_read_without_pickles(tmp_path):
    np.savez(tmp_path / "evil.npz", format=np.array([{"a": 1}], dtype=object), residual=np.zeros((1, 3, 17, 2)))
    with pytest.raises(BankError, match="cannot read"):
        load_bank(tmp_path / "evil.npz")
    np.savez(tmp_path / "other.npz", residual=np.zeros((1, 3, 17, 2)))
    with pytest.raises(BankError, match="not a detector error bank"):
        load_bank(tmp_path / "other.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(BankError):
        load_bank(tmp_path / "text.npz")


def test_a_bank_with_nan_or_wrong_shapes_is_refused():
    with pytest.raises(BankError, match="non-finite"):
        ErrorBank(np.full((1, 5, 17, 2), np.nan, np.float32), np.zeros((1, 5, 2), bool), np.zeros(1, np.int64))
    with pytest.raises(BankError, match="17, 2"):
        ErrorBank(np.zeros((1, 5, 16, 2), np.float32), np.zeros((1, 5, 2), bool), np.zeros(1, np.int64))
    with pytest.raises(BankError, match="view bins"):
        ErrorBank(np.zeros((1, 5, 17, 2), np.float32), np.zeros((1, 5, 2), bool), np.array([VIEW_BINS]))


def windows(batch=32, frames=27, facing=0.0):
    pose3d = standing(facing)
    y = pose3d.expand(batch, 1, 17, 3).clone()
    x = (pose3d[:, :2] / 5.0).expand(batch, frames, 17, 2).clone()  # a small 2D pose
    return x, y


def test_p_zero_changes_nothing_and_p_one_changes_every_window():
    errors = DetectorErrors(random_bank())
    x, y = windows()
    out, used = errors.apply(x, y, 0.0, torch.Generator().manual_seed(0))
    assert not used.any() and torch.equal(out, x)
    out, used = errors.apply(x, y, 1.0, torch.Generator().manual_seed(0))
    assert used.all() and (out - x).abs().amax((1, 2, 3)).min() > 0


def test_residuals_are_scaled_by_the_pose_size_and_swaps_exchange_the_group():
    window, residual = 40, np.zeros((1, 40, 17, 2), np.float32)
    residual[..., 3, 1] = 0.5  # the right ankle half a pose size down
    swapped = np.zeros((1, window, 2), bool)
    swapped[:, :, 1] = True  # the arms exchanged in every frame
    errors = DetectorErrors(ErrorBank(residual, swapped, np.zeros(1, np.int64)))
    x, y = windows(batch=4)
    out, _ = errors.apply(x, y, 1.0, torch.Generator().manual_seed(1))
    size = float(((x[0, 0] - x[0, 0, :1]) ** 2).sum(-1).mean().sqrt())
    moved = x.clone()
    moved[..., 3, 1] += 0.5 * size
    for left, right in ARMS:
        moved[..., [left, right], :] = moved[..., [right, left], :]
    torch.testing.assert_close(out, moved)
    for left, right in LEGS:  # the legs were not marked: not exchanged
        torch.testing.assert_close(out[..., left, :], x[..., left, :])


def test_windows_get_errors_recorded_from_their_own_view():
    residual = np.zeros((2, 30, 17, 2), np.float32)
    residual[0] += 0.01  # bin 0: facing the camera
    residual[1] += 0.02  # bin 4: from behind
    errors = DetectorErrors(ErrorBank(residual, np.zeros((2, 30, 2), bool), np.array([0, 4])))
    for facing, expected in ((0.0, 0.01), (175.0, 0.02)):
        x, y = windows(batch=16, facing=facing)
        out, _ = errors.apply(x, y, 1.0, torch.Generator().manual_seed(2))
        size = ((x - x[..., :1, :]) ** 2).sum(-1).mean(-1).sqrt().mean(1)[:, None, None, None]
        torch.testing.assert_close(out - x, torch.full_like(x, expected) * size)
    # a view the bank never saw draws from the whole bank
    x, y = windows(batch=64, facing=90.0)
    out, _ = errors.apply(x, y, 1.0, torch.Generator().manual_seed(3))
    shift = (out - x)[:, 0, 0, 0] / ((x - x[..., :1, :]) ** 2).sum(-1).mean(-1).sqrt().mean(1)
    assert {round(float(v), 4) for v in shift} == {0.01, 0.02}


def test_a_window_longer_than_the_bank_is_refused():
    errors = DetectorErrors(random_bank(window=20))
    x, y = windows(frames=27)
    with pytest.raises(BankError, match="20 frames"):
        errors.apply(x, y, 1.0, torch.Generator())


def test_recorded_windows_get_no_synthetic_noise_or_coco_synthesis():
    errors = DetectorErrors(ErrorBank(np.zeros((1, 30, 17, 2), np.float32), np.zeros((1, 30, 2), bool),
                                      np.zeros(1, np.int64)))
    x, y = windows(batch=8)
    cfg = TrainConfig(data="unused", flip=False, noise=0.05, coco_synthesis=1.0, detector_errors_p=1.0)
    out, _ = augment_tensor(x, y, torch.Generator().manual_seed(0), cfg, errors)
    torch.testing.assert_close(out, x)  # zero residuals, and neither noise nor the COCO torso on top
    out, _ = augment_tensor(x, y, torch.Generator().manual_seed(0), cfg, None)
    assert not torch.allclose(out, x)


@pytest.mark.parametrize("settings, message", [
    ({"detector_errors": "missing.npz"}, "no such file"),
    ({"detector_errors_p": 1.5}, r"\[0, 1\]"),
])
def test_bad_detector_error_settings(settings, message, tiny_dataset, tmp_path):
    cfg = TrainConfig(data=str(tiny_dataset), out=str(tmp_path / "r"), device="cpu", **settings)
    with pytest.raises(TrainConfigError, match=message):
        cfg.validate()


def test_a_tiny_run_trains_with_a_bank_and_records_it(tiny_dataset, tmp_path):
    from video3d.lifters import load_checkpoint

    path = random_bank(n=6, window=27).save(tmp_path / "bank.npz")
    cfg = TrainConfig(data=str(tiny_dataset), out=str(tmp_path / "run"), train_subjects=("S1",), val_subjects=("S9",),
                      epochs=1, batch_size=16, samples_per_epoch=32, device="cpu", val_subsample=20,
                      detector_errors=str(path), detector_errors_p=0.5, model_overrides={"channels": 16})
    lines = []
    summary = train(cfg, log=lines.append)
    assert summary["epochs_completed"] == 1
    assert any("detector errors: 6 recorded windows of 27 frames" in line for line in lines)
    meta = load_checkpoint(tmp_path / "run" / "final.pt").meta["training"]
    assert meta["detector_errors"]["detector"] == "test" and meta["recipe"]["detector_errors_p"] == 0.5
