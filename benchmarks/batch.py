"""Many short videos: ``video3d batch`` (1 and 2 workers, and on a local Ray) vs a shell loop of ``reconstruct``.

    python benchmarks/batch.py [--clips 8] [--frames 40] [--detector PATH] [--no-ray]

Cuts ``--clips`` clips of ``--frames`` frames from the sample video, then runs them, in one run so that the
ratios compare: a shell loop (one ``video3d reconstruct`` process per clip: models loaded every time),
``video3d batch --jobs 1`` (one worker with every core), ``--jobs 2`` (two workers of half the cores each),
and ``batch --ray`` on a local Ray instance (its start-up included). Prints seconds and videos per minute.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from video3d.video import ffmpeg_exe  # noqa: E402


def make_clips(folder: Path, n: int, frames: int) -> list[Path]:
    folder.mkdir(parents=True)
    out = []
    for i in range(n):
        start = (i * 17) % (165 - frames)
        path = folder / f"clip{i}.mp4"
        subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(ROOT / "samples" / "mannequin_walk.mp4"),
                        "-vf", f"select=between(n\\,{start}\\,{start + frames - 1}),setpts=N/25/TB", "-an",
                        "-frames:v", str(frames), str(path)], check=True)
        out.append(path)
    return out


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--detector", default=os.environ.get(
        "VIDEO3D_DETECTOR", str(ROOT.parent / "shared/weights/yolov8n-pose_int8_openvino_model")))
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args()
    exe = [sys.executable, "-m", "video3d.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clips = make_clips(tmp / "in", args.clips, args.frames)
        common = ["--detector", args.detector]
        runs: dict[str, float] = {}
        runs["shell loop of reconstruct"] = sum(
            timed([*exe, "reconstruct", str(c), "-o", str(tmp / "loop"), *common]) for c in clips)
        for jobs in (1, 2):
            runs[f"batch --jobs {jobs}"] = timed([*exe, "batch", str(tmp / "in"), "-o", str(tmp / f"j{jobs}"),
                                                  "--jobs", str(jobs), *common])
        if not args.no_ray:
            try:
                import ray  # noqa: F401

                runs["batch --ray (local, 2 CPUs)"] = timed([*exe, "batch", str(tmp / "in"), "-o", str(tmp / "ray"),
                                                             "--ray", "--jobs", "2", *common])
            except ImportError:
                print("(Ray is not installed: pip install 'video3d[ray]')")
        shutil.rmtree(tmp / "in")
    print(f"{args.clips} clips of {args.frames} frames (640x480, 25 fps), {os.cpu_count()} cores, full output "
          f"(npz + rendered video)")
    print(f"{'run':32s} {'seconds':>8s} {'videos/min':>11s}")
    for name, seconds in runs.items():
        print(f"{name:32s} {seconds:8.1f} {60 * args.clips / seconds:11.1f}")


if __name__ == "__main__":
    main()
