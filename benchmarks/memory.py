"""Peak memory of `video3d reconstruct` against video length: streaming means it must not grow.

    python benchmarks/memory.py [--detector PATH] [--repeat 4]

Runs the full pipeline in a child process on the sample video and on the same video repeated N times
(N times longer), and prints each run's peak resident memory (ru_maxrss) and time per stage. Lifter
weights do not change memory: a randomly initialised GAST-Net checkpoint is used if none is shipped.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from video3d.video import VideoWriter, probe, read_frames  # noqa: E402


def repeat_video(src: Path, out: Path, times: int) -> None:
    info = probe(src)
    with VideoWriter(out, info.width, info.height, info.fps_fraction, crf=18, force=True) as w:
        for _ in range(times):
            for frame in read_frames(info):
                w.write(frame)


def run(video: Path, out: Path, detector: str, weights: Path | None) -> tuple[float, float, str]:
    cmd = [sys.executable, "-m", "video3d.cli", "reconstruct", str(video), "-o", str(out), "--force",
           "--detector", detector]
    if weights is not None:
        cmd += ["--weights", str(weights)]
    # a wrapper process per run, so that RUSAGE_CHILDREN (the largest child so far) is this run's peak alone
    wrapper = ("import resource, subprocess, sys; p = subprocess.run(sys.argv[1:]); "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(p.returncode)")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", wrapper, *cmd], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    peak_mb = int(proc.stderr.strip().splitlines()[-1]) / 1024  # Linux reports kB
    return peak_mb, seconds, proc.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--detector", default=str(ROOT.parent / "shared/weights/yolov8n-pose_int8_openvino_model"))
    parser.add_argument("--repeat", type=int, default=4)
    args = parser.parse_args()
    sample = ROOT / "samples" / "mannequin_walk.mp4"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        weights = None
        if not (ROOT / "weights" / "gastnet_27f.pt").is_file():
            from video3d.lifters import create_lifter

            weights = create_lifter("gastnet", pretrained=False, device="cpu").save(tmp / "random.pt")
        long_video = tmp / "long.mp4"
        repeat_video(sample, long_video, args.repeat)
        short_mb, short_s, _ = run(sample, tmp / "a", args.detector, weights)
        long_mb, long_s, log = run(long_video, tmp / "b", args.detector, weights)
        n_short = probe(sample).frame_count
        n_long = probe(long_video).frame_count
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print(f"{n_short:5d} frames: peak RSS {short_mb:7.0f} MB, {short_s:6.1f} s")
    print(f"{n_long:5d} frames: peak RSS {long_mb:7.0f} MB, {long_s:6.1f} s  (x{n_long / n_short:.0f} the frames, "
          f"x{long_mb / short_mb:.2f} the memory)")
    print("stage times of the long run:")
    print("\n".join(line for line in log.splitlines() if "│" in line or "frames at" in line))


if __name__ == "__main__":
    main()
