import json
from pathlib import Path

import numpy as np
import pytest
import torch

from video3d.data.h36m import load_sequences
from video3d.layouts import H36M17
from video3d.lifters import load_checkpoint
from video3d.missing import drop_joint_spans
from video3d.training import TrainConfig, learning_rate, train
from video3d.windowing import TrainingWindows, WindowOffsets, flip


def test_flip_swaps_sides_and_negates_x():
    x = np.random.default_rng(0).normal(size=(2, 3, 17, 2)).astype(np.float32)
    f = flip(x)
    np.testing.assert_allclose(f[..., H36M17.index("left_hip"), 0], -x[..., H36M17.index("right_hip"), 0])
    np.testing.assert_allclose(f[..., H36M17.index("left_hip"), 1], x[..., H36M17.index("right_hip"), 1])
    np.testing.assert_allclose(flip(f), x)


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


def test_windows_repeat_edge_frames(tiny_dataset):
    seqs = load_sequences(tiny_dataset, ["S1"], cameras=["0"], actions=["Eating"])
    data = TrainingWindows(seqs, WindowOffsets(np.arange(-2, 3), np.zeros(1, int), 0))
    T = len(seqs[0].positions_3d)
    x, y = data.batch(torch.tensor([0, T - 1]))
    ref = seqs[0].normalized_2d()
    np.testing.assert_allclose(x[0].numpy(), ref[[0, 0, 0, 1, 2]])
    np.testing.assert_allclose(x[1].numpy(), ref[[T - 3, T - 2, T - 1, T - 1, T - 1]])
    np.testing.assert_allclose(y[0, 0].numpy(), seqs[0].positions_3d[0])


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


def test_every_epoch_logs_fixed_training_windows_in_eval_and_train_mode(tiny_dataset, tmp_path):
    """The probe that would have shown PoseFormer-81's dependence on its training noise (issue 17)."""
    cfg = TrainConfig(data=str(tiny_dataset), out=str(tmp_path / "run"), lifter="poseformer", frames=9,
                      train_subjects=("S1",), val_subjects=("S9",), epochs=2, batch_size=16, samples_per_epoch=32,
                      device="cpu", val_subsample=20, probe_windows=64,
                      model_overrides={"drop_path": 0.5, "spatial_drop_path": 0.5, "spatial_drop_path_per": "frame"})
    history = train(cfg, log=lambda m: None)["history"]
    for record in history:
        assert np.isfinite(record["probe_eval_mode_mm"]) and np.isfinite(record["probe_train_mode_mm"])
        # heavy stochastic depth: the noisy figure differs from the eval-mode one
        assert record["probe_train_mode_mm"] != pytest.approx(record["probe_eval_mode_mm"], abs=1e-3)
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert log[0]["probe_eval_mode_mm"] == pytest.approx(history[0]["probe_eval_mode_mm"])


def test_probe_windows_are_the_same_every_epoch(tiny_dataset):
    seqs = load_sequences(tiny_dataset, ["S1"])
    data = TrainingWindows(seqs, WindowOffsets(np.arange(-2, 3), np.zeros(1, int), 0), subsample=5)
    probe = data.fixed_sample(50, seed=0)
    first = probe.batch(probe.centres(np.arange(len(probe))))[0]
    data.phase(3)
    probe.phase(3)
    assert not np.array_equal(data.active[:50], probe.active)
    np.testing.assert_array_equal(probe.batch(probe.centres(np.arange(len(probe))))[0].numpy(), first.numpy())
    assert len(probe) == 50 and len(np.unique(probe.active)) == 50


def test_fine_tuning_may_change_stochastic_depth_but_not_the_model(tiny_dataset, tmp_path):
    import torch

    from video3d.lifters import create_lifter
    from video3d.training import TrainConfigError

    torch.manual_seed(0)
    start = create_lifter("poseformer", frames=9, pretrained=False, device="cpu")
    start.config.spatial_drop_path, start.config.spatial_drop_path_per = 0.1, "frame"  # as the shipped 9f
    path = start.save(tmp_path / "pf9.pt")
    base = dict(data=str(tiny_dataset), lifter="poseformer", frames=9, train_subjects=("S1",), val_subjects=("S9",),
                epochs=1, batch_size=8, samples_per_epoch=8, device="cpu", val_subsample=50, probe_windows=8,
                lr=0.0, init_from=str(path))
    messages = []
    train(TrainConfig(out=str(tmp_path / "ft"), **base), log=messages.append)
    assert any("spatial_drop_path 0.1 -> 0.0" in m and "spatial_drop_path_per frame -> window" in m for m in messages)
    tuned = load_checkpoint(tmp_path / "ft" / "final.pt")
    assert tuned.config.spatial_drop_path == 0.0  # trained (and saved) with today's setting
    assert torch.equal(tuned.model.state_dict()["frame_pos"], start.model.state_dict()["frame_pos"])  # lr 0
    with pytest.raises(TrainConfigError, match="spatial_dim: 32 there, 16 here"):
        train(TrainConfig(out=str(tmp_path / "bad"), model_overrides={"spatial_dim": 16}, **base), log=lambda m: None)


def test_unknown_model_option_names_the_valid_ones(tiny_dataset, tmp_path):
    from video3d.training import TrainConfigError

    with pytest.raises(TrainConfigError, match="no config field drop_pth; its fields: .*drop_path"):
        train(TrainConfig(data=str(tiny_dataset), out=str(tmp_path), lifter="poseformer", frames=9,
                          model_overrides={"drop_pth": 0.1}), log=lambda m: None)


@pytest.mark.parametrize("recipe, lr, batch, decay", [
    (None, 4e-4, 512, 0.99),  # PoseFormer's default: the authors' code as run for their GT-2D figure
    ("authors-code", 4e-4, 512, 0.99),
    ("paper", 2e-4, 1024, 0.98),
])
def test_poseformer_recipes(recipe, lr, batch, decay):
    cfg = TrainConfig.for_lifter("-", "poseformer", recipe=recipe)
    assert (cfg.lr, cfg.batch_size, cfg.lr_decay, cfg.optimizer, cfg.weight_decay) == (lr, batch, decay, "adamw", 0.1)
    assert TrainConfig.for_lifter("-", "poseformer", recipe=recipe, lr=1e-5).lr == 1e-5  # options win


def test_unknown_recipe_lists_the_lifters_recipes():
    from video3d.lifters.registry import UnknownRecipeError

    with pytest.raises(UnknownRecipeError, match="gastnet has no recipe 'authors-code'; its recipes: paper"):
        TrainConfig.for_lifter("-", "gastnet", recipe="authors-code")


def test_a_held_out_training_subject_validates_and_is_not_trained_on(tiny_dataset, tmp_path):
    from video3d.training import TrainConfigError

    cfg = TrainConfig.for_lifter(str(tiny_dataset), "gastnet", val_subjects=("S8",), out=str(tmp_path / "r"),
                                 epochs=1, batch_size=16, samples_per_epoch=16, device="cpu", val_subsample=10,
                                 probe_windows=0, model_overrides={"channels": 16})
    assert cfg.train_subjects == ("S1", "S5", "S6", "S7") and cfg.val_subjects == ("S8",)
    train(cfg, log=lambda m: None)
    meta = load_checkpoint(tmp_path / "r" / "best.pt").meta["training"]
    assert meta["validation_subjects"] == ["S8"] and "S8" not in meta["train_subjects"]
    with pytest.raises(TrainConfigError, match=r"\['S8'\] are also training subjects"):
        train(TrainConfig(data=str(tiny_dataset), out=str(tmp_path / "x"), val_subjects=("S8",)), log=lambda m: None)


@pytest.mark.parametrize("seconds, rate, overhead, done, available, max_epochs, expected_epochs", [
    (1000, 100, 1, 0, 10**6, 60, 20),  # plenty of time: 20 epochs
    (1000, 100, 20, 0, 10**6, 60, 12),  # costly validation: its share kept under a quarter
    (1000, 100, 1, 0, 10**6, 5, 5),  # the recipe's epochs are the most
    (1000, 10000, 1, 0, 100_000, 200, 98),  # more time than 20 epochs of distinct windows: more epochs
    (10, 100, 50, 0, 10**6, 60, 1),  # no time for validation at all: one epoch
])
def test_budget_plans(seconds, rate, overhead, done, available, max_epochs, expected_epochs):
    from video3d.training import plan_schedule

    plan = plan_schedule(seconds, rate, overhead, done, 32, available, max_epochs)
    E, S = plan["epochs"], plan["samples_per_epoch"]
    assert E == expected_epochs and S % 32 == 0 and 32 <= S <= available
    if S > 32:  # the training fits: samples / rate + overheads <= the time left
        assert E * S / rate + E * overhead <= seconds + 1e-6
        assert E * S / rate + E * overhead > 0.9 * seconds or S == available // 32 * 32  # and uses it
    assert plan["lr_decay"] ** (E - 1) == pytest.approx(0.1 if E > 1 else 1.0, rel=1e-4)


def test_a_budget_run_ends_in_time_with_its_schedule_complete(tiny_dataset, tmp_path):
    import time

    import torch

    messages = []
    cfg = TrainConfig(data=str(tiny_dataset), out=str(tmp_path / "b"), train_subjects=("S1", "S5"),
                      val_subjects=("S9",), epochs=60, batch_size=8, device="cpu", val_subsample=10,
                      probe_windows=32, budget_minutes=0.5, model_overrides={"channels": 16})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # steady step times even beside other work (2 threads on a busy core stall)
    try:
        start = time.time()
        summary = train(cfg, log=messages.append)
        wall = time.time() - start
    finally:
        torch.set_num_threads(threads)
    assert wall <= 30.0 + 1.5, wall  # the plan's margin; the hard stop at the budget is the backstop
    assert summary["finished"], messages  # every planned epoch ran: the schedule is complete
    plan = load_checkpoint(tmp_path / "b" / "final.pt").meta["training"]["recipe"]["planned"]
    assert summary["epochs_completed"] == plan["epochs"] >= 2
    assert any(m.startswith("budget 0.5 min:") for m in messages)
    lrs = [r["lr"] for r in summary["history"]]
    assert lrs[-1] == pytest.approx(0.1 * lrs[0], rel=1e-3)  # decayed to a tenth by the last epoch
    assert wall > 0.6 * 30.0, wall  # and the budget was used, not wasted


@pytest.mark.parametrize("text, minutes", [("20m", 20), ("1.5h", 90), ("90s", 1.5), ("45", 45), (" 2H ", 120)])
def test_durations(text, minutes):
    from video3d.training import parse_duration

    assert parse_duration(text) == pytest.approx(minutes)


@pytest.mark.parametrize("text", ["", "m", "ten minutes", "-5m", "0s", "5d"])
def test_bad_durations(text):
    from video3d.training import TrainConfigError, parse_duration

    with pytest.raises(TrainConfigError, match="duration"):
        parse_duration(text)


def test_the_gpu_script_runs_end_to_end_with_tiny_settings(tiny_dataset, tmp_path):
    """scripts/train_all_gpu.sh on the CPU: three lifters side by side within one budget, then shipped (float16)
    and evaluated with the full protocol, from the packed data a GPU machine would get; FINETUNE=1 starts PoseFormer
    and STCFormer from their shipped weights (PoseFormer 9f is shipped, 27f is not: it starts from random)."""
    import os
    import subprocess
    import sys

    import torch

    from video3d.data.pack import pack

    pack(tiny_dataset, tmp_path / "h36m.xz")
    script = Path(__file__).resolve().parent.parent / "scripts" / "train_all_gpu.sh"
    env = {**os.environ, "LIFTERS": "gastnet:27 poseformer:27 stcformer:27", "DEVICE": "cpu",
           "PYTHON": sys.executable, "OMP_NUM_THREADS": "1", "FINETUNE": "1",
           "EXTRA": "--batch-size 8 --probe-windows 64"}
    proc = subprocess.run(["bash", str(script), str(tmp_path / "h36m.xz"), str(tmp_path / "out"), "1"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr + "".join(p.read_text()[-1500:] for p in (tmp_path / "out").glob("*.log"))
    weights = Path(__file__).resolve().parent.parent / "weights"
    for name in ("gastnet_27f", "poseformer_27f", "stcformer_27f"):
        lifter = load_checkpoint(tmp_path / "out" / f"{name}.pt")
        ckpt = torch.load(tmp_path / "out" / f"{name}.pt", weights_only=True)
        assert all(v.dtype == torch.float16 for v in ckpt["state_dict"].values() if v.is_floating_point())
        result = json.loads((tmp_path / "out" / f"{name}.eval.json").read_text())
        assert result["average"]["mpjpe"] > 0 and lifter.meta["training"]["evaluation"]["average"] == result["average"]
        assert lifter.meta["training"]["recipe"]["planned"]["epochs"] >= 1  # the budget planned the schedule
        assert f"{name}.eval.json: MPJPE" in proc.stdout and "detector-like check MPJPE" in proc.stdout
        assert result["detector_like_check"]["average"]["mpjpe"] > 0  # the figure that GT 2D alone can hide
        recipe = lifter.meta["training"]["recipe"]
        if (weights / f"{name}.pt").is_file():  # fine-tuned from what is shipped: EXTRA's batch size wins
            assert Path(recipe["init_from"]).resolve() == (weights / f"{name}.pt").resolve()
            assert recipe["warmup_steps"] == 300 and recipe["lr"] == 4e-4 and recipe["batch_size"] == 8
        else:
            assert recipe["init_from"] is None and recipe["warmup_steps"] == 0


@pytest.mark.parametrize("lifter, frames", [("gastnet", 27), ("poseformer", 9), ("stcformer", 27)])
def test_bf16_autocast_keeps_the_output_head_in_float32(lifter, frames):
    import torch

    from video3d.lifters import get_spec, new_model
    from video3d.training import autocast_for

    spec, _, model = new_model(lifter, frames)
    context = autocast_for(model, spec.output_head, "bf16", torch.device("cpu"))
    seen = {}
    model.get_submodule(spec.output_head).register_forward_hook(lambda m, a, out: seen.update(out=out.dtype))
    inner = next(m for m in model.modules() if isinstance(m, torch.nn.Linear) and m is not
                 model.get_submodule(spec.output_head))
    inner.register_forward_hook(lambda m, a, out: seen.update(inner=out.dtype))
    with context():
        y = model.train()(torch.randn(2, model.receptive_field if lifter != "stcformer" else frames, 17, 2))
    assert seen == {"out": torch.float32, "inner": torch.bfloat16} and y.dtype == torch.float32
    assert get_spec(lifter).output_head  # every lifter names its head


def test_bf16_training_runs_and_saves_float32_weights(tiny_dataset, tmp_path):
    cfg = TrainConfig(data=str(tiny_dataset), out=str(tmp_path / "r"), lifter="poseformer", frames=9,
                      train_subjects=("S1",), val_subjects=("S9",), epochs=1, batch_size=16, samples_per_epoch=32,
                      device="cpu", val_subsample=20, probe_windows=16, precision="bf16")
    record = train(cfg, log=lambda m: None)["history"][0]
    assert np.isfinite(record["train_mpjpe_mm"]) and np.isfinite(record["val_mpjpe_mm"])
    lifter = load_checkpoint(tmp_path / "r" / "final.pt")
    assert lifter.meta["training"]["recipe"]["precision"] == "bf16"
    assert all(p.dtype.is_floating_point and p.dtype != np.float16 for p in lifter.model.parameters())


@pytest.mark.slow
def test_compiled_training_gives_the_same_first_step(tiny_dataset, tmp_path):
    """--compile (torch.compile, about a minute of compiling on a CPU) trains the same model: the first
    epoch's loss equals the eager run's (same seed, same batches), to float tolerance."""
    losses = []
    for compiled in (False, True):
        cfg = TrainConfig(data=str(tiny_dataset), out=str(tmp_path / f"c{compiled}"), lifter="poseformer", frames=9,
                          train_subjects=("S1",), val_subjects=("S9",), epochs=1, batch_size=16, samples_per_epoch=16,
                          device="cpu", val_subsample=20, probe_windows=0, compile=compiled,
                          model_overrides={"drop_path": 0.0})
        losses.append(train(cfg, log=lambda m: None)["history"][0]["train_mpjpe_mm"])
    assert losses[1] == pytest.approx(losses[0], rel=1e-4)


def test_an_epoch_resumed_midway_counts_all_its_windows(tiny_dataset, tmp_path):
    base = dict(data=str(tiny_dataset), out=str(tmp_path / "r"), train_subjects=("S1",), val_subjects=("S9",),
                epochs=1, batch_size=16, samples_per_epoch=64, device="cpu", val_subsample=20, probe_windows=0,
                model_overrides={"channels": 16})
    stopped = train(TrainConfig(**base, max_hours=1e-9), log=lambda m: None)  # stops after its first step
    assert stopped["epochs_completed"] == 0
    record = train(TrainConfig(**base), log=lambda m: None)["history"][0]
    assert record["samples"] == 64  # 16 before the stop + 48 after
    assert load_checkpoint(tmp_path / "r" / "final.pt").meta["training"]["samples_seen"] == 64


def test_integer_model_options_become_floats_where_the_config_has_floats(tiny_dataset, tmp_path):
    cfg = TrainConfig(data=str(tiny_dataset), out=str(tmp_path / "r"), lifter="poseformer", frames=9,
                      train_subjects=("S1",), val_subjects=("S9",), epochs=1, batch_size=8, samples_per_epoch=8,
                      device="cpu", val_subsample=50, probe_windows=0, model_overrides={"spatial_drop_path": 0})
    train(cfg, log=lambda m: None)
    assert type(load_checkpoint(tmp_path / "r" / "final.pt").config.spatial_drop_path) is float


@pytest.mark.parametrize("warmup, lr_first_step", [(0, 1e-3), (4, 2.5e-4)])
def test_warmup_starts_the_rate_low(tiny_dataset, tmp_path, random_checkpoint, warmup, lr_first_step):
    """Adam's first update moves every weight with a gradient by the learning rate itself (m / sqrt(v) = sign g),
    so after one step the largest change of a weight is the first step's rate: lr / warmup_steps."""
    cfg = TrainConfig(data=str(tiny_dataset), out=str(tmp_path / "w"), epochs=1, batch_size=16, samples_per_epoch=16,
                      device="cpu", val_subsample=50, probe_windows=0, lr=1e-3, warmup_steps=warmup,
                      init_from=str(random_checkpoint))
    train(cfg, log=lambda m: None)
    before = dict(load_checkpoint(random_checkpoint).model.named_parameters())
    after = dict(load_checkpoint(tmp_path / "w" / "final.pt").model.named_parameters())
    moved = max(float((after[k] - before[k]).abs().max().detach()) for k in before)
    assert moved == pytest.approx(lr_first_step, rel=0.02)


@pytest.mark.parametrize("epoch, step, warmup, expected", [
    (0, None, 0, 1e-3),          # the epoch's rate
    (0, 0, 0, 1e-3),             # no warm-up: full rate from the first step
    (0, 0, 4, 0.25e-3),          # warm-up: linear from lr / warmup_steps ...
    (0, 1, 4, 0.50e-3),
    (0, 3, 4, 1e-3),             # ... to lr at its last step
    (0, 10, 4, 1e-3),            # then the full rate
    (1, 0, 4, 0.9e-3),           # warm-up only in the first epoch; decay after every epoch
    (3, None, 0, 1e-3 * 0.9 ** 3),
])
def test_learning_rate_schedule(epoch, step, warmup, expected):
    cfg = TrainConfig(data="unused", lr=1e-3, lr_decay=0.9, warmup_steps=warmup)
    assert learning_rate(cfg, epoch, step) == pytest.approx(expected)
