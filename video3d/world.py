"""A world frame for display and export: people upright on a floor, optionally moving through space.

The lifters give root-relative poses in camera axes. To show and export them in a room-like frame:
- up: estimated from the sequence, as the median direction from the ankles' midpoint to the thorax
  over all frames of all people (people stand and walk far more than they lie down); the camera's
  tilt then no longer leans everyone back or forward, unlike GAST-Net's fixed Human3.6M rotation;
- axes: z up, x the camera's right made horizontal, y = z x x (away from the camera), metres;
- trajectory (approximate, optional): each person's root per frame from their 2D keypoints and 3D pose
  through a pinhole camera of assumed focal length (the video does not tell it), solved by least squares
  and smoothed; only its horizontal part is used (the root's height from one camera is unreliable, e.g.
  when the feet leave the frame), so jumps of the whole body are not shown. Without it each person stays at
  their median position, so people keep their places relative to each other but do not travel;
- ground (``rebase``): 'ground' puts the supporting foot on z = 0 in every frame, keeping a short airborne
  phase (a jump) as one (``ground_heights``); 'sequence' puts each person's feet on z = 0 using their lowest
  ankle over the video (a low percentile, robust to a bad frame), one height for the whole video, so a
  crouching person's feet leave the floor; 'frame' puts the lowest joint of every frame on z = 0; 'none'
  leaves heights as estimated (the origin at the group's mean root height);
- stance feet (with a trajectory and 'ground'): a foot on the floor in two consecutive frames does not slide;
  the person is moved horizontally by what it would have slid (``lock_stance_feet``), and that correction
  fades back to the estimated trajectory (time constant ``LOCK_FADE_S``), so the path stays the video's;
- horizontally, the origin is the group's mean root position over the video;
- size (``rigid``): each person on a skeleton of constant bone lengths, their own proportions at the size of an
  average Human3.6M adult (the lifters' 3D is smaller than life, and one camera cannot tell true size).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .geometry import solve_translation
from .skeleton import bone_lengths, fit as fit_skeleton
from .smoothing import savgol

REBASE = ("ground", "sequence", "frame", "none")
CONTACT_TOLERANCE = 0.03  # m: a foot this close to its lowest height nearby is on the floor
AIRBORNE_MAX_S = 0.4  # s: longer stretches without a foot down are not a jump (a crouch, a lunge): grounded
STANCE_HEIGHT = 0.05  # m: an ankle this low (after grounding) is planted (metrics.foot_sliding's contact too)
LOCK_FADE_S = 4.0  # s: the time constant with which the stance lock's correction returns to the trajectory
# (chosen on the rendered S8 clips, benchmarks/foot_lock.py: longer is better on those 4 s clips; a long video
# would drift from its own positions)
# Human3.6M's skeleton: the median length (m) of each bone (parent -> joint, H36M-17 order; 0 for the root) over the
# training subjects' takes (S1, S5, S6, S7, S8; tests/test_world.py measures them again from the data).
H36M_BONES = np.array([0.0, 0.136, 0.449, 0.442, 0.136, 0.449, 0.442, 0.233, 0.255, 0.119, 0.115,
                       0.149, 0.279, 0.249, 0.149, 0.279, 0.249])
# each bone's share of the whole within this fraction of Human3.6M's: the seven subjects' own span 0.87-1.17
# (hips and shoulders; the long bones 0.95-1.05); a lifter's crouching or half-hidden figure gives shins at 0.57
PROPORTION_RANGE = 0.15
# left/right bone pairs of H36M-17 (hip, knee, ankle; shoulder, elbow, wrist): the same length on both sides
SIDE_PAIRS = ((1, 4), (2, 5), (3, 6), (11, 14), (12, 15), (13, 16))
DEFAULT_FOCAL = 1.0  # focal length in units of the larger frame side: about 53 degrees across


@dataclass
class WorldFrame:
    rotation: np.ndarray  # (3, 3): world = rotation @ camera
    poses: np.ndarray  # (P, T, 17, 3) world, metres, z up; NaN where invalid
    roots: np.ndarray  # (P, T, 3) camera-space root positions used (approximate)
    trajectory: bool
    rebase: str


def estimate_up(poses_cam: np.ndarray) -> np.ndarray:
    """Unit 'up' in camera coordinates from root-relative poses (P, T, 17, 3)."""
    body = poses_cam[..., 8, :] - (poses_cam[..., 3, :] + poses_cam[..., 6, :]) / 2  # ankles -> thorax
    body = body.reshape(-1, 3)
    body = body[np.isfinite(body).all(-1)]
    if len(body) == 0:
        return np.array([0.0, -1.0, 0.0])
    body = body / np.linalg.norm(body, axis=-1, keepdims=True)
    up = np.median(body, axis=0)
    n = np.linalg.norm(up)
    return up / n if n > 1e-6 else np.array([0.0, -1.0, 0.0])


def life_size(lengths: np.ndarray) -> np.ndarray:
    """A person's measured bone lengths (17,) -> the same proportions, left and right made equal, at Human3.6M's
    size (the same sum of bone lengths as ``H36M_BONES``). The lifters' 3D comes out smaller than life (0.84-0.98
    of the true size on rendered clips, smallest in far shots) and one camera cannot tell a person's true size,
    so the world skeleton takes an average adult's; its proportions stay the person's, within
    ``PROPORTION_RANGE`` of Human3.6M's: a bone further off is the lifter's error (a crouch, hidden legs), not
    the person's build."""
    out = np.array(lengths, dtype=np.float64)
    for a, b in SIDE_PAIRS:
        out[a] = out[b] = (out[a] + out[b]) / 2
    total = out.sum()
    if not total > 0:
        return H36M_BONES.copy()
    out *= H36M_BONES.sum() / total
    low, high = H36M_BONES * (1.0 - PROPORTION_RANGE), H36M_BONES * (1.0 + PROPORTION_RANGE)
    for _ in range(20):  # clamp, rescale to the sum, until the clamp holds (a few rounds)
        clamped = np.clip(out, low, high)
        out = clamped * (H36M_BONES.sum() / clamped.sum())
        if np.all(out >= low - 1e-9) and np.all(out <= high + 1e-9):
            break
    return out


def ground_heights(feet: np.ndarray, fps: float) -> np.ndarray:
    """(T,) the height of the floor under a person, from the height of their lower foot per frame (T,) over a
    provisional floor: the foot's own height where it supports the body, and across a short airborne phase
    (under ``AIRBORNE_MAX_S``: a jump, a run's flight) the line between the contacts on either side, so a jump
    stays a jump. A foot supports the body when it is within ``CONTACT_TOLERANCE`` of the lowest the feet are
    within the airborne span around the frame; longer stretches without contact (a crouch, a lunge with both
    heels up) are grounded frame by frame, and so is a stretch that takes off and lands at different heights."""
    T = len(feet)
    span = max(1, int(round(AIRBORNE_MAX_S * fps)))
    padded = np.concatenate([np.full(span, np.inf), feet, np.full(span, np.inf)])
    nearby = np.lib.stride_tricks.sliding_window_view(padded, 2 * span + 1).min(-1)  # (T,)
    contact = feet <= nearby + CONTACT_TOLERANCE
    idx = np.arange(T)
    t = 0
    while t < T:  # a stretch without contact is a jump only if short, and taking off and landing at one height
        if contact[t]:
            t += 1
            continue
        e = t
        while e < T and not contact[e]:
            e += 1
        jump = e - t <= span and t > 0 and e < T and abs(feet[t - 1] - feet[e]) <= CONTACT_TOLERANCE
        if not jump:  # the start or the end of a crouch, a lunge, a step up: grounded frame by frame
            contact[t:e] = True
        t = e
    return np.interp(idx, idx[contact], feet[contact])


def lock_stance_feet(poses: np.ndarray, fps: float, height: float = STANCE_HEIGHT,
                     fade_s: float = LOCK_FADE_S, seen: np.ndarray | None = None) -> np.ndarray:
    """One person's grounded world poses (T, 17, 3), z up, NaN where invalid, with the horizontal sliding of the
    planted foot taken out: where an ankle is below ``height`` in two consecutive frames (the slower one, when
    both are: a swing foot can pass low), the whole pose is shifted by the opposite of its horizontal step, the
    shift carried while no foot is down and decaying with time constant ``fade_s`` (so the planted foot creeps
    back at that rate and the person's path stays the estimated one). Jumps, steps and the pose itself are
    unchanged. ``seen`` (T, 2): whether each ankle was seen (``PoseResult.joints_seen``); a foot the lifter
    had to guess (a person cut by the frame's bottom edge) anchors nothing."""
    out = np.array(poses, dtype=np.float64, copy=True)
    feet = out[:, [3, 6]]  # (T, 2, 3)
    down = feet[..., 2] < height  # NaN: not down
    if seen is not None:
        down &= np.asarray(seen, bool)
    keep = float(np.exp(-1.0 / max(fade_s * fps, 1e-6)))
    step = np.diff(feet[..., :2], axis=0)  # (T - 1, 2, 2): each ankle's horizontal step into frame t
    speed = np.linalg.norm(step, axis=-1)
    planted = down[1:] & down[:-1] & np.isfinite(speed)  # (T - 1, 2)
    foot = np.argmin(np.where(planted, speed, np.inf), axis=1)  # the slower of the low feet: a swing foot may pass low
    slid = np.where(planted.any(1)[:, None], step[np.arange(len(step)), foot], 0.0)  # (T - 1, 2)
    shifts = np.zeros((len(out), 2))
    for t in range(1, len(out)):  # the shift decays, and takes out what the planted foot slid
        shifts[t] = shifts[t - 1] * keep - slid[t - 1]
    out[..., :2] += shifts[:, None, :]
    return out


def world_rotation(up_cam: np.ndarray) -> np.ndarray:
    """Rotation camera -> world with world z = up, world x = the camera's x made horizontal."""
    z = up_cam / np.linalg.norm(up_cam)
    x = np.array([1.0, 0.0, 0.0]) - z[0] * z
    if np.linalg.norm(x) < 1e-6:  # camera looking straight up or down: use its y
        x = np.array([0.0, 1.0, 0.0]) - z[1] * z
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return np.stack([x, y, z])


def estimate_roots(keypoints_2d: list[np.ndarray], poses_cam: np.ndarray, confidence: list[np.ndarray],
                   frame_size: tuple[int, int], fps: float, focal: float | None = None) -> np.ndarray:
    """(P, T, 3) approximate camera-space root positions from H36M-17 2D keypoints (pixels) and poses."""
    w, h = frame_size
    f = (focal or DEFAULT_FOCAL) * max(w, h)
    out = []
    window = max(5, int(round(fps / 5)) | 1)  # ~0.2 s
    for kp, pose, conf in zip(keypoints_2d, poses_cam, confidence):
        t = solve_translation(kp, pose, f, (w / 2, h / 2), conf).astype(np.float64)
        valid = np.isfinite(pose[:, 0, 0])
        t[~valid] = np.nan
        bad = ~np.isfinite(t).all(-1) & valid  # valid 3D but no solvable 2D: interpolate
        if bad.any() and np.isfinite(t).all(-1).any():
            idx = np.arange(len(t))
            good = np.isfinite(t).all(-1)
            for c in range(3):
                t[bad, c] = np.interp(idx[bad], idx[good], t[good, c])
        out.append(savgol(t, window, 2))
    return np.stack(out) if out else np.zeros((0, poses_cam.shape[1], 3))


def to_world(poses_cam: np.ndarray, roots_cam: np.ndarray, trajectory: bool = False, rebase: str = "sequence",
             up_cam: np.ndarray | None = None, rigid: bool = False, fps: float = 25.0,
             feet_seen: np.ndarray | None = None) -> WorldFrame:
    """poses_cam: (P, T, 17, 3) root-relative; roots_cam: (P, T, 3) approximate root positions. With ``rigid``,
    each person's poses are refitted to a skeleton of constant bone lengths (``video3d.skeleton``), life-size
    (``life_size``: their own proportions at Human3.6M's size), before the floor is set. With ``trajectory`` and
    the 'ground' rebase, planted feet do not slide (``lock_stance_feet``; ``feet_seen`` (P, T, 2): the ankles
    seen, None: all)."""
    if rebase not in REBASE:
        raise ValueError(f"rebase must be one of {', '.join(REBASE)}, not {rebase!r}")
    R = world_rotation(estimate_up(poses_cam) if up_cam is None else up_cam)
    roots = np.array(roots_cam, dtype=np.float64)
    if not trajectory:  # each person at their median position over the video
        med = np.nanmedian(roots, axis=1, keepdims=True) if np.isfinite(roots).any() else np.zeros_like(roots[:, :1])
        roots = np.broadcast_to(np.nan_to_num(med), roots.shape).copy()
    roots_w = roots @ R.T  # (P, T, 3) in world axes
    if trajectory:  # horizontal motion only: each person's root height stays at their median
        with np.errstate(all="ignore"):
            height = np.nanmedian(roots_w[..., 2], axis=1, keepdims=True) if np.isfinite(roots_w).any() else 0.0
        roots_w[..., 2] = np.nan_to_num(height)
    world = poses_cam @ R.T + np.where(np.isfinite(roots_w), roots_w, 0.0)[:, :, None, :]  # (P, T, 17, 3)
    valid = np.isfinite(world).all(axis=(-1, -2))
    if valid.any():
        centre = np.nanmean(world[valid][:, 0], axis=0)
        world -= np.array([centre[0], centre[1], centre[2]])
    for p in range(world.shape[0]):
        if not valid[p].any():
            continue
        if rigid:
            lengths = life_size(bone_lengths(world[p, valid[p]]))
            world[p, valid[p]] = fit_skeleton(world[p], lengths).positions[valid[p]]
        if rebase in ("sequence", "ground"):
            feet = np.minimum(world[p, valid[p], 3, 2], world[p, valid[p], 6, 2])
            world[p, :, :, 2] -= np.percentile(feet, 5)
        if rebase == "ground":
            feet = np.minimum(world[p, valid[p], 3, 2], world[p, valid[p], 6, 2])
            world[p, valid[p], :, 2] -= ground_heights(feet, fps)[:, None]
        elif rebase == "frame":
            world[p, valid[p], :, 2] -= world[p, valid[p], :, 2].min(axis=-1, keepdims=True)
        if trajectory and rebase == "ground":
            world[p] = lock_stance_feet(world[p], fps, seen=None if feet_seen is None else feet_seen[p])
    return WorldFrame(R.astype(np.float32), world.astype(np.float32), roots.astype(np.float32), trajectory, rebase)
