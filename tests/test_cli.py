"""CliRunner tests, one group per command; bad input is one line on stderr and a non-zero exit."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from video3d.cli import app
from video3d.video import probe, read_frames

from .conftest import SAMPLE
from .test_video import make_video

runner = CliRunner()


def invoke(*args, **kw):
    return runner.invoke(app, [str(a) for a in args], **kw)


def one_line_error(result, code, match):
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr  # one error line, last (after any progress)
    assert match in errors[0], errors[0]
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize("command", ["reconstruct", "detect", "lift", "render", "train", "evaluate", "lifters"])
def test_help(command):
    r = invoke(command, "--help")
    assert r.exit_code == 0 and "Usage" in r.stdout


def test_the_cli_starts_without_the_heavy_libraries():
    # torch, cv2 and ultralytics take seconds to import (2.8 s for the CLI before): --help must not wait for them
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom video3d.cli import app\n"
            "for args in (['--help'], ['reconstruct', '--help'], ['export', '--help']):\n"
            "    assert CliRunner().invoke(app, args).exit_code == 0\n"
            "print(sorted(m for m in ('torch', 'cv2', 'ultralytics') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr


def test_help_shows_no_type_for_flags():
    for args in (["--help"], ["reconstruct", "--help"]):
        r = invoke(*args)
        assert r.exit_code == 0 and "--help" in r.stdout and "<bool>" not in r.stdout and "BOOLEAN" not in r.stdout


def test_a_finished_bar_shows_the_stage_mean_rate():
    # rich's own estimate starts at the first step (after the detector loaded): 17.8 frames/s where the summary
    # said 12.1; the finished bar gives the summary's figure
    from types import SimpleNamespace

    from video3d.cli import RateColumn

    task = SimpleNamespace(completed=165, finished=True, finished_time=13.6, speed=17.8, fields={})
    assert RateColumn().render(task).plain.strip() == "12.1 frames/s"
    task = SimpleNamespace(completed=50, finished=False, finished_time=None, speed=17.8, fields={})
    assert RateColumn().render(task).plain.strip() == "17.8 frames/s"


def test_lifters_lists_the_registry():
    r = invoke("lifters")
    assert r.exit_code == 0 and "gastnet" in r.stdout and "243" in r.stdout


# --- reconstruct: bad input -----------------------------------------------------------------------
def test_missing_file(tmp_path):
    one_line_error(invoke("reconstruct", tmp_path / "nope.mp4"), 2, "does not exist")


@pytest.mark.parametrize("content,match", [(b"", "is empty"), (b"hello, world\n" * 50, "not a readable video")])
def test_not_a_video(tmp_path, content, match):
    bad = tmp_path / "clip.mp4"
    bad.write_bytes(content)
    one_line_error(invoke("reconstruct", bad, "-o", tmp_path / "out"), 2, match)
    assert not (tmp_path / "out" / "clip_poses.npz").exists()


def test_corrupt_video(tmp_path):
    good = make_video(tmp_path / "good.mp4", frames=40).read_bytes()
    bad = tmp_path / "corrupt.mp4"
    bad.write_bytes(good[:200] + bytes(len(good) - 200))
    one_line_error(invoke("reconstruct", bad, "-o", tmp_path / "out"), 2, f"{bad} is not a readable video")
    assert not (tmp_path / "out").exists()


def test_bad_persons_value(tmp_path):
    one_line_error(invoke("reconstruct", make_video(tmp_path / "v.mp4"), "--persons", "0"), 2, "--persons")


def test_unknown_lifter_lists_valid_ones(tmp_path):
    one_line_error(invoke("reconstruct", make_video(tmp_path / "v.mp4"), "--lifter", "nope"), 2, "gastnet")


def test_missing_weights_name_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("VIDEO3D_WEIGHTS_DIR", str(tmp_path / "empty"))
    one_line_error(invoke("reconstruct", make_video(tmp_path / "v.mp4"), "-o", tmp_path / "o"), 1,
                   "gastnet_27f.pt is missing")


def test_unwritable_output_folder(tmp_path, random_checkpoint):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    r = invoke("reconstruct", make_video(tmp_path / "v.mp4", frames=30), "-o", blocker / "sub",
               "--weights", random_checkpoint)
    one_line_error(r, 3, "cannot create output folder")


def test_existing_outputs_need_force(tmp_path, random_checkpoint):
    video = make_video(tmp_path / "v.mp4", frames=30)
    out = tmp_path / "out"
    out.mkdir()
    (out / "v_poses.npz").write_bytes(b"old")
    one_line_error(invoke("reconstruct", video, "-o", out, "--weights", random_checkpoint), 3, "--force")
    assert (out / "v_poses.npz").read_bytes() == b"old"


def test_video_shorter_than_the_receptive_field(tmp_path, random_checkpoint):
    video = make_video(tmp_path / "short.mp4", frames=10)
    one_line_error(invoke("reconstruct", video, "-o", tmp_path / "o", "--weights", random_checkpoint), 2,
                   "needs at least 27")


def test_video_with_no_person(tmp_path, detector_path, random_checkpoint):
    video = make_video(tmp_path / "empty_room.mp4", frames=30, size=(320, 240))
    r = invoke("reconstruct", video, "-o", tmp_path / "o", "--weights", random_checkpoint,
               "--detector", detector_path)
    one_line_error(r, 2, "no person was found")
    assert not (tmp_path / "o" / "empty_room_poses.npz").exists()
    assert not list((tmp_path / "o").glob("*.tmp"))


def test_detector_that_does_not_exist(tmp_path, random_checkpoint):
    r = invoke("reconstruct", make_video(tmp_path / "v.mp4", frames=30), "-o", tmp_path / "o",
               "--weights", random_checkpoint, "--detector", tmp_path / "nope.pt")
    one_line_error(r, 4, "--detector PATH")


def test_detector_from_the_environment(tmp_path, random_checkpoint, monkeypatch):
    monkeypatch.setenv("VIDEO3D_DETECTOR", str(tmp_path / "from_env.pt"))
    r = invoke("reconstruct", make_video(tmp_path / "v.mp4", frames=30), "-o", tmp_path / "o",
               "--weights", random_checkpoint)
    one_line_error(r, 4, "from_env.pt")


# --- the stages on the sample video ------------------------------------------------------------------
@pytest.fixture(scope="module")
def sample_2d(tmp_path_factory):
    """`video3d detect` on the sample video with the shared detector (once for the module)."""
    from .conftest import DETECTOR, need

    need(DETECTOR, "the shared YOLO pose model")
    pytest.importorskip("openvino")
    out = tmp_path_factory.mktemp("detect") / "walk_2d.npz"
    r = invoke("detect", SAMPLE, "-o", out, "--detector", DETECTOR)
    assert r.exit_code == 0, r.stderr
    return out


def test_detect_finds_the_mannequin_in_most_frames(sample_2d):
    d = np.load(sample_2d)
    assert d["keypoints_2d"].shape == (1, 165, 17, 3) and str(d["layout_2d"]) == "coco17"
    seen = np.isfinite(d["keypoints_2d"][0, :, :, 0]).sum(-1) >= 9
    assert seen.mean() > 0.9, seen.mean()
    assert d["frame_size"].tolist() == [640, 480] and float(d["fps"]) == 25.0


def test_lift_then_render(sample_2d, tmp_path, random_checkpoint):
    poses = tmp_path / "walk_3d.npz"
    r = invoke("lift", sample_2d, "-o", poses, "--weights", random_checkpoint)
    assert r.exit_code == 0, r.stderr
    d = np.load(poses)
    assert d["keypoints_3d"].shape == (1, 165, 17, 3) and d["valid"].shape == (1, 165)
    assert d["valid"].mean() > 0.9 and np.isfinite(d["keypoints_3d"][d["valid"]]).all()
    np.testing.assert_array_equal(d["keypoints_3d"][d["valid"]][:, 0], 0)
    video = tmp_path / "walk.mp4"
    r = invoke("render", SAMPLE, poses, "-o", video)
    assert r.exit_code == 0, r.stderr
    info = probe(video)
    assert (info.width, info.height, info.fps) == (640 + 480, 480, 25.0)
    assert sum(1 for _ in read_frames(info)) == 165
    one_line_error(invoke("render", SAMPLE, poses, "-o", video), 3, "--force")


def test_render_quality_trades_file_size_for_speed(sample_2d, tmp_path, random_checkpoint):
    poses = tmp_path / "walk_3d.npz"
    assert invoke("lift", sample_2d, "-o", poses, "--weights", random_checkpoint).exit_code == 0
    sizes = {}
    for quality in ("balanced", "fast"):
        video = tmp_path / f"walk_{quality}.mp4"
        r = invoke("render", SAMPLE, poses, "-o", video, "--quality", quality)
        assert r.exit_code == 0, r.stderr
        assert sum(1 for _ in read_frames(probe(video))) == 165  # the same frames, another encoding
        sizes[quality] = video.stat().st_size
    assert sizes["fast"] > 1.5 * sizes["balanced"], sizes  # ultrafast: a larger file for the same quality
    r = invoke("render", SAMPLE, poses, "-o", tmp_path / "x.mp4", "--quality", "best")
    assert r.exit_code == 2 and "best" in r.stderr and not (tmp_path / "x.mp4").exists()


def test_reconstruct_refuses_an_unknown_quality_before_any_work(tmp_path):
    from video3d.errors import InputError
    from video3d.pipeline import reconstruct

    with pytest.raises(InputError, match="quality is one of balanced, fast"):
        reconstruct(SAMPLE, output_dir=tmp_path, quality="best", detector="no-such-detector.pt")
    assert not any(tmp_path.iterdir())


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("command", ["reconstruct", "detect", "lift", "evaluate", "train"])
def test_device_cuda_without_a_gpu_is_a_one_line_error(command, tmp_path, sample_2d, h36m_path):
    """--device cuda where PyTorch sees no GPU: exit 2 before any work, never an internal error."""
    args = {"reconstruct": [SAMPLE, "-o", tmp_path / "o"], "detect": [SAMPLE, "-o", tmp_path / "d.npz"],
            "lift": [sample_2d, "-o", tmp_path / "l.npz"], "evaluate": ["--data", h36m_path, "--max-frames", "50"],
            "train": ["--data", h36m_path, "--out", tmp_path / "t"]}[command]
    one_line_error(invoke(command, *args, "--device", "cuda"), 2, "sees no CUDA GPU")
    assert not any(tmp_path.glob("[odlt]*")), list(tmp_path.iterdir())


def test_lift_accepts_foreign_h36m_keypoints(tmp_path, random_checkpoint):
    kp = np.random.default_rng(0).uniform(200, 800, size=(40, 17, 2)).astype(np.float32)
    np.savez(tmp_path / "mine.npz", keypoints_2d=kp, layout_2d="h36m17", frame_size=[1000, 1000])
    r = invoke("lift", tmp_path / "mine.npz", "--fps", 50, "--weights", random_checkpoint)
    assert r.exit_code == 0, r.stderr
    assert np.load(tmp_path / "mine_3d.npz")["keypoints_3d"].shape == (1, 40, 17, 3)


def test_lift_rejects_a_bad_npz(tmp_path, random_checkpoint):
    np.savez(tmp_path / "bad.npz", something=np.zeros(3))
    one_line_error(invoke("lift", tmp_path / "bad.npz", "--weights", random_checkpoint), 2, "lacks")


def test_render_refuses_keypoints_of_another_video(tmp_path, random_checkpoint):
    kp = np.random.default_rng(0).uniform(0, 90, size=(1, 12, 17, 3)).astype(np.float32)
    np.savez(tmp_path / "p.npz", keypoints_2d=kp, layout_2d="coco17", frame_size=[50, 50], fps=25.0)
    r = invoke("render", make_video(tmp_path / "v.mp4", frames=12), tmp_path / "p.npz", "-o", tmp_path / "o.mp4")
    one_line_error(r, 2, "the video is 96x64")


# --- training and evaluation -------------------------------------------------------------------------
def test_evaluate_prints_the_table_and_writes_json(tiny_dataset, random_checkpoint, tmp_path):
    r = invoke("evaluate", "--data", tiny_dataset, "--weights", random_checkpoint, "--subjects", "S9",
               "--json", tmp_path / "eval.json")
    assert r.exit_code == 0, r.stderr
    assert "Average" in r.stdout and "Walking" in r.stdout and "Eating" in r.stdout
    report = json.loads((tmp_path / "eval.json").read_text())
    assert set(report["actions"]) == {"Walking", "Eating"}
    assert set(report["average"]) == {"mpjpe", "p_mpjpe", "n_mpjpe", "mpjve"}
    assert report["frames"] == 2 * 4 * 120


def test_evaluate_bad_subject(tiny_dataset, random_checkpoint):
    one_line_error(invoke("evaluate", "--data", tiny_dataset, "--weights", random_checkpoint, "--subjects", "S42"),
                   2, "S42")


def test_train_one_short_epoch(tiny_dataset, tmp_path):
    r = invoke("train", "--data", tiny_dataset, "--out", tmp_path / "run", "--epochs", "1", "--samples-per-epoch",
               "32", "--batch-size", "16", "--device", "cpu")
    assert r.exit_code == 0, r.stderr
    assert (tmp_path / "run" / "final.pt").is_file() and (tmp_path / "run" / "last.pt").is_file()
    # not a terminal: plain progress lines (a redrawn bar would leave a log file empty until the epoch ends)
    assert re.search(r"^epoch 1/1 step 2/2 loss [\d.]+ mm \d+ samples/s$", r.stderr, re.M), r.stderr


def test_train_model_options_and_recipe(tiny_dataset, tmp_path):
    r = invoke("train", "--data", tiny_dataset, "--lifter", "poseformer", "--frames", "9", "--recipe", "paper",
               "--out", tmp_path / "run", "--epochs", "1", "--samples-per-epoch", "16", "--batch-size", "16",
               "--device", "cpu", "--model-option", "spatial_drop_path=0.05", "--model-option", "spatial_drop_path_per=frame")
    assert r.exit_code == 0, r.stderr
    from video3d.lifters import load_checkpoint

    lifter = load_checkpoint(tmp_path / "run" / "final.pt")
    assert (lifter.config.spatial_drop_path, lifter.config.spatial_drop_path_per) == (0.05, "frame")
    assert lifter.meta["training"]["recipe"]["lr"] == 2e-4  # the paper's, not the authors' code's 4e-4


@pytest.mark.parametrize("args, message", [
    (["--model-option", "spatial_drop_path"], "KEY=VALUE"),
    (["--model-option", "no_such_field=1"], "no config field no_such_field"),
    (["--model-option", "spatial_drop_path_per=joint"], "'frame' or 'window'"),
    (["--recipe", "cookbook"], "no recipe 'cookbook'"),
    (["--budget", "soon"], "not 'soon'"),
])
def test_train_bad_model_options_are_one_line_errors(tiny_dataset, tmp_path, args, message):
    one_line_error(invoke("train", "--data", tiny_dataset, "--lifter", "poseformer", "--frames", "9",
                          "--out", tmp_path / "run", *args), 2, message)
    assert not (tmp_path / "run").exists()


def test_train_progress_lines_on_a_log_file():
    import io

    from rich.console import Console

    from video3d.cli import TrainProgress

    log = io.StringIO()
    p = TrainProgress(Console(file=log, force_terminal=False), every_s=3600)
    p.start_epoch(0, 3, steps=4, step=0)
    for step in range(1, 5):
        p.update(step, 50.0 - step, 100.0)
    assert log.getvalue().splitlines() == ["epoch 1/3 step 4/4 loss 46.0 mm 100 samples/s"]  # throttled, then the end
    p = TrainProgress(Console(file=log, force_terminal=False), every_s=0)
    p.start_epoch(1, 3, steps=2, step=0)
    p.update(1, 10.0, 5.0)
    assert log.getvalue().splitlines()[-1] == "epoch 2/3 step 1/2 loss 10.0 mm 5 samples/s"


def test_train_has_no_option_to_choose_the_training_subjects(tmp_path):
    # so the CLI cannot train on S9/S11 at all (the API refuses them: test_training); --val-subjects S8 holds
    # out a training subject instead
    one_line_error(invoke("train", "--data", tmp_path / "h36m.npz", "--train-subjects", "S9"), 2,
                   "No such option: --train-subjects")


def test_reconstruct_from_saved_keypoints_skips_detection(sample_2d, tmp_path, random_checkpoint, monkeypatch):
    monkeypatch.setenv("VIDEO3D_DETECTOR", str(tmp_path / "no_such_detector.pt"))  # would fail if used
    r = invoke("reconstruct", SAMPLE, "--keypoints", sample_2d, "--weights", random_checkpoint, "-o", tmp_path,
               "--export", "npz,bvh", "--no-trajectory")
    assert r.exit_code == 0, r.stderr
    d = np.load(tmp_path / "mannequin_walk_poses.npz")
    assert d["keypoints_3d"].shape == (1, 165, 17, 3) and not bool(d["trajectory"])
    assert (tmp_path / "mannequin_walk_1.bvh").is_file() or list(tmp_path.glob("mannequin_walk_*.bvh"))
    assert probe(tmp_path / "mannequin_walk_3d.mp4").width == 640 + 480


def test_reconstruct_refuses_keypoints_of_another_size(tmp_path, random_checkpoint):
    kp = np.random.default_rng(0).uniform(0, 90, size=(1, 30, 17, 3)).astype(np.float32)
    np.savez(tmp_path / "k.npz", keypoints_2d=kp, layout_2d="coco17", frame_size=[50, 50], fps=25.0)
    r = invoke("reconstruct", make_video(tmp_path / "v.mp4", frames=30), "--keypoints", tmp_path / "k.npz",
               "--weights", random_checkpoint, "-o", tmp_path / "o")
    one_line_error(r, 2, "the video is 96x64")


def test_default_detector_that_cannot_be_downloaded(tmp_path, random_checkpoint, monkeypatch):
    """No network (simulated): one line naming --detector PATH, and nothing left in the cache."""
    pytest.importorskip("ultralytics")
    from video3d.detector import _quiet_ultralytics

    _quiet_ultralytics()
    import ultralytics.utils.downloads as downloads

    def offline(*args, **kwargs):
        raise ConnectionError("Download failure: environment may be offline")

    monkeypatch.setattr(downloads, "attempt_download_asset", offline)
    monkeypatch.setenv("VIDEO3D_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("VIDEO3D_DETECTOR", raising=False)
    r = invoke("reconstruct", make_video(tmp_path / "v.mp4", frames=30), "-o", tmp_path / "o",
               "--weights", random_checkpoint)
    one_line_error(r, 4, "could not download the detector weights yolo11n-pose.pt")
    assert "--detector PATH" in r.stderr
    assert not list((tmp_path / "cache").glob("*.pt"))


def test_lift_rescales_a_small_person_to_the_training_size(tmp_path, random_checkpoint):
    from video3d.geometry import normalize_screen_coordinates, pose_spread
    from video3d.lifters.base import H36M_INPUT_SPREAD

    kp = np.load(SAMPLE.with_name("mannequin_walk_gt.npz"))["keypoints_2d"].astype(np.float32)  # H36M-17, 640x480
    small = kp[:, :1] + (kp - kp[:, :1]) * 0.25  # the same walk, a quarter of the size
    np.savez(tmp_path / "small_2d.npz", keypoints_2d=small[None], layout_2d="h36m17", frame_size=[640, 480], fps=25.0)
    size = np.median(pose_spread(normalize_screen_coordinates(small, 640, 480)))
    assert size < H36M_INPUT_SPREAD / 2  # the premise: far smaller than the training input

    r = invoke("lift", tmp_path / "small_2d.npz", "--weights", random_checkpoint, "--smooth", "none")
    assert r.exit_code == 0, r.stderr
    scaled = np.load(tmp_path / "small_3d.npz")
    assert scaled["input_scale"][0] == pytest.approx(H36M_INPUT_SPREAD / size, rel=1e-4)
    assert "scaled x" in r.stderr

    r = invoke("lift", tmp_path / "small_2d.npz", "--weights", random_checkpoint, "--smooth", "none",
               "--no-rescale", "-o", tmp_path / "as_is.npz")
    assert r.exit_code == 0, r.stderr
    as_is = np.load(tmp_path / "as_is.npz")
    assert as_is["input_scale"][0] == 1.0 and "scaled x" not in r.stderr
    assert not np.allclose(as_is["keypoints_3d"], scaled["keypoints_3d"], atol=1e-3)

    # the rescaled person is lifted exactly as the same 2D made that size by hand
    big = kp[:, :1] + (kp - kp[:, :1]) * 0.25 * float(scaled["input_scale"][0])
    np.savez(tmp_path / "big_2d.npz", keypoints_2d=big[None], layout_2d="h36m17", frame_size=[640, 480], fps=25.0)
    r = invoke("lift", tmp_path / "big_2d.npz", "--weights", random_checkpoint, "--smooth", "none")
    assert r.exit_code == 0, r.stderr
    big3d = np.load(tmp_path / "big_3d.npz")
    assert big3d["input_scale"][0] == pytest.approx(1.0, abs=1e-4)
    np.testing.assert_allclose(big3d["keypoints_3d"], scaled["keypoints_3d"], atol=1e-4)


def test_every_train_option_reaches_the_training_config(tmp_path, monkeypatch):
    import video3d.training as training

    data, init = tmp_path / "h36m.npz", tmp_path / "init.pt"
    data.write_bytes(b"x")
    init.write_bytes(b"x")
    seen = {}

    def fake_train(cfg, log, progress):
        seen["cfg"] = cfg
        return {"rank": 0, "epochs_completed": 0, "best_val_mpjpe_mm": 0.0}

    monkeypatch.setattr(training, "train", fake_train)
    r = invoke("train", "--data", data, "--frames", "81", "--epochs", "3", "--batch-size", "64", "--lr", "2e-4",
               "--lr-decay", "0.9", "--warmup-steps", "7", "--val-subjects", "S8", "--device", "cpu",
               "--precision", "bf16", "--compile", "--budget", "20m", "--init", init,
               "--model-option", "dropout=0.1", "--noise", "0.01", "--detector-errors-p", "0.3", "--no-flip")
    assert r.exit_code == 0, r.stderr
    cfg = seen["cfg"]
    assert (cfg.frames, cfg.epochs, cfg.batch_size, cfg.lr, cfg.lr_decay, cfg.warmup_steps) == (81, 3, 64, 2e-4, 0.9, 7)
    assert cfg.val_subjects == ("S8",) and "S8" not in cfg.train_subjects
    assert (cfg.device, cfg.precision, cfg.compile, cfg.budget_minutes) == ("cpu", "bf16", True, 20.0)
    assert cfg.init_from == str(init) and cfg.model_overrides == {"dropout": 0.1}
    assert (cfg.noise, cfg.detector_errors_p, cfg.flip) == (0.01, 0.3, False)
    assert cfg.out == "runs/gastnet_81f"  # the default run folder names the lifter and window


def test_piped_help_cuts_no_option_name_or_default():
    """Help piped into a file (no terminal, no COLUMNS) is wide enough that nothing is cut with an ellipsis."""
    script = (
        "import typer\nfrom typer.testing import CliRunner\nfrom video3d.cli import app\n"
        "group = typer.main.get_command(app)\n"
        "for name, cmd in group.commands.items():\n"
        "    out = CliRunner().invoke(app, [name, '--help']).stdout\n"
        "    names = [o for p in cmd.params for o in p.opts + p.secondary_opts if o.startswith('--')]\n"
        "    print(name, '\\u2026' in out, [o for o in names if o not in out])\n")
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("COLUMNS", "TERMINAL_WIDTH", "LINES")}
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) >= 8, lines  # every command was looked at
    assert all(line.endswith(" False []") for line in lines), [ln for ln in lines if not ln.endswith(" False []")]
