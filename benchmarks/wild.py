"""End-to-end accuracy on rendered clips with known truth: video -> YOLO 2D -> every lifter -> 3D vs the truth.

    python benchmarks/wild.py [--subjects S9 S11] [--clips 10] [--seed 0] [--seconds 4] [--clips-dir DIR]
                              [--detector PATH] [--lifters gastnet,stcformer] [--weights gastnet=runs/x/final.pt]
                              [--json OUT.json] [--device cpu]

The clips are ``benchmarks/wild_clips.py``'s (Human3.6M motion capture on a capsule mannequin, random camera,
light and clothes; S9/S11 by default, the test subjects: ``--subjects S8`` is for tuning), rendered once into
``benchmarks/.wild_cache/`` (or ``--clips-dir``). Each clip is detected once, as ``video3d reconstruct`` does
(``pipeline.detect`` with one person, the detector of ``--detector`` / $VIDEO3D_DETECTOR, by default the shared
int8 YOLOv8n-pose), and the detections are kept beside the clip (``<clip>_yolo.npz``), so a run with new
weights only lifts again. Then every lifter (the shipped weights of each, by default, and each ``--weights
NAME=PATH`` as a row of its own) lifts (a) YOLO's 2D and (b) the true 2D (the projected mocap joints, an h36m17
PoseResult as ``video3d lift`` makes from an npz of them), both through ``pipeline.lift`` with ``reconstruct``'s
defaults, and the root-relative camera-space 3D is compared with the truth.

Metrics (frames with a prediction; ``none`` is the share of frames without one):
- MPJPE and P-MPJPE (``video3d.metrics``), mm;
- scale: predicted size over true size (mean distance of the joints from the pelvis), median over frames;
- swap 2D: share of frames where YOLO's 2D (as H36M-17) is nearer the true 2D with left and right exchanged
  than as labelled, on the limb joints (hips, knees, ankles, shoulders, elbows, wrists); swap 3D: the same for
  the lifted 3D against the true 3D;
- accel: acceleration error, mm/frame^2 (25 fps), the mean over joints and frames of the error of the second
  difference.
With ``mediapipe`` installed, its 3D world landmarks join as a peer on the 12 limb joints (P-MPJPE only).

From Python: ``swap_rate``, ``swapped_frames``, ``scale_ratio``, ``acceleration_error``, ``pose_metrics`` and
``run_benchmark`` below.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.wild_clips import generate  # noqa: E402
from video3d.layouts import H36M17, coco17_to_h36m17  # noqa: E402
from video3d.metrics import procrustes_align  # noqa: E402

CACHE = ROOT / "benchmarks" / ".wild_cache"
SHARED_DETECTOR = ROOT.parent / "shared" / "weights" / "yolov8n-pose_int8_openvino_model"
LIMBS = (1, 2, 3, 4, 5, 6, 11, 12, 13, 14, 15, 16)  # H36M-17: hips, knees, ankles, shoulders, elbows, wrists
# MediaPipe BlazePose's 33 landmarks -> the H36M-17 limb joints both define (../shared/MODELS.md)
MEDIAPIPE_TO_H36M = {23: 4, 25: 5, 27: 6, 24: 1, 26: 2, 28: 3, 11: 11, 13: 12, 15: 13, 12: 14, 14: 15, 16: 16}
MEDIAPIPE_SKIP = "mediapipe: skipped (not installed: pip install mediapipe==0.10.14)"


# --------------------------------------------------------------------------------------------
# metrics (pure functions; poses (T, J, 2 or 3), NaN where missing)
# --------------------------------------------------------------------------------------------
def swapped_frames(pred: np.ndarray, truth: np.ndarray, joints=LIMBS, layout=H36M17) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: (swapped, counted). ``swapped``: the prediction is nearer the truth with its left and right
    labels exchanged than as labelled (the mean distance over ``joints`` seen in both labellings);
    ``counted``: the frame has at least one such joint."""
    pred, truth = np.asarray(pred, np.float64), np.asarray(truth, np.float64)
    joints = list(joints)
    flipped = pred[:, layout.flip_index]
    d_as = np.linalg.norm(pred[:, joints] - truth[:, joints], axis=-1)
    d_ex = np.linalg.norm(flipped[:, joints] - truth[:, joints], axis=-1)
    both = np.isfinite(d_as) & np.isfinite(d_ex)
    counted = both.any(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        e_as = np.where(both, d_as, 0.0).sum(1) / np.maximum(both.sum(1), 1)
        e_ex = np.where(both, d_ex, 0.0).sum(1) / np.maximum(both.sum(1), 1)
    return (e_ex < e_as) & counted, counted


def swap_rate(pred: np.ndarray, truth: np.ndarray, joints=LIMBS) -> float:
    """Share of the counted frames (see ``swapped_frames``) whose left and right are exchanged; NaN if none."""
    swapped, counted = swapped_frames(pred, truth, joints)
    return float(swapped.sum() / counted.sum()) if counted.any() else float("nan")


def pose_size(poses: np.ndarray) -> np.ndarray:
    """Per frame, the mean distance of the joints from the pelvis (joint 0)."""
    poses = np.asarray(poses, np.float64)
    return np.linalg.norm(poses[:, 1:] - poses[:, :1], axis=-1).mean(1)


def scale_ratio(pred: np.ndarray, truth: np.ndarray) -> float:
    """Predicted size over true size (``pose_size``), the median over the frames where both are finite."""
    r = pose_size(pred) / pose_size(truth)
    r = r[np.isfinite(r)]
    return float(np.median(r)) if len(r) else float("nan")


def acceleration_error(pred: np.ndarray, truth: np.ndarray, valid: np.ndarray | None = None) -> tuple[float, int]:
    """Mean over joints and frames of |second difference of pred - that of truth| (units per frame^2), over the
    frames t whose t-1, t, t+1 are all valid; and that number of frames."""
    pred, truth = np.asarray(pred, np.float64), np.asarray(truth, np.float64)
    ok = np.isfinite(pred).all((1, 2)) & np.isfinite(truth).all((1, 2))
    if valid is not None:
        ok &= np.asarray(valid, bool)
    if len(pred) < 3:
        return float("nan"), 0
    triple = ok[:-2] & ok[1:-1] & ok[2:]
    if not triple.any():
        return float("nan"), 0
    acc_p = pred[2:] - 2 * pred[1:-1] + pred[:-2]
    acc_t = truth[2:] - 2 * truth[1:-1] + truth[:-2]
    err = np.linalg.norm(acc_p[triple] - acc_t[triple], axis=-1)
    return float(err.mean()), int(triple.sum())


def pose_metrics(pred: np.ndarray, truth: np.ndarray, joints=None) -> dict:
    """MPJPE, P-MPJPE (mm), scale, swap 3D and acceleration error (mm/frame^2) of root-relative 3D poses
    (T, 17, 3) in metres, over the frames with a prediction; ``none``: the share of frames without one; and the
    per-frame sums for pooling over clips (``pool``). ``joints``: compare on these joints only (P-MPJPE)."""
    pred, truth = np.asarray(pred, np.float64), np.asarray(truth, np.float64)
    valid = np.isfinite(pred).all((1, 2)) & np.isfinite(truth).all((1, 2))
    n = int(valid.sum())
    out = {"frames": int(len(pred)), "valid": n, "none": float(1 - n / max(len(pred), 1))}
    if not n:
        out.update(mpjpe=float("nan"), p_mpjpe=float("nan"), p_mpjpe_limbs=float("nan"), scale=float("nan"),
                   swap_3d=float("nan"), accel=float("nan"), accel_frames=0, _pool={})
        return out
    p, t = pred[valid], truth[valid]
    e1 = np.linalg.norm(p - t, axis=-1).mean(1)
    e2 = np.linalg.norm(procrustes_align(p, t) - t, axis=-1).mean(1)
    lim = list(LIMBS)
    e2l = np.linalg.norm(procrustes_align(p[:, lim], t[:, lim]) - t[:, lim], axis=-1).mean(1)
    ratios = pose_size(p) / pose_size(t)
    swapped, counted = swapped_frames(p, t)
    acc, acc_n = acceleration_error(pred, truth, valid)
    out.update(mpjpe=1000 * float(e1.mean()), p_mpjpe=1000 * float(e2.mean()), p_mpjpe_limbs=1000 * float(e2l.mean()),
               scale=float(np.median(ratios)), swap_3d=float(swapped.sum() / max(counted.sum(), 1)),
               accel=1000 * acc if acc_n else float("nan"), accel_frames=acc_n)
    out["_pool"] = {"e1": e1, "e2": e2, "e2l": e2l, "ratios": ratios, "swapped": swapped[counted],
                    "acc_sum": 1000 * acc * acc_n if acc_n else 0.0, "acc_n": acc_n, "frames": len(pred)}
    return out


def pooled(per_clip: list[dict]) -> dict:
    """Overall metrics from ``pose_metrics`` of several clips: every valid frame counts once."""
    pools = [m["_pool"] for m in per_clip if m.get("_pool")]
    frames = sum(m["frames"] for m in per_clip)
    if not pools:
        return {"frames": frames, "valid": 0, "none": 1.0, "mpjpe": float("nan"), "p_mpjpe": float("nan"),
                "p_mpjpe_limbs": float("nan"), "scale": float("nan"), "swap_3d": float("nan"), "accel": float("nan")}
    cat = {k: np.concatenate([p[k] for p in pools]) for k in ("e1", "e2", "e2l", "ratios", "swapped")}
    acc_n = sum(p["acc_n"] for p in pools)
    valid = len(cat["e1"])
    return {"frames": frames, "valid": valid, "none": 1 - valid / max(frames, 1),
            "mpjpe": 1000 * float(cat["e1"].mean()), "p_mpjpe": 1000 * float(cat["e2"].mean()),
            "p_mpjpe_limbs": 1000 * float(cat["e2l"].mean()), "scale": float(np.median(cat["ratios"])),
            "swap_3d": float(cat["swapped"].mean()) if len(cat["swapped"]) else float("nan"),
            "accel": sum(p["acc_sum"] for p in pools) / acc_n if acc_n else float("nan")}


def public(m: dict) -> dict:
    return {k: v for k, v in m.items() if not k.startswith("_")}


# --------------------------------------------------------------------------------------------
# the pipeline on one clip
# --------------------------------------------------------------------------------------------
def true_2d_result(gt: dict):
    """The gt's true 2D as ``video3d lift`` reads an npz of them (h36m17, confidence 1)."""
    from video3d.results import PoseResult
    from video3d.sequence import PoseSequence

    kp = np.asarray(gt["keypoints_2d"], np.float32)
    size = tuple(int(v) for v in gt["frame_size"])
    seq = PoseSequence(kp, np.ones(kp.shape[:2], np.float32), float(gt["fps"]), "h36m17", track_id=0, frame_size=size)
    return PoseResult([seq], float(gt["fps"]), size, source="true 2D")


def detection_path(video: Path) -> Path:
    return video.with_name(video.stem + "_yolo.npz")


def detect_clip(video: Path, gt: dict, detector, detector_name: str, device: str):
    """YOLO's PoseResult for the clip (``pipeline.detect``, one person), from the cache beside it when it was
    made by the same detector from the same clip; None when no person was found. Also: seconds spent, cached."""
    from video3d.errors import InputError
    from video3d.pipeline import detect
    from video3d.results import load_npz

    path = detection_path(video)
    params = str(gt["params"])
    cached = _detection_cached(path, gt, detector_name)
    if cached is not None:
        return (None if cached else load_npz(path)), 0.0, True
    start = time.perf_counter()
    try:
        result = detect(video, detector=detector, persons=1, device=device)
    except InputError:  # nobody found in the whole clip
        np.savez_compressed(path, detector=detector_name, clip_params=params, no_person=True)
        return None, time.perf_counter() - start, False
    seconds = time.perf_counter() - start
    np.savez_compressed(path, **result.to_arrays(), detector=detector_name, clip_params=params, no_person=False,
                        warnings=json.dumps(result.warnings))
    return result, seconds, False


def lift_3d(result, model, device: str) -> np.ndarray:
    """``pipeline.lift`` with reconstruct's defaults; the first person's root-relative 3D (T, 17, 3), NaN
    where there is no prediction."""
    from video3d.pipeline import lift

    r = lift(result, model, device=device)
    k3 = r.keypoints_3d()[0].astype(np.float64)
    k3[~r.valid()[0]] = np.nan
    return k3


def yolo_2d_stats(result, gt: dict) -> dict:
    """YOLO's 2D against the truth: frames with a person, the 2D error on the limb joints (px and in units of
    the true 2D height of the person), the left/right swap rate."""
    from video3d.pipeline import MIN_JOINTS_PRESENT, to_h36m

    truth = np.asarray(gt["keypoints_2d"], np.float64)
    T = len(truth)
    if result is None:
        return {"detected": 0.0, "err_px": float("nan"), "err_rel": float("nan"), "swap_2d": float("nan"),
                "_swapped": np.zeros(0, bool)}
    seq = to_h36m(result.persons_2d[0])
    kp = np.asarray(seq.keypoints, np.float64)
    present = (~seq.missing).sum(1) >= MIN_JOINTS_PRESENT
    d = np.linalg.norm(kp[:, list(LIMBS)] - truth[:, list(LIMBS)], axis=-1)
    height = truth[..., 1].max(1) - truth[..., 1].min(1)
    swapped, counted = swapped_frames(kp, truth)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return {"detected": float(present.mean()) if T else 0.0, "err_px": float(np.nanmean(d)),
                "err_rel": float(np.nanmean(d / height[:, None])),
                "swap_2d": float(swapped[counted].mean()) if counted.any() else float("nan"),
                "_swapped": swapped[counted]}


def mediapipe_world(video: Path) -> np.ndarray:
    """MediaPipe BlazePose's 3D world landmarks (T, 33, 3), metres, hip-centred (x right, y down, z away), NaN
    where it found nobody (``mediapipe==0.10.14``'s ``solutions.pose``, video mode, model complexity 1)."""
    import cv2
    import mediapipe as mp

    from video3d.video import probe, read_frames

    out = []
    with mp.solutions.pose.Pose(static_image_mode=False, model_complexity=1, smooth_landmarks=True) as pose:
        for frame in read_frames(probe(video)):
            res = pose.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            if res.pose_world_landmarks is None:
                out.append(np.full((33, 3), np.nan))
            else:
                out.append(np.array([[p.x, p.y, p.z] for p in res.pose_world_landmarks.landmark]))
    return np.array(out)


def mediapipe_cached(video: Path, gt: dict) -> np.ndarray:
    """``mediapipe_world`` of the clip, kept beside it (``<clip>_mediapipe.npz``) for the same clip and version."""
    import mediapipe as mp

    path = video.with_name(video.stem + "_mediapipe.npz")
    key = f"{mp.__version__} {gt['params']}"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as d:
                if str(d["key"]) == key:
                    return d["world"]
        except Exception:
            pass
    world = mediapipe_world(video)
    np.savez_compressed(path, world=world, key=key)
    return world


def mediapipe_as_h36m(world: np.ndarray) -> np.ndarray:
    """(T, 33, 3) -> (T, 17, 3) with only the 12 shared limb joints filled (the rest NaN)."""
    out = np.full(world.shape[:1] + (17, 3), np.nan)
    for m, h in MEDIAPIPE_TO_H36M.items():
        out[:, h] = world[:, m]
    return out


# --------------------------------------------------------------------------------------------
# the benchmark
# --------------------------------------------------------------------------------------------
def lifter_rows(lifters: list[str] | None, weights: list[str]) -> list[tuple[str, str, Path]]:
    """(label, lifter name, weights path) per row: each chosen lifter's shipped weights, then the candidates."""
    from video3d.lifters import default_weights, get_spec, list_lifters

    rows = []
    names = lifters if lifters else [n for n in list_lifters() if default_weights(n).is_file()]
    for name in names:
        get_spec(name)
        path = default_weights(name)
        if path.is_file():
            rows.append((f"{name} ({path.name})", name, path))
        elif lifters:
            raise SystemExit(f"{name}: no shipped weights at {path} (pass --weights {name}=PATH)")
    for item in weights:
        if "=" not in item:
            raise SystemExit(f"--weights takes NAME=PATH, not {item!r}")
        name, path = item.split("=", 1)
        get_spec(name)
        if not Path(path).is_file():
            raise SystemExit(f"--weights {item}: no such file")
        rows.append((f"{name} ({path})", name, Path(path)))
    return rows


def run_benchmark(subjects=("S9", "S11"), clips: int = 10, seed: int = 0, seconds: float = 4.0, clips_dir=CACHE,
                  detector: str | None = None, lifters: list[str] | None = None, weights: list[str] = (),
                  device: str = "auto", verbose: bool = True) -> dict:
    """Render (or reuse) the clips, detect (or reuse), lift with every row's lifter; returns the report (dict)."""
    from video3d.detector import PoseDetector
    from video3d.lifters import create_lifter

    say = print if verbose else (lambda *a, **k: None)
    detector = detector or os.environ.get("VIDEO3D_DETECTOR") or str(SHARED_DETECTOR)
    rows = lifter_rows(lifters, list(weights))
    timings = {"render": 0.0, "detect": 0.0, "lift": 0.0, "mediapipe": 0.0}

    start = time.perf_counter()
    pairs = generate(list(subjects), clips, seconds, seed, clips_dir, verbose=verbose)
    timings["render"] = time.perf_counter() - start
    gts = []
    for _, g in pairs:
        with np.load(g) as d:
            gts.append({k: d[k] for k in d.files})

    detections = []
    cached = 0
    det = None
    try:
        for (video, _), gt in zip(pairs, gts):
            path = detection_path(video)
            if det is None and _detection_cached(path, gt, detector) is None:
                det = PoseDetector(detector, device="cpu" if device == "auto" else device, fps=float(gt["fps"]))
            result, secs, hit = detect_clip(video, gt, det, detector, device)
            detections.append(result)
            timings["detect"] += secs
            cached += hit
    finally:
        if det is not None:
            det.close()
    say(f"detection: {len(pairs) - cached} clips detected, {cached} from the cache ({timings['detect']:.1f} s)")

    report = {"subjects": list(subjects), "clips": clips, "seed": seed, "seconds": seconds, "detector": detector,
              "device": device, "rows": [label for label, _, _ in rows], "per_clip": [], "overall": {}}
    yolo2d = [yolo_2d_stats(r, gt) for r, gt in zip(detections, gts)]
    per_row = {label: {"yolo": [], "true": [], "pred": []} for label, _, _ in rows}
    for label, name, path in rows:
        t0 = time.perf_counter()
        model = create_lifter(name, weights=path, device=device)
        for result, gt in zip(detections, gts):
            truth = gt["keypoints_3d"].astype(np.float64)
            if result is None:
                pred = np.full_like(truth, np.nan)
            else:
                pred = lift_3d(result, model, device)
            per_row[label]["yolo"].append(pose_metrics(pred, truth))
            per_row[label]["pred"].append(pred)
            per_row[label]["true"].append(pose_metrics(lift_3d(true_2d_result(gt), model, device), truth))
        timings["lift"] += time.perf_counter() - t0
        say(f"lifted with {label} ({time.perf_counter() - t0:.1f} s)")

    mediapipe = None
    try:
        import mediapipe  # noqa: F401
        have_mp = True
    except ImportError:
        have_mp = False
    if have_mp:
        t0 = time.perf_counter()
        mp_metrics = []
        same_frames = {label: [0.0, 0] for label in per_row}
        for (video, _), gt in zip(pairs, gts):
            truth = gt["keypoints_3d"].astype(np.float64)
            pred = mediapipe_as_h36m(mediapipe_cached(video, gt))
            lim = list(LIMBS)
            ok = np.isfinite(pred[:, lim]).all((1, 2))
            e = np.full(len(truth), np.nan)
            if ok.any():
                p, t = pred[ok][:, lim], truth[ok][:, lim]
                e[ok] = 1000 * np.linalg.norm(procrustes_align(p, t) - t, axis=-1).mean(1)
            mp_metrics.append(e)
            for label in per_row:  # each lifter on the same joints and the same frames (YOLO 2D)
                p = per_row[label]["pred"][len(mp_metrics) - 1]
                both = ok & np.isfinite(p[:, lim]).all((1, 2))
                if both.any():
                    t_ = truth[both][:, lim]
                    err = 1000 * np.linalg.norm(procrustes_align(p[both][:, lim], t_) - t_, axis=-1).mean(1)
                    same_frames[label][0] += float(err.sum())
                    same_frames[label][1] += int(both.sum())
        timings["mediapipe"] = time.perf_counter() - t0
        allv = np.concatenate(mp_metrics)
        mediapipe = {"p_mpjpe_limbs": float(np.nanmean(allv)) if np.isfinite(allv).any() else float("nan"),
                     "none": float(np.isnan(allv).mean()),
                     "per_clip": [float(np.nanmean(e)) if np.isfinite(e).any() else float("nan") for e in mp_metrics],
                     "lifters_same_frames": {label: (s_ / n_ if n_ else float("nan")) for label, (s_, n_) in same_frames.items()}}

    for i, ((video, gtp), gt) in enumerate(zip(pairs, gts)):
        params = json.loads(str(gt["params"]))
        entry = {"clip": video.stem, "video": str(video), "gt": str(gtp), "subject": str(gt["subject"]),
                 "action": str(gt["action"]), "start_frame": int(gt["start_frame"]),
                 "camera": {k: params[k] for k in ("azimuth", "elevation", "roll", "focal", "width", "height",
                                                   "distance", "height_fraction", "supersample")},
                 "wall": params["look"]["wall_distance"] is not None,
                 "render_seconds": float(gt["render_seconds"]),
                 "yolo_2d": public(yolo2d[i]), "lifters": {}}
        for label in per_row:
            entry["lifters"][label] = {"yolo": public(per_row[label]["yolo"][i]),
                                       "true": public(per_row[label]["true"][i])}
        if mediapipe is not None:
            entry["mediapipe_p_mpjpe_limbs"] = mediapipe["per_clip"][i]
        report["per_clip"].append(entry)
    sw = np.concatenate([y["_swapped"] for y in yolo2d]) if yolo2d else np.zeros(0, bool)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        report["yolo_2d"] = {"detected": float(np.mean([y["detected"] for y in yolo2d])),
                             "err_px": float(np.nanmean([y["err_px"] for y in yolo2d])),
                             "err_rel": float(np.nanmean([y["err_rel"] for y in yolo2d])),
                             "swap_2d": float(sw.mean()) if len(sw) else float("nan")}
    for label in per_row:
        report["overall"][label] = {"yolo": pooled(per_row[label]["yolo"]), "true": pooled(per_row[label]["true"])}
    report["mediapipe"] = mediapipe if mediapipe is not None else "skipped (not installed)"
    report["timings"] = timings
    return report


def _detection_cached(path: Path, gt: dict, detector: str) -> bool | None:
    """Whether the cache beside a clip holds this detector's detections of this very clip: None if not, else
    whether it found nobody."""
    if not path.is_file():
        return None
    try:
        with np.load(path) as d:
            if str(d["detector"]) == detector and str(d["clip_params"]) == str(gt["params"]):
                return bool(d["no_person"]) if "no_person" in d.files else False
    except Exception:
        pass
    return None


def _f(v: float, fmt: str = "{:.1f}") -> str:
    return "-" if v is None or not np.isfinite(v) else fmt.format(v)


def print_report(report: dict) -> None:
    rows = report["rows"]
    print()
    print(f"Clips: {len(report['per_clip'])} of {', '.join(report['subjects'])}, seed {report['seed']}, "
          f"{report['seconds']:g} s each; detector {Path(report['detector']).name}")
    for c in report["per_clip"]:
        cam = c["camera"]
        y = c["yolo_2d"]
        parts = [f"{lab.split(' ')[0]} {_f(c['lifters'][lab]['yolo']['mpjpe'], '{:.0f}')}/"
                 f"{_f(c['lifters'][lab]['true']['mpjpe'], '{:.0f}')}" for lab in rows]
        print(f"  {c['clip']:<40} az {cam['azimuth']:+5.0f} el {cam['elevation']:4.1f} f {cam['focal']:5.0f} "
              f"{cam['width']}x{cam['height']} h {cam['height_fraction']:.0%} | YOLO seen {y['detected']:.0%} "
              f"2D err {_f(y['err_px'])} px swap {_f(y['swap_2d'], '{:.0%}')} | MPJPE yolo/true: {', '.join(parts)}")
    y = report["yolo_2d"]
    print(f"YOLO 2D: person seen in {y['detected']:.1%} of frames, limb-joint error {y['err_px']:.1f} px "
          f"({y['err_rel']:.1%} of the person's height), left/right swapped in {_f(y['swap_2d'], '{:.1%}')} of frames")
    print()
    w = max(len(r) for r in rows + ["lifter (weights)"])
    head1 = f"{'':<{w}} | {'YOLO 2D':^50} | {'true 2D':^30}"
    head2 = (f"{'lifter (weights)':<{w}} | {'MPJPE':>6} {'P-MPJPE':>7} {'scale':>5} {'swap2D':>6} {'swap3D':>6} "
             f"{'accel':>5} {'none':>5} | {'MPJPE':>6} {'P-MPJPE':>7} {'scale':>5} {'accel':>5}")
    print(head1)
    print(head2)
    print("-" * len(head2))
    for label in rows:
        a, b = report["overall"][label]["yolo"], report["overall"][label]["true"]
        print(f"{label:<{w}} | {_f(a['mpjpe']):>6} {_f(a['p_mpjpe']):>7} {_f(a['scale'], '{:.2f}'):>5} "
              f"{_f(y['swap_2d'], '{:.1%}'):>6} {_f(a['swap_3d'], '{:.1%}'):>6} {_f(a['accel']):>5} "
              f"{_f(a['none'], '{:.0%}'):>5} | {_f(b['mpjpe']):>6} {_f(b['p_mpjpe']):>7} "
              f"{_f(b['scale'], '{:.2f}'):>5} {_f(b['accel']):>5}")
    print("(mm; scale = predicted / true size; swap = share of frames with left and right exchanged; accel in "
          "mm/frame^2 at 25 fps; none = frames without a prediction)")
    mp = report["mediapipe"]
    if isinstance(mp, dict):
        print(f"mediapipe (12 limb joints): P-MPJPE {_f(mp['p_mpjpe_limbs'])} mm, no pose in {mp['none']:.0%} of "
              f"frames; the lifters on the same joints and frames (YOLO 2D): "
              + ", ".join(f"{lab} {_f(mp['lifters_same_frames'][lab])}" for lab in rows))
    else:
        print(MEDIAPIPE_SKIP)
    t = report["timings"]
    print(f"time: render {t['render']:.1f} s, detect {t['detect']:.1f} s, lift {t['lift']:.1f} s"
          + (f", mediapipe {t['mediapipe']:.1f} s" if t.get("mediapipe") else ""))


def _clean(x):
    """JSON: NaN -> None, numpy -> python."""
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return float(x) if np.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subjects", nargs="+", default=["S9", "S11"])
    ap.add_argument("--clips", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--clips-dir", type=Path, default=CACHE)
    ap.add_argument("--detector", default=None, help="YOLO pose model (default: $VIDEO3D_DETECTOR, else the "
                                                     "shared int8 YOLOv8n-pose)")
    ap.add_argument("--lifters", default=None, help="comma-separated (default: every lifter with shipped weights)")
    ap.add_argument("--weights", action="append", default=[], metavar="NAME=PATH",
                    help="a candidate checkpoint for a lifter, a row of its own (repeatable)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    lifters = [s.strip() for s in args.lifters.split(",") if s.strip()] if args.lifters else None
    start = time.perf_counter()
    report = run_benchmark(args.subjects, args.clips, args.seed, args.seconds, args.clips_dir, args.detector,
                           lifters, args.weights, args.device)
    report["timings"]["total"] = time.perf_counter() - start
    print_report(report)
    print(f"total {report['timings']['total']:.1f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(_clean(report), indent=1) + "\n")
        print(args.json)


if __name__ == "__main__":
    main()
