import json

import numpy as np
import pytest

from video3d.data.h36m import load_sequences
from video3d.layouts import H36M17
from video3d.lifters import load_checkpoint
from video3d.training import TrainConfig, WindowDataset, augment, drop_joint_spans, flip_numpy, train


def test_flip_swaps_sides_and_negates_x():
    x = np.random.default_rng(0).normal(size=(2, 3, 17, 2)).astype(np.float32)
    f = flip_numpy(x)
    np.testing.assert_allclose(f[..., H36M17.index("left_hip"), 0], -x[..., H36M17.index("right_hip"), 0])
    np.testing.assert_allclose(flip_numpy(f), x)


def test_dropped_spans_are_interpolated_like_the_pipeline_fills_them():
    F = 12
    t = np.arange(F, dtype=np.float32)
    x = np.tile((t**2)[None, :, None, None], (40, 1, 17, 2))  # strictly convex: interpolation changes values
    before = x.copy()
    drop_joint_spans(x, np.random.default_rng(0), p=0.3, max_len=5)
    runs = 0
    for b in range(40):
        for j in range(17):
            changed = np.nonzero(np.abs(x[b, :, j, 0] - before[b, :, j, 0]) > 1e-4)[0]
            if not len(changed):
                continue
            s, e = changed[0], changed[-1] + 1  # one span per joint and sample
            assert np.array_equal(changed, np.arange(s, e))
            if s > 0 and e < F:  # linear between the frames either side of the gap
                expected = np.interp(np.arange(s, e), [s - 1, e], [before[b, s - 1, j, 0], before[b, e, j, 0]])
            else:  # at the window's edge: the nearest seen value held
                expected = np.full(e - s, before[b, e if s == 0 else s - 1, j, 0])
            np.testing.assert_allclose(x[b, s:e, j, 0], expected, rtol=1e-5)
            runs += 1
    assert runs > 50


def test_augment_flips_input_and_target_together():
    cfg = TrainConfig(data="-", flip=True)
    x = np.random.default_rng(1).normal(size=(64, 5, 17, 2)).astype(np.float32)
    y = np.random.default_rng(2).normal(size=(64, 1, 17, 3)).astype(np.float32)
    xa, ya = augment(x.copy(), y.copy(), np.random.default_rng(3), cfg)
    flipped = ~np.isclose(xa, x).all(axis=(1, 2, 3))
    assert 10 < flipped.sum() < 54
    np.testing.assert_allclose(ya[flipped], flip_numpy(y[flipped]))
    np.testing.assert_allclose(ya[~flipped], y[~flipped])


def test_windows_repeat_edge_frames(tiny_dataset):
    seqs = load_sequences(tiny_dataset, ["S1"], cameras=["0"], actions=["Eating"])
    data = WindowDataset(seqs, np.arange(-2, 3), np.zeros(1, int))
    x, y = data.batch(np.array([0]))
    ref = seqs[0].normalized_2d()
    np.testing.assert_allclose(x[0], ref[[0, 0, 0, 1, 2]])
    np.testing.assert_allclose(y[0, 0], seqs[0].positions_3d[0])


def test_test_subjects_are_never_trained_on(tiny_dataset, tmp_path):
    with pytest.raises(ValueError, match="never trained on"):
        train(TrainConfig(data=str(tiny_dataset), out=str(tmp_path), train_subjects=("S1", "S9")), log=lambda m: None)


def test_tiny_run_learns_saves_and_resumes(tiny_dataset, tmp_path):
    cfg = TrainConfig(data=str(tiny_dataset), out=str(tmp_path / "run"), train_subjects=("S1", "S5"),
                      val_subjects=("S9",), epochs=2, batch_size=32, samples_per_epoch=96, subsample=2,
                      val_subsample=10, device="cpu", noise=0.005, joint_dropout=0.05, coco_synthesis=0.5,
                      model_overrides={"channels": 16})
    first = train(TrainConfig(**{**cfg.__dict__, "epochs": 1}), log=lambda m: None)
    assert first["epochs_completed"] == 1
    resumed = train(cfg, log=lambda m: None)
    assert resumed["epochs_completed"] == 2 and len(resumed["history"]) == 2
    lifter = load_checkpoint(tmp_path / "run" / "final.pt")
    assert lifter.config.channels == 16  # the checkpoint rebuilds the model it was trained as
    meta = lifter.meta["training"]
    assert meta["train_subjects"] == ["S1", "S5"] and meta["epochs_completed"] == 2
    assert 0 < meta["input_spread"] < 1 and lifter.input_spread == meta["input_spread"]  # what lift scales to
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2] and all(np.isfinite(r["val_mpjpe_mm"]) for r in log)


def test_same_seed_same_batches(tiny_dataset, tmp_path):
    outs = []
    for k in range(2):
        cfg = TrainConfig(data=str(tiny_dataset), out=str(tmp_path / f"r{k}"), train_subjects=("S1",),
                          val_subjects=("S9",), epochs=1, batch_size=16, samples_per_epoch=32, device="cpu",
                          val_subsample=20, model_overrides={"channels": 16})
        outs.append(train(cfg, log=lambda m: None)["history"][0]["train_mpjpe_mm"])
    assert outs[0] == pytest.approx(outs[1], rel=1e-5)


@pytest.mark.slow
def test_two_processes_with_torchrun(tiny_dataset, tmp_path):
    """The DistributedDataParallel path, on CPU (gloo): what a several-GPU run uses."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "video3d.cli", "train",
           "--data", str(tiny_dataset), "--out", str(tmp_path / "ddp"), "--epochs", "1", "--samples-per-epoch", "64",
           "--batch-size", "32", "--device", "cpu"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "world size 2" in proc.stderr
    assert proc.stdout.count("final.pt") == 1  # one process reports
    log = [json.loads(line) for line in (tmp_path / "ddp" / "log.jsonl").read_text().splitlines()]
    assert len(log) == 1 and log[0]["samples"] == 64


def test_fine_tuning_starts_from_given_weights(tiny_dataset, tmp_path, random_checkpoint):
    from video3d.lifters import load_checkpoint

    cfg = TrainConfig(data=str(tiny_dataset), out=str(tmp_path / "ft"), epochs=1, batch_size=16, samples_per_epoch=16,
                      device="cpu", val_subsample=50, lr=0.0, init_from=str(random_checkpoint))
    train(cfg, log=lambda m: None)
    before, after = load_checkpoint(random_checkpoint), load_checkpoint(tmp_path / "ft" / "final.pt")
    w0 = before.model.state_dict()["shrink.weight"]
    assert np.allclose(after.model.state_dict()["shrink.weight"].numpy(), w0.numpy())  # lr 0: unchanged


def test_human36m_input_sizes_are_the_default_range(h36m_path):
    """Checkpoints without their own size use H36M_INPUT_SPREAD: it must be what training on H36M measures."""
    from video3d.data.h36m import TRAIN_SUBJECTS
    from video3d.lifters.base import H36M_INPUT_SPREAD
    from video3d.training import input_spread

    assert input_spread(load_sequences(h36m_path, TRAIN_SUBJECTS)) == H36M_INPUT_SPREAD
