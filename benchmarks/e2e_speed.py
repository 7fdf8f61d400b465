"""How fast is ``video3d reconstruct`` end to end on 720p, stage by stage, and what bounds it?

    python benchmarks/e2e_speed.py [--detector PATH] [--presets veryfast,superfast,ultrafast] [--loops 1]

Makes a 1280x720, 25 fps clip with audio from the sample video (scaled 1.5x and centred, played ``--loops``
times: 165 frames each, whose 3D truth is known), then, in one run so that the ratios compare:
1. each stage in this process (detect, lift, place, render with each x264 preset of ``--presets``): wall
   frames/s and CPU seconds per frame (this process and its ffmpeg children, user + system);
2. the command a user types, ``video3d reconstruct`` in a fresh process (model loading included), with the
   video and with ``--no-video``: end-to-end frames/s;
3. P-MPJPE of the reconstruction against the clip's truth, per preset (the preset changes only the video);
4. the ceiling: the frames/s the summed CPU seconds per frame allow on this machine's cores, if every core
   were busy all the time; and the start-up (imports, model loading, the detector's first frame), the part
   of the command's time that does not grow with the video.
The in-process stages run after a warm-up detection of 10 frames, so their figures are per-frame costs.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from video3d import pipeline  # noqa: E402
from video3d.detector import PoseDetector  # noqa: E402
from video3d.lifters import create_lifter  # noqa: E402
from video3d.metrics import p_mpjpe  # noqa: E402
from video3d.video import ffmpeg_exe  # noqa: E402


def make_clip(path: Path, loops: int = 1) -> None:
    """The sample at 1.5x (960x720), centred in 1280x720, with a 440 Hz tone as its audio track."""
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-stream_loop", str(loops - 1),
                    "-i", str(ROOT / "samples" / "mannequin_walk.mp4"),
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
                    "-vf", "scale=960:720,pad=1280:720:160:0", "-c:v", "libx264", "-crf", "18", "-preset", "fast",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", "-map", "0:v", "-map", "1:a", str(path)],
                   check=True)


def cpu_seconds() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


class Clock:
    def __init__(self):
        self.rows: list[tuple[str, float, float, int]] = []

    def run(self, name: str, frames: int, fn, *args, **kwargs):
        wall, cpu = time.perf_counter(), cpu_seconds()
        out = fn(*args, **kwargs)
        self.rows.append((name, time.perf_counter() - wall, cpu_seconds() - cpu, frames))
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--detector", default=os.environ.get(
        "VIDEO3D_DETECTOR", str(ROOT.parent / "shared/weights/yolov8n-pose_int8_openvino_model")))
    parser.add_argument("--presets", default="veryfast,superfast,ultrafast")
    parser.add_argument("--loops", type=int, default=1, help="play the 165-frame sample this many times")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    truth = np.tile(np.load(ROOT / "samples" / "mannequin_walk_gt.npz")["keypoints_3d"], (args.loops, 1, 1))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clip = tmp / "walk720.mp4"
        make_clip(clip, args.loops)
        T = len(truth)
        clock = Clock()
        lifter = create_lifter("gastnet")
        warm = tmp / "warm.mp4"
        subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(clip), "-frames:v", "10", str(warm)], check=True)
        detector = PoseDetector(args.detector, device="cpu")
        pipeline.detect(warm, detector=detector, min_track_frames=1)  # imports, model compile, first frame
        result = clock.run("detect", T, pipeline.detect, clip, detector=detector)
        result = clock.run("lift", T, pipeline.lift, result, lifter)
        result = clock.run("place", T, pipeline.place, result, trajectory=True)
        valid = result.valid()[0]
        error = 1000 * p_mpjpe(result.keypoints_3d()[0][valid], truth[valid])
        sizes = {}
        for preset in args.presets.split(","):
            out = tmp / f"{preset}.mp4"
            clock.run(f"render ({preset})", T, pipeline.render, clip, result, out, preset=preset)
            sizes[preset] = out.stat().st_size / 1e6
        e2e, seconds = {}, {}
        for flag in ([], ["--no-video"]):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "video3d.cli", "reconstruct", str(clip), "-o", str(tmp / "cli"),
                            "--detector", args.detector, "--force", *flag], check=True, capture_output=True)
            key = "without video" if flag else "with video"
            seconds[key] = time.perf_counter() - start
            e2e[key] = T / seconds[key]
    stage_seconds = {name: wall for name, wall, _, _ in clock.rows}
    in_process = stage_seconds["detect"] + stage_seconds["lift"] + stage_seconds["place"]
    print(f"1280x720 25 fps, {T} frames, {cores} cores, detector {Path(args.detector).name}, lifter gastnet 27f")
    print(f"{'stage':24s} {'seconds':>8s} {'frames/s':>9s} {'CPU s/frame':>12s}")
    for name, wall, cpu, n in clock.rows:
        print(f"{name:24s} {wall:8.2f} {n / wall:9.1f} {cpu / n:12.4f}")
    base = {name: cpu / n for name, _, cpu, n in clock.rows}
    common = base["detect"] + base["lift"] + base["place"]
    print("ceiling (all cores busy all the time), frames/s:")
    for preset in args.presets.split(","):
        total = common + base[f"render ({preset})"]
        print(f"  {preset:10s} CPU {total:.4f} s/frame -> {cores / total:.1f} frames/s; output {sizes[preset]:.1f} MB")
    print(f"  keypoints only: CPU {common:.4f} s/frame -> {cores / common:.1f} frames/s")
    for name, fps in e2e.items():
        stages = in_process + (stage_seconds["render (veryfast)"] if name == "with video" else 0.0)
        print(f"video3d reconstruct, {name}: {fps:.1f} frames/s end to end ({seconds[name]:.1f} s, of which about "
              f"{seconds[name] - stages:.1f} s start-up: imports, models, first frame)")
    print(f"P-MPJPE against the clip's truth: {error:.1f} mm over the {valid.sum()} frames of the main track")


if __name__ == "__main__":
    main()
