"""A catalogue of hostile and broken inputs: what a careful user or a security reviewer would try.

Every case says what must happen: the exit code (2 bad input, 3 output problem, 4 detector problem; never 1,
which is a bug), a phrase of the one-line error, and what must not happen (a planted pickle's payload running,
a file left behind, a file written through a planted link). Rerun the catalogue alone with
``python -m pytest tests/test_hostile.py -v``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from video3d.results import PoseResult
from video3d.sequence import PoseSequence

from .conftest import ROOT, SAMPLE, tiny_h36m
from .test_cli import invoke, one_line_error
from .test_video import make_video


# --- planted pickles: loading a file must never run code from it ---------------------------------------
class Payload:
    """Unpickling this runs ``touch MARKER`` (what a malicious file would do, harmlessly)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def evil_npz(path: Path, key: str, marker: Path, **others) -> Path:
    np.savez(path, **{key: np.array(Payload(marker), dtype=object)}, **others)
    return path


def evil_pt(path: Path, marker: Path) -> Path:
    torch.save({"model": Payload(marker)}, path)
    return path


def routes(tmp: Path, marker: Path) -> dict[str, tuple[list, int, str]]:
    """Every way a user can hand video3d a file: command line, exit code, phrase of the error."""
    tiny = tiny_h36m(tmp / "tiny.npz", frames=60)
    video = make_video(tmp / "clip.mp4", frames=30)
    run = tmp / "run"
    run.mkdir()
    evil_pt(run / "last.pt", marker)
    return {
        "detect --detector evil.pt": (["detect", video, "--detector", evil_pt(tmp / "evil.pt", marker),
                                       "-o", tmp / "d.npz"], 4, "cannot load the detector"),
        "evaluate --data evil.npz": (["evaluate", "--data", evil_npz(tmp / "e3d.npz", "positions_3d", marker),
                                      "--weights", tmp / "w.pt"], 2, "was not loaded"),
        "evaluate --data-2d evil.npz": (["evaluate", "--data", tiny, "--data-2d",
                                         evil_npz(tmp / "e2d.npz", "positions_2d", marker), "--weights", tmp / "w.pt"],
                                        2, "was not loaded"),
        "train --data evil.npz": (["train", "--data", tmp / "e3d.npz", "--out", tmp / "run2", "--epochs", 1],
                                  2, "was not loaded"),
        "train --out DIR with a planted last.pt": (["train", "--data", tiny, "--out", run, "--epochs", 1,
                                                    "--samples-per-epoch", 64, "--batch-size", 32],
                                                   2, "not a video3d training state that loads safely"),
        "lift evil.npz": (["lift", evil_npz(tmp / "k.npz", "keypoints_2d", marker, layout_2d="coco17",
                                            frame_size=[96, 64], fps=25.0), "--weights", tmp / "w.pt"],
                          2, "Object arrays cannot be loaded"),
        "reconstruct --keypoints evil.npz": (["reconstruct", video, "--keypoints", tmp / "k.npz", "--weights",
                                              tmp / "w.pt", "-o", tmp / "out"], 2, "Object arrays cannot be loaded"),
        "lift --weights evil.pt": (["lift", two_d_npz(tmp / "good_2d.npz", 40), "--weights", tmp / "evil.pt"], 2,
                                   "not a readable PyTorch checkpoint"),
    }


ROUTES = ["detect --detector evil.pt", "evaluate --data evil.npz", "evaluate --data-2d evil.npz",
          "train --data evil.npz", "train --out DIR with a planted last.pt", "lift evil.npz",
          "reconstruct --keypoints evil.npz", "lift --weights evil.pt"]


@pytest.mark.parametrize("route", ROUTES)
def test_a_planted_pickle_never_runs(route, tmp_path, random_checkpoint):
    marker = tmp_path / "PAYLOAD_RAN"
    random_checkpoint.rename(tmp_path / "w.pt")
    args, code, phrase = routes(tmp_path, marker)[route]
    if route.startswith("detect"):
        pytest.importorskip("ultralytics")
    r = invoke(*args)
    assert not marker.exists(), f"{route}: the payload ran"
    one_line_error(r, code, phrase)


def test_the_payload_would_run_if_unpickled(tmp_path):
    """The catalogue's payload is live: a plain unpickler runs it (so the test above can fail)."""
    marker = tmp_path / "PAYLOAD_RAN"
    path = evil_npz(tmp_path / "e.npz", "positions_3d", marker)
    with np.load(path, allow_pickle=True) as d:
        d["positions_3d"]
    assert marker.exists()


def test_a_real_ultralytics_checkpoint_still_loads_safely(tmp_path):
    """Safe loading refuses the payload but not a genuine YOLO pose checkpoint (made here from ultralytics'
    own model definition: no download)."""
    pytest.importorskip("ultralytics")
    from video3d.detector import PoseDetector, _quiet_ultralytics

    _quiet_ultralytics()
    from ultralytics import YOLO

    YOLO("yolov8n-pose.yaml", task="pose").save(str(tmp_path / "genuine-pose.pt"))
    with PoseDetector(tmp_path / "genuine-pose.pt", device="cpu") as det:
        assert det.track(np.zeros((64, 96, 3), np.uint8)) == []  # untrained: finds nobody, but it runs


def test_the_dataset_reader_admits_real_video_pose_3d_files(tmp_path):
    from video3d.data.h36m import load_positions_2d, load_positions_3d

    tiny = tiny_h36m(tmp_path / "t.npz", subjects=("S1",), frames=20)
    positions = load_positions_3d(tiny)
    assert positions["S1"]["Walking 1"].shape == (20, 17, 3)
    cams = {"S1": {"Walking 1": [np.zeros((20, 17, 2), np.float32)] * 4}}
    np.savez(tmp_path / "2d.npz", positions_2d=np.array(cams, dtype=object))
    assert len(load_positions_2d(tmp_path / "2d.npz")["S1"]["Walking 1"]) == 4


# --- signals: SIGTERM and SIGHUP clean up like Ctrl-C -----------------------------------------------------
def start(args: list, tmpdir: Path) -> subprocess.Popen:
    env = {**os.environ, "TMPDIR": str(tmpdir), "PYTHONPATH": str(ROOT)}
    env.pop("YOLO_CONFIG_DIR", None)  # set in this process by an earlier test's detector: a fresh user's has none
    return subprocess.Popen([sys.executable, "-m", "video3d.cli", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(condition, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before the signal: {proc.communicate()}")
        if time.monotonic() > end:
            proc.kill()
            raise AssertionError("timed out waiting for the run to get going")
        time.sleep(0.05)


def two_d_npz(path: Path, frames: int, size=(96, 64)) -> Path:
    rng = np.random.default_rng(0)
    kp = rng.uniform(10, min(size) - 10, (frames, 17, 2)).astype(np.float32)
    PoseResult([PoseSequence(kp, np.ones((frames, 17), np.float32), 25.0, "coco17", 1, size)], 25.0,
               size).save_npz(path)
    return path


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_render_killed_by_a_signal_leaves_no_file(tmp_path, sig, code):
    video = make_video(tmp_path / "long.mp4", frames=1500, size=(320, 240))
    poses = two_d_npz(tmp_path / "p.npz", 1500, (320, 240))
    out, tmp = tmp_path / "out", tmp_path / "tmp"
    tmp.mkdir()
    proc = start(["render", video, poses, "-o", out / "x.mp4"], tmp)
    wait_for(lambda: any(out.glob(".x.mp4.*.tmp")), proc)
    time.sleep(0.3)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    assert f"terminated by {sig.name}" in err and "Traceback" not in err
    assert not list(out.iterdir()) if out.exists() else True
    assert not list(tmp.iterdir()), list(tmp.iterdir())


def test_reconstruct_killed_in_detection_leaves_no_temporary_folders(tmp_path, detector_path, random_checkpoint):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = start(["reconstruct", SAMPLE, "-o", tmp_path / "out", "--weights", random_checkpoint,
                  "--detector", detector_path], tmp)
    wait_for(lambda: any(tmp.glob("video3d-ultralytics-*")), proc, timeout=120)  # the detector is loading
    time.sleep(3.0)  # and then detecting (the sample takes ~7 s)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    # video3d's own temporary folders are gone; torch's empty compile cache folder (torchinductor_USER, made when
    # the detector's first frame imports torch._dynamo) is torch's, kept across runs by design
    assert not list(tmp.glob("video3d*")), list(tmp.iterdir())
    assert all(p.name.startswith("torchinductor_") and not any(p.iterdir()) for p in tmp.iterdir()), list(tmp.iterdir())
    assert not (tmp_path / "out").exists()


# --- a truncated video ------------------------------------------------------------------------------------
def truncated_sample(tmp_path: Path) -> Path:
    data = SAMPLE.read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: len(data) * 3 // 10])
    return path


def test_a_truncated_video_is_reported_with_both_counts(tmp_path):
    from video3d.video import DecodeReport, probe, read_frames

    info = probe(truncated_sample(tmp_path))
    report = DecodeReport()
    frames = sum(1 for _ in read_frames(info, report))
    assert frames == report.frames < 165 == info.frame_count
    assert f"decoded {frames} of the 165 frames" in report.problem(info)
    whole = DecodeReport()
    sum(1 for _ in read_frames(probe(SAMPLE), whole))
    assert whole.problem(probe(SAMPLE)) is None


def test_detect_warns_on_a_truncated_video_and_strict_fails(tmp_path, detector_path):
    cut = truncated_sample(tmp_path)
    r = invoke("detect", cut, "-o", tmp_path / "a.npz", "--detector", detector_path)
    assert r.exit_code == 0, r.stderr
    assert "warning:" in r.stderr and "of the 165 frames" in r.stderr and "truncated or damaged" in r.stderr
    r = invoke("detect", cut, "-o", tmp_path / "b.npz", "--detector", detector_path, "--strict")
    one_line_error(r, 2, "of the 165 frames")
    assert not (tmp_path / "b.npz").exists()


# --- checks before the work --------------------------------------------------------------------------------
def test_an_existing_export_stops_reconstruct_before_any_work(tmp_path, random_checkpoint):
    video = make_video(tmp_path / "v.mp4", frames=30)
    out = tmp_path / "out"
    out.mkdir()
    (out / "v.json").write_text("old")
    r = invoke("reconstruct", video, "-o", out, "--weights", random_checkpoint, "--export", "json,csv",
               "--detector", tmp_path / "never-loaded.pt")
    one_line_error(r, 3, "v.json exists")
    assert sorted(p.name for p in out.iterdir()) == ["v.json"] and (out / "v.json").read_text() == "old"


def test_an_existing_bvh_stops_reconstruct_before_any_work(tmp_path, random_checkpoint):
    out = tmp_path / "out"
    out.mkdir()
    (out / "v_3.bvh").write_text("old")
    r = invoke("reconstruct", make_video(tmp_path / "v.mp4", frames=30), "-o", out, "--weights", random_checkpoint,
               "--export", "bvh", "--detector", tmp_path / "never-loaded.pt")
    one_line_error(r, 3, "v_3.bvh exists")


def test_an_existing_export_stops_lift_before_any_work(tmp_path, random_checkpoint):
    kp = two_d_npz(tmp_path / "k_2d.npz", 40)
    (tmp_path / "k_3d.csv").write_text("old")
    r = invoke("lift", kp, "--weights", random_checkpoint, "--export", "json,csv")
    one_line_error(r, 3, "k_3d.csv exists")
    assert not (tmp_path / "k_3d.npz").exists() and not (tmp_path / "k_3d.json").exists()


def test_keypoints_shorter_than_the_video_are_refused_first(tmp_path, random_checkpoint):
    video = make_video(tmp_path / "v.mp4", frames=60)
    kp = two_d_npz(tmp_path / "k.npz", 30)
    r = invoke("reconstruct", video, "--keypoints", kp, "--weights", random_checkpoint, "-o", tmp_path / "out")
    one_line_error(r, 2, "have 30 frames")
    assert not (tmp_path / "out").exists()


# --- temporary files never follow planted links -------------------------------------------------------------
def test_outputs_are_never_written_through_planted_links(tmp_path, random_checkpoint):
    kp = two_d_npz(tmp_path / "k_2d.npz", 40)
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    for pid in range(os.getpid(), os.getpid() + 50):  # the names the old scheme would use next
        (out / f".x.npz.{pid}.tmp").symlink_to(elsewhere / f"victim{pid}")
    r = invoke("lift", kp, "-o", out / "x.npz", "--weights", random_checkpoint)
    assert r.exit_code == 0, r.stderr
    assert not list(elsewhere.iterdir())
    assert (out / "x.npz").is_file() and not (out / "x.npz").is_symlink()


def test_a_link_at_the_target_is_replaced_not_followed(tmp_path):
    from video3d.io import AtomicPath

    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (tmp_path / "out.txt").symlink_to(victim)
    with AtomicPath(tmp_path / "out.txt", force=True) as a:
        assert a.tmp.name.startswith(".out.txt.") and a.tmp.name != f".out.txt.{os.getpid()}.tmp"
        a.tmp.write_text("new")
    assert victim.read_text() == "keep me" and not (tmp_path / "out.txt").is_symlink()
    assert (tmp_path / "out.txt").read_text() == "new"


# --- empty results are errors --------------------------------------------------------------------------------
def test_lift_of_all_missing_2d_is_an_error(tmp_path, random_checkpoint):
    np.savez(tmp_path / "nan_2d.npz", keypoints_2d=np.full((40, 17, 3), np.nan, np.float32), layout_2d="coco17",
             frame_size=[96, 64], fps=25.0)
    r = invoke("lift", tmp_path / "nan_2d.npz", "--weights", random_checkpoint)
    one_line_error(r, 2, "nothing to lift")
    assert not (tmp_path / "nan_3d.npz").exists()


def test_export_of_all_invalid_3d_is_an_error(tmp_path, random_checkpoint):
    kp = two_d_npz(tmp_path / "k_2d.npz", 40)
    assert invoke("lift", kp, "--weights", random_checkpoint).exit_code == 0
    with np.load(tmp_path / "k_3d.npz") as d:
        arrays = dict(d)
    arrays["keypoints_3d"][:] = np.nan
    arrays["keypoints_3d_world"][:] = np.nan
    arrays["valid"][:] = False
    np.savez(tmp_path / "dead.npz", **arrays)
    r = invoke("export", tmp_path / "dead.npz", "-f", "bvh,json,csv")
    one_line_error(r, 2, "no person has a valid 3D pose")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("dead")) == ["dead.npz"]


def test_nan_weights_are_refused(tmp_path, random_checkpoint):
    ckpt = torch.load(random_checkpoint, weights_only=True)
    next(iter(v for v in ckpt["state_dict"].values() if v.is_floating_point())).fill_(float("nan"))
    torch.save(ckpt, tmp_path / "nan.pt")
    r = invoke("lift", two_d_npz(tmp_path / "k_2d.npz", 40), "--weights", tmp_path / "nan.pt")
    one_line_error(r, 2, "hold NaN or inf")


# --- exit codes: bad input is 2, output problems 3, detector problems 4 --------------------------------------
def openpose_folder(tmp: Path, content) -> Path:
    folder = tmp / "openpose"
    folder.mkdir()
    for i in range(30):
        (folder / f"f_{i:04d}_keypoints.json").write_text(json.dumps(content))
    return folder


def coco_file(tmp: Path, content) -> Path:
    (tmp / "coco.json").write_text(json.dumps(content))
    return tmp / "coco.json"


person = {"pose_keypoints_2d": [10.0, 20.0, 0.9] * 25}
MALFORMED_KEYPOINTS = {
    "OpenPose: top-level list": (openpose_folder, [person]),
    "OpenPose: people null": (openpose_folder, {"people": None}),
    "OpenPose: string values": (openpose_folder, {"people": [{"pose_keypoints_2d": ["a", "b", "c"] * 25}]}),
    "OpenPose: person not an object": (openpose_folder, {"people": [3]}),
    "COCO: image without id": (coco_file, {"images": [{"file_name": "a"}], "annotations": []}),
    "COCO: keypoints not numbers": (coco_file, [{"image_id": 1, "keypoints": {"x": 1}}]),
    "COCO: string track id": (coco_file, [{"image_id": 1, "keypoints": [1.0] * 51, "track_id": "abc"}]),
    "COCO: top-level number": (coco_file, 42),
}


@pytest.mark.parametrize("case", list(MALFORMED_KEYPOINTS))
def test_malformed_keypoint_files_are_bad_input(case, tmp_path, random_checkpoint):
    make, content = MALFORMED_KEYPOINTS[case]
    r = invoke("lift", make(tmp_path, content), "--fps", 25, "--frame-size", "96x64", "--weights", random_checkpoint,
               "-o", tmp_path / "o.npz")
    one_line_error(r, 2, "")


def npz_with(tmp: Path, **changes) -> Path:
    base = dict(keypoints_2d=np.ones((1, 30, 17, 3), np.float32), layout_2d="coco17", frame_size=[96, 64], fps=25.0,
                lifter="x", keypoints_3d=np.zeros((1, 30, 17, 3), np.float32))
    np.savez(tmp / "bad.npz", **{**base, **changes})
    return tmp / "bad.npz"


MALFORMED_NPZ = {
    "fps a string": dict(fps="fast"),
    "fps negative": dict(fps=-3.0),
    "3D of the wrong shape": dict(keypoints_3d=np.zeros((1, 30, 16, 3), np.float32)),
    "3D of other frames": dict(keypoints_3d=np.zeros((1, 29, 17, 3), np.float32)),
    "frame size strings": dict(frame_size=["wide", "tall"]),
    "valid of the wrong shape": dict(valid=np.ones(3, bool)),
    "world array of the wrong shape": dict(keypoints_3d_world=np.zeros((2, 2)), root_positions=np.zeros((1, 30, 3)),
                                           world_rotation=np.eye(3)),
    "track ids strings": dict(track_ids=np.array(["a"])),
}


@pytest.mark.parametrize("case", list(MALFORMED_NPZ))
def test_malformed_npz_is_bad_input(case, tmp_path):
    path = npz_with(tmp_path, **MALFORMED_NPZ[case])
    r = invoke("export", path, "-f", "json,csv")
    one_line_error(r, 2, "bad.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.npz"]  # nothing written, not even a partial json


def test_a_folder_that_is_not_a_model_is_a_detector_problem(tmp_path, random_checkpoint):
    folder = tmp_path / "not_a_model"
    folder.mkdir()
    (folder / "readme.txt").write_text("hello")
    r = invoke("reconstruct", make_video(tmp_path / "v.mp4", frames=30), "--detector", folder, "--weights",
               random_checkpoint, "-o", tmp_path / "o")
    one_line_error(r, 4, "not an OpenVINO export")


def test_an_output_folder_that_is_a_file_is_an_output_problem(tmp_path, random_checkpoint):
    (tmp_path / "taken").write_text("x")
    r = invoke("reconstruct", make_video(tmp_path / "v.mp4", frames=30), "-o", tmp_path / "taken", "--weights",
               random_checkpoint)
    one_line_error(r, 3, "is a file, not a folder")


def test_a_failed_run_leaves_no_empty_output_folder(tmp_path, random_checkpoint):
    video = make_video(tmp_path / "short.mp4", frames=10)
    r = invoke("reconstruct", video, "-o", tmp_path / "new" / "out", "--weights", random_checkpoint)
    one_line_error(r, 2, "needs at least 27")
    assert not (tmp_path / "new").exists()


# --- variable frame rate ------------------------------------------------------------------------------------
def vfr_video(path: Path) -> np.ndarray:
    """80 frames at 25 fps, then 40 at 12.5 fps: frame 80 is at 3.2 s."""
    from video3d.video import VideoWriter

    ts = np.r_[np.arange(80) * 0.04, 3.2 + np.arange(40) * 0.08]
    with VideoWriter(path, 96, 64, "25/1", timestamps=ts) as w:
        for i in range(len(ts)):
            w.write(np.full((64, 96, 3), (i * 2) % 256, np.uint8))
    return ts


def test_render_keeps_each_frame_at_its_time(tmp_path):
    from video3d.video import frame_timestamps, probe, read_frames

    ts = vfr_video(tmp_path / "vfr.mp4")
    info = probe(tmp_path / "vfr.mp4")
    np.testing.assert_allclose(frame_timestamps(info), ts, atol=1e-3)
    r = invoke("render", tmp_path / "vfr.mp4", two_d_npz(tmp_path / "p.npz", 120), "-o", tmp_path / "out.mp4")
    assert r.exit_code == 0, r.stderr
    assert "variable frame rate" in r.stderr
    out = probe(tmp_path / "out.mp4")
    assert sum(1 for _ in read_frames(out)) == 120
    out_ts = frame_timestamps(out)
    assert out_ts[80] == pytest.approx(3.2, abs=1e-3)
    np.testing.assert_allclose(out_ts, ts, atol=1e-3)


def test_a_constant_rate_video_is_not_taken_for_variable(tmp_path):
    from video3d.pipeline import variable_timestamps
    from video3d.video import probe

    assert variable_timestamps(probe(SAMPLE), 165) is None
    info = probe(make_video(tmp_path / "ntsc.mp4", frames=40, fps="30000/1001"))
    assert variable_timestamps(info, 40) is None


@pytest.mark.parametrize("reporter", ["rich bar", "none (a library caller)"])
def test_a_swallowed_signal_is_raised_again_at_the_next_frame(monkeypatch, reporter):
    """A SIGTERM handled while Python runs a callback whose exceptions are only printed (importlib's module
    lock callback did this in CI: the run then finished with exit 0) must still end the run, whether the CLI's
    bar or no reporter at all watches the stage."""
    import io

    from rich.console import Console

    from video3d import cli, signals
    from video3d.progress import stage

    monkeypatch.setattr(signals, "_pending", [])
    try:
        signals._terminate(signal.SIGTERM, None)
    except signals.Terminated:
        pass  # swallowed, as such a callback does
    assert signals.pending_signal() == signal.SIGTERM
    progress = cli.RichProgress(Console(file=io.StringIO())) if reporter == "rich bar" else None
    with pytest.raises(signals.Terminated) as info:
        with stage(progress, "detect", 10) as bar:
            bar.advance()
    assert info.value.signum == signal.SIGTERM
