"""video3d batch: inputs, the manifest's decisions, resume after a kill, failures, and the Ray backend."""

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

from video3d.batch import Job, Manifest, expand_inputs, fingerprint, plan
from video3d.options import ReconstructOptions
from video3d.errors import InputError
from video3d.video import ffmpeg_exe

from .conftest import ROOT, SAMPLE
from .test_cli import invoke, one_line_error


def touch(path: Path, content: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


# --- inputs -------------------------------------------------------------------------------------------------
def test_files_folders_and_patterns_become_jobs_with_their_subfolders(tmp_path):
    a = touch(tmp_path / "in" / "a.mp4")
    b = touch(tmp_path / "in" / "day2" / "b.MOV")
    touch(tmp_path / "in" / "notes.txt")
    c = touch(tmp_path / "other" / "c.avi")
    out = tmp_path / "out"
    jobs = expand_inputs([tmp_path / "in", str(tmp_path / "oth*" / "*.avi"), a], out)
    assert [(j.input, j.output_dir) for j in jobs] == [
        (a.resolve(), out.resolve()), (b.resolve(), out.resolve() / "day2"),
        (c.resolve(), out.resolve() / "other")]  # a pattern keeps the folders from its first wildcard on


def test_outputs_inside_an_input_folder_are_never_inputs(tmp_path):
    touch(tmp_path / "v.mp4")
    touch(tmp_path / "out" / "v_3d.mp4")  # a previous batch's output
    assert [j.input.name for j in expand_inputs([tmp_path], tmp_path / "out")] == ["v.mp4"]


@pytest.mark.parametrize("make,phrase", [
    (lambda t: [str(t / "nothing*.mp4")], "matches no file"),
    (lambda t: [t / "missing.mp4"], "no such file or folder"),
    (lambda t: [touch(t / "x" / "a.txt").parent], "holds no video"),
    (lambda t: [touch(t / "1" / "clip.mp4"), touch(t / "2" / "clip.mp4")], "would write the same outputs"),
])
def test_bad_inputs_are_refused_before_any_work(tmp_path, make, phrase):
    with pytest.raises(InputError, match=phrase):
        expand_inputs(make(tmp_path), tmp_path / "out")


# --- the manifest's decisions ---------------------------------------------------------------------------------------
def record(job: Job, status: str, options: ReconstructOptions, **extra) -> dict:
    st = job.input.stat()
    return {"input": str(job.input), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "options": fingerprint(options),
            "status": status, **extra}


def test_a_rerun_skips_what_is_done_and_unchanged_and_redoes_the_rest(tmp_path):
    options = ReconstructOptions(lifter="gastnet")
    jobs = {n: Job(touch(tmp_path / f"{n}.mp4"), tmp_path / "out") for n in "abcdef"}
    out = touch(tmp_path / "out" / "a_poses.npz")
    m = Manifest(tmp_path / "out" / "manifest.jsonl")
    m.append(record(jobs["a"], "done", options, outputs=[str(out)]))  # done, outputs there: skip
    m.append(record(jobs["b"], "done", options, outputs=[str(tmp_path / "out" / "gone.npz")]))  # output deleted
    m.append(record(jobs["c"], "failed", options, error="bad"))  # failed: skipped unless retried
    m.append(record(jobs["d"], "started", options))  # interrupted: redo
    m.append(record(jobs["e"], "done", ReconstructOptions(lifter="poseformer"), outputs=[str(out)]))  # other options: redo
    with m.path.open("a") as f:
        f.write('{"input": "cut short by a cra')  # a crash mid-line is ignored
    m = Manifest(m.path)
    todo, skipped = plan(list(jobs.values()), m, options)
    assert {j.input.stem: ours for j, ours in todo} == {"b": True, "d": True, "e": True, "f": False}
    assert {o.job.input.stem: o.status for o in skipped} == {"a": "skipped", "c": "skipped-failed"}
    todo, _ = plan(list(jobs.values()), m, options, retry_failed=True)
    assert "c" in {j.input.stem for j, _ in todo}
    os.utime(jobs["a"].input, ns=(0, 0))  # the input changed
    todo, _ = plan([jobs["a"]], m, options)
    assert [j.input.stem for j, _ in todo] == ["a"]


# --- real runs (the shared detector) ------------------------------------------------------------------------------
def clips(folder: Path, n: int, frames: int = 30) -> list[Path]:
    """n short clips cut from the sample video (different stretches of the walk)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"clip{i}.mp4"
        start = (i * frames) % (165 - frames)
        subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(SAMPLE), "-vf",
                        f"select=between(n\\,{start}\\,{start + frames - 1}),setpts=N/25/TB", "-an",
                        "-frames:v", str(frames), str(path)], check=True)
        paths.append(path)
    return paths


def manifest_records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def test_the_summary_counts_every_input(tmp_path, capsys):
    from video3d.batch import BatchReport, Job, Outcome
    from video3d.cli import batch_summary

    a, b = (Job(tmp_path / name, tmp_path) for name in ("a.mp4", "b.mp4"))
    batch_summary(BatchReport([Outcome(a, "done", seconds=50.0, frames=40), Outcome(b, "failed", error="broken")],
                              60.0, 1, "process"), tmp_path)
    err = capsys.readouterr().err
    assert f"1 of 2 videos reconstructed in 60 s (1.0 videos/min); manifest: {tmp_path / 'manifest.jsonl'}" in err
    assert f"failed: {tmp_path / 'b.mp4'}: broken" in err


@pytest.mark.slow
def test_batch_records_failures_goes_on_and_a_rerun_redoes_nothing(tmp_path, detector_path):
    clips(tmp_path / "in", 2)
    touch(tmp_path / "in" / "broken.mp4", b"not a video")
    out = tmp_path / "out"
    r = invoke("batch", tmp_path / "in", "-o", out, "--detector", detector_path, "--no-video", "--jobs", 1)
    assert r.exit_code == 5, r.stderr
    assert "broken.mp4 is not a readable video" in r.stderr
    final = {Path(x["input"]).name: x for x in manifest_records(out) if x["status"] != "started"}
    assert final["broken.mp4"]["status"] == "failed" and "not a readable video" in final["broken.mp4"]["error"]
    assert final["clip0.mp4"]["status"] == final["clip1.mp4"]["status"] == "done"
    assert final["clip0.mp4"]["frames"] == 30 and final["clip0.mp4"]["fps"] > 0
    npz = out / "clip0_poses.npz"
    assert np.load(npz)["keypoints_3d"].shape == (1, 30, 17, 3)
    before = npz.stat().st_mtime_ns
    lines = len(manifest_records(out))
    r = invoke("batch", tmp_path / "in", "-o", out, "--detector", detector_path, "--no-video")
    assert r.exit_code == 5 and "done before (skipped)" in r.stderr and "failed before" in r.stderr
    assert npz.stat().st_mtime_ns == before and len(manifest_records(out)) == lines  # nothing redone


@pytest.mark.slow
def test_a_killed_batch_resumes_where_it_stopped(tmp_path, detector_path):
    clips(tmp_path / "in", 3, frames=40)
    out, tmp = tmp_path / "out", tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp)}
    cmd = [sys.executable, "-m", "video3d.cli", "batch", str(tmp_path / "in"), "-o", str(out), "--detector",
           str(detector_path), "--jobs", "1"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while not (out / "manifest.jsonl").is_file() or not any(x["status"] == "done" for x in manifest_records(out)):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert not list(out.rglob("*.tmp")), list(out.rglob("*"))  # nothing half-written
    ours = lambda: [p for p in tmp.iterdir() if p.name != "torchinductor_root"]  # torch's own compile cache
    assert not ours(), ours()  # nor temporary folders (the workers' trackers and settings)
    done = {Path(x["input"]).name for x in manifest_records(out) if x["status"] == "done"}
    assert 1 <= len(done) < 3
    stamps = {name: (out / f"{Path(name).stem}_poses.npz").stat().st_mtime_ns for name in done}
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert not ours(), ours()
    assert {name: (out / f"{Path(name).stem}_poses.npz").stat().st_mtime_ns for name in done} == stamps
    assert all((out / f"clip{i}_3d.mp4").is_file() for i in range(3))


@pytest.mark.slow
def test_the_ray_backend_runs_the_same_workers_and_writes_the_manifest(tmp_path, detector_path, monkeypatch):
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'video3d[ray]')")
    from video3d.batch import run

    videos = clips(tmp_path / "in", 2)
    import shutil
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="v3dray"))  # short: Ray's socket paths under it must fit 107 bytes
    request_cleanup = lambda: shutil.rmtree(tmp, ignore_errors=True)  # noqa: E731
    monkeypatch.setenv("TMPDIR", str(tmp))  # the actors' temporary folders (Ray starts them with this environment)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        report = run(videos + [touch(tmp_path / "in" / "bad.mp4", b"junk")], tmp_path / "out", backend="ray",
                     jobs=2, detector=str(detector_path), write_video=False)
    finally:
        ray.shutdown()
    leftovers = list(tmp.glob("video3d-*"))
    request_cleanup()
    assert not leftovers, leftovers  # the killed actors cleaned up first
    assert report.backend == "ray" and report.count("done") == 2 and report.count("failed") == 1
    final = {Path(x["input"]).name: x["status"] for x in manifest_records(tmp_path / "out") if x["status"] != "started"}
    assert final == {"clip0.mp4": "done", "clip1.mp4": "done", "bad.mp4": "failed"}
    assert np.load(tmp_path / "out" / "clip1_poses.npz")["keypoints_3d"].shape == (1, 30, 17, 3)


def test_ray_without_ray_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    touch(tmp_path / "v.mp4")
    one_line_error(invoke("batch", tmp_path / "v.mp4", "-o", tmp_path / "out", "--ray"), 2,
                   "pip install 'video3d[ray]'")
