"""Rendering speed: side-by-side frames for 720p input, drawing and encoding, OpenCV vs matplotlib.

    python benchmarks/render_speed.py [--frames 150] [--video PATH]

Makes a 1280x720 input (from the sample video, scaled up) with two people's 2D and 3D poses, then times
1. decode only, 2. video3d's full `pipeline.render` (decode + draw + encode + audio-less mux),
3. drawing only (OpenCV), 4. a matplotlib 3D panel of the same skeletons (Agg, reusing one figure),
all in one run, so the ratios are comparable even on a busy machine. Prints frames per second.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from video3d import pipeline  # noqa: E402
from video3d.render import Scene3D, SideBySideRenderer  # noqa: E402
from video3d.results import PoseResult  # noqa: E402
from video3d.sequence import PoseSequence  # noqa: E402
from video3d.world import to_world  # noqa: E402
from video3d.video import VideoWriter, probe, read_frames  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def make_input(path: Path, frames: int) -> None:
    import cv2

    src = probe(ROOT / "samples" / "mannequin_walk.mp4")
    with VideoWriter(path, 1280, 720, src.fps_fraction, crf=18, force=True) as w:
        n = 0
        while n < frames:
            for f in read_frames(src):
                w.write(cv2.resize(f, (1280, 720)))
                n += 1
                if n == frames:
                    break


def fake_result(T: int) -> PoseResult:
    gt = np.load(ROOT / "samples" / "mannequin_walk_gt.npz")
    k3 = gt["keypoints_3d"]
    k2 = gt["keypoints_2d"] * 2.0  # 640x480 -> roughly 1280x720 placement
    idx = np.arange(T) % len(k3)
    persons2d, persons3d = [], []
    for p, shift in enumerate((0.0, 300.0)):
        kp2 = np.zeros((T, 17, 2), np.float32)
        kp2[:, :, 0] = k2[idx][:, [9, 11, 14, 12, 15, 13, 16, 11, 14, 12, 15, 13, 16, 4, 1, 6, 3], 0] + shift
        kp2[:, :, 1] = k2[idx][:, [9, 9, 9, 9, 9, 11, 14, 12, 15, 13, 16, 4, 1, 5, 2, 6, 3], 1]
        persons2d.append(PoseSequence(kp2, np.ones((T, 17), np.float32), 25.0, "coco17", p + 1, (1280, 720)))
        persons3d.append(PoseSequence(k3[idx], np.ones((T, 17), np.float32), 25.0, "h36m17", p + 1))
    r = PoseResult(persons2d, 25.0, (1280, 720), persons_3d=persons3d)
    return r


def world_scene(result: PoseResult) -> Scene3D:
    roots = np.zeros((result.num_persons, result.num_frames, 3))
    roots[:, :, 0] = np.arange(result.num_persons)[:, None] * 1.5  # side by side, 4 m from the camera
    roots[:, :, 2] = 4.0
    return Scene3D(to_world(result.keypoints_3d(), roots).poses, list(result.track_ids))


def matplotlib_panel_fps(result: PoseResult, T: int, size: int = 720) -> float:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scene = world_scene(result)
    from video3d.layouts import H36M17

    fig = plt.figure(figsize=(size / 100, size / 100), dpi=100)
    ax = fig.add_subplot(111, projection="3d")
    ax.view_init(elev=15, azim=45)
    lines = [[ax.plot([], [], [], lw=3)[0] for _ in H36M17.edges] for _ in range(len(scene.poses))]
    finite = scene.poses[np.isfinite(scene.poses).all(-1)]
    lo, hi = finite.min(0), finite.max(0)
    ax.set_xlim(lo[0], hi[0]); ax.set_ylim(lo[1], hi[1]); ax.set_zlim(0, hi[2])  # noqa: E702
    start = time.perf_counter()
    for t in range(T):
        for p, pose in enumerate(scene.poses[:, t]):
            for line, (a, b) in zip(lines[p], H36M17.edges):
                line.set_data_3d([pose[a, 0], pose[b, 0]], [pose[a, 1], pose[b, 1]], [pose[a, 2], pose[b, 2]])
        fig.canvas.draw()
        np.asarray(fig.canvas.buffer_rgba())
    plt.close(fig)
    return T / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--video", type=Path, help="a 720p video to use instead of the generated one")
    args = parser.parse_args()
    T = args.frames
    with tempfile.TemporaryDirectory() as tmp:
        video = args.video or Path(tmp) / "in720.mp4"
        if args.video is None:
            make_input(video, T)
        info = probe(video)
        result = fake_result(T)
        print(f"input {info.width}x{info.height}, {T} frames, 2 people; {os.cpu_count()} CPUs; "
              f"load average {os.getloadavg()[0]:.1f}")

        start = time.perf_counter()
        n = sum(1 for _ in read_frames(info))
        decode = n / (time.perf_counter() - start)

        result = pipeline.place(result)  # render draws the people placed in the world (not timed)
        start = time.perf_counter()
        pipeline.render(video, result, Path(tmp) / "out.mp4", force=True)
        full = T / (time.perf_counter() - start)

        scene = world_scene(result)
        renderer = SideBySideRenderer(info.frame_size, result.keypoints_2d()[..., :2], "coco17", scene)
        frame = next(iter(read_frames(info)))
        start = time.perf_counter()
        for t in range(T):
            renderer.render(frame, t)
        draw = T / (time.perf_counter() - start)
        start = time.perf_counter()
        for t in range(T):
            renderer.render_3d(t)
        panel = T / (time.perf_counter() - start)
        mpl = matplotlib_panel_fps(result, min(T, 60))

    print(f"decode only                         {decode:7.1f} frames/s")
    print(f"video3d render (decode+draw+encode) {full:7.1f} frames/s   <- the figure that must reach 25")
    print(f"draw both panels (OpenCV)           {draw:7.1f} frames/s")
    print(f"3D panel only, OpenCV               {panel:7.1f} frames/s")
    print(f"3D panel only, matplotlib (Agg)     {mpl:7.1f} frames/s   ({panel / mpl:.0f}x slower than OpenCV)")


if __name__ == "__main__":
    main()
