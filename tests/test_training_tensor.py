"""The training data loop: windows and augmentation as tensor ops on the training device."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from video3d.data.h36m import load_sequences
from video3d.layouts import synthesize_coco_like_h36m
from video3d.lifters import load_checkpoint
from video3d.missing import drop_joint_spans
from video3d.training import TrainConfig, augment_tensor, fill_spans, step_generator, train
from video3d.windowing import TrainingWindows, WindowOffsets, flip


def _poses(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


@pytest.mark.parametrize("shape", [(4, 5, 17, 2), (3, 1, 17, 3), (2, 17, 2)])
def test_flip_of_a_tensor_is_the_flip_of_the_array(shape):
    x = _poses(shape)
    np.testing.assert_array_equal(flip(torch.from_numpy(x)).numpy(), flip(x))
    assert not np.array_equal(flip(x), x)


def test_coco_synthesis_tensor_is_the_layout_rule():
    x = _poses((6, 9, 17, 2))
    np.testing.assert_allclose(synthesize_coco_like_h36m(torch.from_numpy(x)).numpy(), synthesize_coco_like_h36m(x),
                               rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("F, p, max_len", [(12, 0.3, 5), (27, 0.2, None), (3, 0.5, None), (1, 0.5, None)])
def test_span_fill_tensor_equals_numpy_for_the_same_spans(F, p, max_len):
    """The same spans (numpy's draws replayed) give the same frames: interpolation inside, held at the edges."""
    B, J = 40, 17
    x = _poses((B, F, J, 2), seed=F)
    expected = x.copy()
    drop_joint_spans(expected, np.random.default_rng(5), p, max_len)
    rng = np.random.default_rng(5)  # replay drop_joint_spans' draws
    b, j = np.nonzero(rng.random((B, J)) < p)
    length = rng.integers(1, (max_len or F) + 1, size=len(b))
    s = rng.integers(0, F, size=len(b))
    start, end, active = np.zeros((B, J), int), np.zeros((B, J), int), np.zeros((B, J), bool)
    start[b, j], end[b, j], active[b, j] = s, np.minimum(s + length, F), True
    got = fill_spans(torch.from_numpy(x), torch.from_numpy(start), torch.from_numpy(end), torch.from_numpy(active))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-6)
    if F > 1:
        assert not np.allclose(expected, x)  # spans were dropped: the comparison means something


def test_training_windows_stay_inside_their_take(tiny_dataset):
    """A window near a take's end repeats that take's edge frame, never a frame of the next take."""
    seqs = load_sequences(tiny_dataset, ["S1", "S5"])
    offsets = np.arange(-4, 5) * 3
    data = TrainingWindows(seqs, WindowOffsets(offsets, offsets, 4), subsample=1)
    x2d = np.concatenate([s.normalized_2d() for s in seqs])
    y3d = np.concatenate([s.positions_3d for s in seqs])
    lengths = np.array([len(s.positions_3d) for s in seqs])
    ends = np.cumsum(lengths)
    centres = np.concatenate([[0, 1, ends[0] - 1, ends[0], ends[-1] - 1],  # first and last frames of takes
                              np.random.default_rng(0).integers(0, ends[-1], 50)])
    x, y = data.batch(torch.from_numpy(centres))
    for row, c in enumerate(centres):
        take = int(np.searchsorted(ends, c, side="right"))
        lo, hi = ends[take] - lengths[take], ends[take] - 1
        frames = np.clip(c + offsets, lo, hi)
        np.testing.assert_array_equal(x[row].numpy(), x2d[frames])
        np.testing.assert_array_equal(y[row].numpy(), y3d[frames])


def test_tensor_augmentation_draws_repeat_per_step_and_flip_input_and_target_together():
    cfg = TrainConfig(data="-", flip=True, noise=0.0, joint_dropout=0.0, coco_synthesis=0.0)
    x, y = torch.from_numpy(_poses((256, 5, 17, 2), 1)), torch.from_numpy(_poses((256, 1, 17, 3), 2))
    dev = torch.device("cpu")
    xa, ya = augment_tensor(x, y, step_generator(0, 1, 2, dev), cfg)
    flipped = ~torch.isclose(xa, x).all(dim=(1, 2, 3))
    assert 0.35 < flipped.float().mean() < 0.65
    torch.testing.assert_close(ya[flipped], flip(y[flipped]))
    torch.testing.assert_close(ya[~flipped], y[~flipped])
    again = augment_tensor(x, y, step_generator(0, 1, 2, dev), cfg)[0]
    other = augment_tensor(x, y, step_generator(0, 1, 3, dev), cfg)[0]
    assert torch.equal(again, xa) and not torch.equal(other, xa)


def test_tensor_augmentation_rates_match_the_settings():
    dev = torch.device("cpu")
    x = torch.from_numpy(_poses((4000, 27, 17, 2), 4))
    only = dict(data="-", flip=False)
    xa, _ = augment_tensor(x, x[:, :1], step_generator(3, 0, 0, dev), TrainConfig(**only, coco_synthesis=0.5))
    coco = ~torch.isclose(xa[:, :, 0], x[:, :, 0]).all(dim=(1, 2))  # the pelvis made from the hips
    assert 0.46 < coco.float().mean() < 0.54
    torch.testing.assert_close(xa[coco], synthesize_coco_like_h36m(x[coco]))
    xa, _ = augment_tensor(x, x[:, :1], step_generator(3, 0, 1, dev), TrainConfig(**only, joint_dropout=0.1))
    changed = ~torch.isclose(xa, x).all(dim=(1, 3))  # (B, J): a span of this joint filled
    assert 0.09 < changed.float().mean() < 0.11
    xn, _ = augment_tensor(torch.zeros(4000, 27, 17, 2), torch.zeros(4000, 1, 17, 3),
                           step_generator(3, 0, 2, dev), TrainConfig(**only, noise=0.01))
    std = xn.std(dim=(1, 2, 3))  # per sample: a std drawn from uniform(0, noise)
    assert 0.0 < std.min() < 0.0005 and 0.0095 < std.max() < 0.0112 and abs(std.mean() - 0.005) < 0.0003


def _config(tiny_dataset, out, **kw):
    base = dict(data=str(tiny_dataset), out=str(out), train_subjects=("S1", "S5"), val_subjects=("S9",), epochs=2,
                batch_size=16, samples_per_epoch=64, device="cpu", val_subsample=20, probe_windows=0,
                model_overrides={"channels": 16})
    return TrainConfig(**{**base, **kw})


def test_tensor_loop_with_augmentation_resumes_to_the_same_model(tiny_dataset, tmp_path):
    aug = dict(noise=0.005, joint_dropout=0.05, coco_synthesis=0.5)
    whole = train(_config(tiny_dataset, tmp_path / "whole", **aug), log=lambda m: None)["history"]
    train(_config(tiny_dataset, tmp_path / "split", epochs=1, **aug), log=lambda m: None)
    split = train(_config(tiny_dataset, tmp_path / "split", **aug), log=lambda m: None)["history"]
    assert [r["train_mpjpe_mm"] for r in split] == pytest.approx([r["train_mpjpe_mm"] for r in whole], rel=1e-5)


@pytest.mark.slow
def test_two_processes_train_what_one_process_trains(tiny_dataset, tmp_path):
    """torchrun with 2 processes (CPU, gloo) and the same global batch gives the one-process model: every
    augmentation draw is made for the global batch and each process keeps its rows; DDP averages the two halves'
    gradients. PoseFormer without stochastic layers (GAST-Net's BatchNorm would see half batches)."""
    args = ["--data", str(tiny_dataset), "--lifter", "poseformer", "--frames", "9", "--epochs", "2",
            "--samples-per-epoch", "64", "--batch-size", "32", "--device", "cpu", "--probe-windows", "0",
            "--noise", "0.005", "--joint-dropout", "0.05", "--coco-synthesis", "0.5",
            "--model-option", "drop_path=0", "--model-option", "spatial_drop_path=0"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "video3d.cli",
                          "train", "--out", str(tmp_path / "two"), *args], capture_output=True, text=True, env=env,
                         timeout=600)
    assert two.returncode == 0, two.stderr[-2000:]
    assert "world size 2" in two.stderr and two.stdout.count("final.pt") == 1  # one process reports
    one = subprocess.run([sys.executable, "-m", "video3d.cli", "train", "--out", str(tmp_path / "one"), *args],
                         capture_output=True, text=True, env=env, timeout=600)
    assert one.returncode == 0, one.stderr[-2000:]
    logs = {k: [json.loads(line) for line in (tmp_path / k / "log.jsonl").read_text().splitlines()]
            for k in ("one", "two")}
    assert [r["samples"] for r in logs["two"]] == [r["samples"] for r in logs["one"]] == [64, 64]
    assert logs["two"][-1]["val_mpjpe_mm"] == pytest.approx(logs["one"][-1]["val_mpjpe_mm"], rel=1e-4)
    w = [load_checkpoint(tmp_path / k / "final.pt").model.state_dict() for k in ("one", "two")]
    # Adam moves each weight by about lr (4e-4) a step whatever its gradient's size, so summing the halves'
    # gradients in another order leaves ~1e-5 differences (1.4e-4 on one bias whose gradient is near 0); other
    # batches or draws move weights by up to lr x steps, 3e-3
    for k in w[0]:
        torch.testing.assert_close(w[1][k], w[0][k], rtol=0, atol=5e-4)
    diff = torch.cat([(w[1][k] - w[0][k]).abs().flatten() for k in w[0]])
    assert float(diff.mean()) < 2e-6  # over all weights
