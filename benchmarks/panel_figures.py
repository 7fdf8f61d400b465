"""What a user sees in the 3D panel, in figures: is it grounded, life-size and does it read like the video?

    python benchmarks/panel_figures.py RESULT_poses.npz [...] [--azimuth -60] [--elevation 15]

Reads the npz files ``video3d reconstruct`` wrote (its ``keypoints_3d_world`` is what the 3D panel draws) and
prints, per person (issue 28's measures):

- foot height: the lower ankle above the panel's floor, median and 95th percentile (cm), and the share of
  frames with it more than 12 cm up (floating, unless the person jumps);
- foot sliding: ``metrics.foot_sliding`` (m/s of an ankle within 5 cm of the floor over consecutive frames);
- bones: thigh, shin, upper arm, forearm (mean of both sides, m) against Human3.6M's median lengths
  (``world.H36M_BONES``), the sum of all bones, and the head top's median height;
- left/right: the share of frames where the two panels put the person's left side on the same side of the
  right side (the shoulders and hips, left minus right, along the image's x and along the 3D panel's x through
  ``render.SideBySideRenderer.project`` at the given view), with the 2D labels as the panel draws them
  (``labels_swapped`` applied, where the npz has it). Frames where the person is near profile in the
  video (the 2D shoulders and hips less than 15 % of the torso's length apart) are left out: there the sides
  are not told apart by position in either panel.

Old results (an earlier version's npz) can be read too: pass the view that version drew with (``--azimuth 45``
before the camera-side default), so the figures say what its panel showed.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from video3d.layouts import get_layout  # noqa: E402
from video3d.metrics import foot_sliding  # noqa: E402
from video3d.repair import exchange_labels  # noqa: E402
from video3d.render import VIEW_AZIMUTH, VIEW_ELEVATION, Scene3D, SideBySideRenderer  # noqa: E402
from video3d.world import H36M_BONES  # noqa: E402

H36M = get_layout("h36m17")
BONES = {"thigh": ("right_knee", "left_knee"), "shin": ("right_ankle", "left_ankle"),
         "upper arm": ("right_elbow", "left_elbow"), "forearm": ("right_wrist", "left_wrist")}  # the bone's child
SIDES = (("left_shoulder", "right_shoulder"), ("left_hip", "right_hip"))
FLOATING = 0.12  # m


def side_sign(points: np.ndarray, names, x_axis: int = 0) -> np.ndarray:
    """Sign of (left - right) along x, summed over the shoulder and hip pairs: (..., J, >=2) -> (...)."""
    return sum(points[..., names.index(l), x_axis] - points[..., names.index(r), x_axis] for l, r in SIDES)


def person_figures(world: np.ndarray, kp2d: np.ndarray, layout_2d: str, renderer: SideBySideRenderer,
                   floor: float, fps: float) -> dict:
    """world (T, 17, 3) metres, z up; kp2d (T, J, 2) pixels."""
    valid = np.isfinite(world[:, 0, 0])
    w = world[valid]
    ankles = np.fmin(w[:, H36M.index("right_ankle"), 2], w[:, H36M.index("left_ankle"), 2]) - floor
    ankles = ankles[np.isfinite(ankles)]
    grounded = w.copy()
    grounded[..., 2] -= floor
    sliding = foot_sliding(grounded, fps)[0] if len(w) > 1 else float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        parents = [max(q, 0) for q in H36M.parents]
        lengths = np.nanmedian(np.linalg.norm(w - w[:, parents], axis=-1), axis=0)  # (17,) per bone, seen frames
    bones = {k: float(np.nanmean([lengths[H36M.index(j)] for j in v])) for k, v in BONES.items()}
    head = w[:, H36M.index("head"), 2] - floor
    # left/right agreement between the panels
    layout = get_layout(layout_2d)
    names2d = list(layout.joints)
    frames = np.flatnonzero(valid)
    s2d = side_sign(kp2d[frames], names2d)
    torso = np.linalg.norm(kp2d[frames, names2d.index("left_shoulder")] - kp2d[frames, names2d.index("left_hip")],
                           axis=-1)
    uv = np.stack([renderer.project(world[t], t)[0] for t in frames]) if len(frames) else np.zeros((0, 17, 2))
    s3d = side_sign(uv, list(H36M.joints))
    frontal = np.isfinite(s2d) & np.isfinite(s3d) & (np.abs(s2d) / 2 > 0.15 * torso)
    agree = float(np.mean(np.sign(s2d[frontal]) == np.sign(s3d[frontal]))) if frontal.any() else float("nan")
    return {"frames": int(valid.sum()), "foot_med": float(np.median(ankles)) if len(ankles) else float("nan"),
            "foot_p95": float(np.percentile(ankles, 95)) if len(ankles) else float("nan"),
            "floating": float(np.mean(ankles > FLOATING)) if len(ankles) else float("nan"), "sliding": sliding,
            "bones": bones, "bone_sum": float(np.nansum(lengths)),
            "head": float(np.nanmedian(head)), "lr_agree": agree, "lr_frames": int(frontal.sum())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("results", nargs="+", type=Path, help="npz files written by video3d reconstruct")
    ap.add_argument("--azimuth", type=float, default=VIEW_AZIMUTH, help="the 3D panel's view (render --azimuth)")
    ap.add_argument("--elevation", type=float, default=VIEW_ELEVATION)
    args = ap.parse_args()
    print(f"view: azimuth {args.azimuth:g}, elevation {args.elevation:g}; Human3.6M: "
          + ", ".join(f"{k} {np.mean([H36M_BONES[H36M.index(j)] for j in v]):.3f} m" for k, v in BONES.items())
          + f", bones summed {H36M_BONES.sum():.2f} m")
    print("file | id | frames | foot height med / p95 cm | > 12 cm | sliding m/s | thigh / shin / upper arm / "
          "forearm m | bones summed m | head top m | left/right agree (frames)")
    for path in args.results:
        with np.load(path) as z:  # our own outputs: plain arrays, no pickles
            if "keypoints_3d_world" not in z.files:
                sys.exit(f"{path}: no keypoints_3d_world (reconstruct with the trajectory/world placement)")
            world = z["keypoints_3d_world"].astype(np.float64)
            kp2d = z["keypoints_2d"][..., :2].astype(np.float64)
            layout_2d, ids = str(z["layout_2d"]), [int(i) for i in z["track_ids"]]
            size, fps = tuple(int(v) for v in z["frame_size"]), float(z["fps"])
            if "labels_swapped" in z.files:  # the 2D panel draws the labels as lifted
                kp2d = np.stack([exchange_labels(k, w, layout_2d) for k, w in zip(kp2d, z["labels_swapped"])])
            if "joints_seen" in z.files:  # the 3D panel draws only the joints seen
                world[~z["joints_seen"]] = np.nan
        scene = Scene3D(world, ids)
        renderer = SideBySideRenderer(size, kp2d, layout_2d, scene, args.azimuth, args.elevation, fps=fps)
        for p, tid in enumerate(ids):
            f = person_figures(world[p], kp2d[p], layout_2d, renderer, scene.floor, fps)
            b = f["bones"]
            print(f"{path.name} | {tid} | {f['frames']} | {100 * f['foot_med']:.1f} / {100 * f['foot_p95']:.1f} | "
                  f"{100 * f['floating']:.0f} % | {f['sliding']:.2f} | {b['thigh']:.3f} / {b['shin']:.3f} / "
                  f"{b['upper arm']:.3f} / {b['forearm']:.3f} | {f['bone_sum']:.2f} | {f['head']:.2f} | "
                  f"{100 * f['lr_agree']:.0f} % ({f['lr_frames']})")


if __name__ == "__main__":
    main()
