"""Left/right label repair of a 2D track before lifting.

A pose detector labels a person's left and right wrongly in a share of frames (YOLO pose: about 9% of
the frames of rendered test clips, more in profile views), often for a few frames only, or for the legs or
the arms alone. The lifter then crosses the limbs or turns the body. ``fix_left_right`` makes the labelling
consistent over time: per frame it decides, for three groups of joints, whether to exchange their left and
right labels:

- ``body``: shoulders and hips (and eyes and ears, in COCO-17): exchanging it exchanges the limbs as well,
  so a whole-body flip is one decision;
- ``legs``: knees and ankles, relative to the body;
- ``arms``: elbows and wrists, relative to the body.

The 8 combinations are the states of a dynamic programme (Viterbi) over the frames. Its costs, in units of
the person's torso length (shoulder to hip midpoints, the median over the track), each joint weighted by its
confidence, a missing joint counting nothing:

- continuity: between consecutive frames with the person, each joint's distance from the joint of the same
  label in the previous frame, capped at ``cap`` (a misplaced joint counts little);
- ``smooth``: over three consecutive frames, each joint's distance from where the joint of its label would be
  at constant velocity, less a margin for jitter (``MARGIN`` x the track's median), capped at ``SMOOTH_CAP``.
  It tells limbs that cross (legs walking or running seen from the side, where the previous frame alone makes
  both labellings cost nearly the same, or favours a "bounce") from limbs whose labels jumped;
- ``disagree``: per frame, for each joint whose label is exchanged, a penalty for overriding the detector. So a
  labelling the detector keeps is kept (a track labelled the other way in every frame is left alone, unless the
  face says otherwise, below), and a stretch is relabelled only while its jumps in and out cost more than
  ``disagree`` x its length: flips of a few to a few tens of frames, depending on how far apart the two sides
  are (on Human3.6M at 25 fps: 97% of the flips of 1-8 frames undone, 78% of 17-32, 35% of 33-64, 3% of 65-128);
- ``switch``: per group whose state changes between two frames, so one ambiguous frame changes nothing;
- the face (COCO-17's nose and eyes; seen as much as the least seen of the three): a detector sees the face only of a
  person turned towards the camera, whose left shoulder and hip are then on the image's right. A labelling that
  puts them on the left while the face is seen costs ``FACING`` x the face's confidence x how far apart the
  sides are (full at ``ORDER_SCALE`` torso lengths); the knees and ankles, the elbows and wrists likewise at
  ``LIMB_FACING`` of it, and only as far as the body faces the camera (limbs cross when seen from the side:
  nothing below ``PROFILE``). Without the face, the detector's left and right are a guess: YOLO labelled a
  rendered mannequin seen from the front as seen from behind for 44 frames, then saw the face and relabelled
  the whole body in one frame. There the ``disagree`` of a whole-body relabelling is scaled down towards
  ``FACELESS`` (by the face's confidence), so such a stretch is relabelled to agree with the frames that show
  the face. On the rendered clips of ``benchmarks/wild.py`` (the constants chosen on S8's) this took the
  default lifter's MPJPE / P-MPJPE with YOLO's 2D from 157.4 / 77.0 to 140.9 / 76.4 mm on S8, and from
  135.9 / 81.8 to 112.1 / 77.2 mm on S9/S11.

Frames without the person are skipped; across a gap of more than ``max_gap`` frames the chain starts afresh.
Pure numpy, about 50,000 frames/s on one core. ``benchmarks/swap_repair.py`` measures it on Human3.6M with
injected flips (the figures behind the constants below).
"""

from __future__ import annotations

import numpy as np

from .layouts import Layout, get_layout

GROUPS = ("body", "legs", "arms")
_GROUP_OF = {"shoulder": "body", "hip": "body", "eye": "body", "ear": "body",
             "knee": "legs", "ankle": "legs", "elbow": "arms", "wrist": "arms"}

# Chosen with benchmarks/swap_repair.py (Human3.6M S9 camera 0, 4 and 8 px noise, 50 and 25 fps) and
# tests/test_repair.py (walking and running seen from the side: no swaps); torso lengths.
DISAGREE = 0.04  # per frame and exchanged joint (x its confidence)
SWITCH = 0.4  # per group whose state changes between two frames
SMOOTH = 1.0  # weight of the constant-velocity term (0: continuity only)
MARGIN = 2.0  # the constant-velocity term ignores this many times the track's median prediction error
CAP = 1.0  # the most one joint's distance counts
SMOOTH_CAP = 0.3  # ... and its constant-velocity error (enough to tell a crossing; a jump already costs above)
MAX_GAP = 12  # frames without the person across which the labelling is carried
# The face (layouts with a nose and eyes), chosen on the rendered clips of S8 (benchmarks/wild.py --subjects S8
# --seed 2 --clips-dir benchmarks/.wild_cache_s8; FACING 0.5 / 1 / 2 gave MPJPE 154.8 / 140.9 / 155.9 mm):
# see the module's docstring.
FACING = 1.0  # per frame: a face seen (x its confidence) with the shoulders and hips labelled as from behind
ORDER_SCALE = 0.35  # torso lengths of left-right separation at which that cost is full
FACELESS = 0.25  # the share of ``disagree`` left for a whole-body relabelling in a frame without the face
PROFILE = 0.15  # torso lengths of the body's left-right separation below which the limbs' sides count nothing
LIMB_FACING = 0.5  # the weight of the legs' and the arms' sides in the face's cost, the body's being 1
FACE = ("nose", "left_eye", "right_eye")  # the face is seen as much as the least of these
# per group of GROUPS: the joints whose sides the face checks, and the weight (limbs cross: they count less)
FACING_PARTS = ((("shoulder", "hip"), 1.0), (("knee", "ankle"), LIMB_FACING), (("elbow", "wrist"), LIMB_FACING))

# states: bit 0 body, bit 1 legs relative to the body, bit 2 arms relative to the body; state 0 = as detected
_RELATIVE = np.array([[(s >> g) & 1 for g in range(3)] for s in range(8)], bool)  # (8, 3)
_ABSOLUTE = _RELATIVE.copy()
_ABSOLUTE[:, 1:] ^= _RELATIVE[:, :1]  # legs and arms exchanged in the output: their own bit xor the body's


def swap_pairs(layout: str | Layout) -> dict[str, list[tuple[int, int]]]:
    """The (left, right) joint pairs of each group of ``GROUPS`` in ``layout`` (from its flip table)."""
    layout = get_layout(layout) if isinstance(layout, str) else layout
    out: dict[str, list[tuple[int, int]]] = {g: [] for g in GROUPS}
    for left, right in zip(layout.left, layout.right):
        name = layout.joints[left]
        part = name.removeprefix("left_")
        if part == name or layout.joints[right] != f"right_{part}" or part not in _GROUP_OF:
            raise ValueError(f"{layout.name}: no swap group for the pair {name} / {layout.joints[right]}")
        out[_GROUP_OF[part]].append((left, right))
    return out


def person_size(keypoints: np.ndarray, layout: str | Layout) -> float:
    """The person's torso length (shoulder midpoint to hip midpoint), the median over the frames that show all
    four; else a third of the median extent of the seen joints; else 1."""
    pairs = swap_pairs(layout)["body"]
    layout = get_layout(layout) if isinstance(layout, str) else layout
    names = [layout.joints[left].removeprefix("left_") for left, _ in pairs]
    if "shoulder" in names and "hip" in names:
        s, h = pairs[names.index("shoulder")], pairs[names.index("hip")]
        torso = np.linalg.norm(keypoints[:, list(s)].mean(1) - keypoints[:, list(h)].mean(1), axis=-1)
        torso = torso[np.isfinite(torso) & (torso > 0)]
        if len(torso):
            return float(np.median(torso))
    seen = np.isfinite(keypoints[..., 0])
    rows = seen.sum(1) >= 2
    if rows.any():
        x = np.where(seen[rows, :, None], keypoints[rows], np.nan)
        extent = np.linalg.norm(np.nanmax(x, 1) - np.nanmin(x, 1), axis=-1)
        extent = extent[extent > 0]
        if len(extent):
            return float(np.median(extent)) / 3.0
    return 1.0


def _continuity(kp: np.ndarray, conf: np.ndarray, seen: np.ndarray, u: np.ndarray, v: np.ndarray,
                pairs: list[tuple[int, int]], size: float, cap: float) -> tuple[np.ndarray, np.ndarray]:
    """(N,) costs of keeping / exchanging one group's labels from frames u to frames v. Each joint seen in v
    counts if both joints of its pair are seen in u: its distance to the joint of its own label (keep) or of the
    other label (exchange) in u, in person sizes, capped, weighted by its confidence x the pair's lower one in u."""
    keep = np.zeros(len(u))
    cross = np.zeros(len(u))
    for left, right in pairs:
        prev_ok = seen[u, left] & seen[u, right]
        w_prev = np.minimum(conf[u, left], conf[u, right])
        for own, other in ((left, right), (right, left)):
            ok = prev_ok & seen[v, own]
            if not ok.any():
                continue
            w = np.where(ok, conf[v, own] * w_prev, 0.0)
            d_keep = np.minimum(np.linalg.norm(kp[v, own] - kp[u, own], axis=-1) / size, cap)
            d_cross = np.minimum(np.linalg.norm(kp[v, own] - kp[u, other], axis=-1) / size, cap)
            keep += np.where(ok, w * d_keep, 0.0)
            cross += np.where(ok, w * d_cross, 0.0)
    return keep, cross


def _prediction_error(kp: np.ndarray, w_: np.ndarray, u: np.ndarray, v: np.ndarray, at_w: int, at_u: int,
                      at_v: int) -> np.ndarray:
    """(N,) pixels between joint ``at_v`` in frames v and the constant-velocity prediction from joint ``at_w`` in
    frames w and joint ``at_u`` in frames u (frame gaps taken into account)."""
    ratio = ((v - u) / (u - w_))[:, None]
    pred = kp[u, at_u] + ratio * (kp[u, at_u] - kp[w_, at_w])
    return np.linalg.norm(kp[v, at_v] - pred, axis=-1)


def _noise_margin(kp: np.ndarray, seen: np.ndarray, w_: np.ndarray, u: np.ndarray, v: np.ndarray,
                  joints: list[int], size: float) -> float:
    """MARGIN x the median prediction error of the track's own labelling, in person sizes: what jitter and
    ordinary motion give (flips are a minority, so they barely move the median)."""
    errors = [_prediction_error(kp, w_, u, v, j, j, j)[seen[w_, j] & seen[u, j] & seen[v, j]] for j in joints]
    errors = np.concatenate(errors) if errors else np.zeros(0)
    return MARGIN * float(np.median(errors)) / size if len(errors) else 0.0


def _smoothness(kp: np.ndarray, conf: np.ndarray, seen: np.ndarray, w_: np.ndarray, u: np.ndarray, v: np.ndarray,
                pairs: list[tuple[int, int]], size: float, cap: float, margin: float) -> np.ndarray:
    """(N, 2, 2) costs of one group's labels over frames w -> u -> v, indexed by (labels exchanged from w to u,
    exchanged from w to v): each joint seen in v against the constant-velocity prediction of the joint of its
    label from w and u (both joints of the pair seen in both), in person sizes, less ``margin``, capped, weighted
    by its confidence x the lowest of the pair's in w and u."""
    out = np.zeros((len(u), 2, 2))
    for left, right in pairs:
        prev_ok = seen[w_, left] & seen[w_, right] & seen[u, left] & seen[u, right]
        w_prev = np.minimum.reduce([conf[w_, left], conf[w_, right], conf[u, left], conf[u, right]])
        pair = (left, right)
        for j in (0, 1):
            ok = prev_ok & seen[v, pair[j]]
            if not ok.any():
                continue
            weight = np.where(ok, conf[v, pair[j]] * w_prev, 0.0)
            for to_u in (0, 1):
                for to_v in (0, 1):
                    label = j ^ to_v  # the joint of the pair in w that carries this joint's label in v
                    d = _prediction_error(kp, w_, u, v, pair[label], pair[label ^ to_u], pair[j]) / size
                    out[:, to_u, to_v] += np.where(ok, weight * np.clip(d - margin, 0.0, cap), 0.0)
    return out


def facing_order(keypoints: np.ndarray, layout: str | Layout, size: float,
                 parts: tuple[str, ...] = ("shoulder", "hip")) -> np.ndarray:
    """(T,) how far the person's left ``parts`` (shoulder and hip) lie to the image's right of their right ones
    (the mean of the pairs seen), in torso lengths ``size``: positive for a person facing the camera, negative
    from behind, near 0 in profile; 0 where no pair is seen."""
    layout = get_layout(layout) if isinstance(layout, str) else layout
    pairs = [(layout.joints.index(f"left_{p}"), layout.joints.index(f"right_{p}")) for p in parts
             if f"left_{p}" in layout.joints and f"right_{p}" in layout.joints]
    if not pairs:
        return np.zeros(len(keypoints))
    dx = np.stack([keypoints[:, left, 0] - keypoints[:, right, 0] for left, right in pairs], 1) / size
    seen = np.isfinite(dx)
    return np.where(seen, dx, 0.0).sum(1) / np.maximum(seen.sum(1), 1)


def fix_left_right(keypoints: np.ndarray, confidence: np.ndarray, layout: str | Layout = "coco17", *,
                   disagree: float = DISAGREE, switch: float = SWITCH, smooth: float = SMOOTH, cap: float = CAP,
                   max_gap: int = MAX_GAP, facing: float = FACING,
                   faceless: float = FACELESS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exchange left and right labels where that makes a track's labelling consistent over time.

    ``keypoints`` (T, J, 2) pixels with NaN for a missing joint, ``confidence`` (T, J) (0 where missing),
    ``layout`` 'coco17' or 'h36m17'. Returns the keypoints and confidences with the labels exchanged (new
    arrays; joints are moved, never changed, so undoing a flip restores the original values exactly) and
    ``swapped`` (T, 3) bool: per frame, whether the labels of ``GROUPS`` (body, legs, arms) were exchanged in
    the output (only where that group has a seen joint); ``swapped.any(1).sum()`` is the number of frames
    changed. The weights are in torso lengths (see the module's docstring); ``smooth`` 0 leaves out the
    constant-velocity term (first order only); ``facing`` 0 and ``faceless`` 1 leave out the face (which only
    layouts with a ``nose`` joint have)."""
    kp = np.asarray(keypoints)
    conf = np.asarray(confidence)
    if kp.ndim != 3 or kp.shape[-1] != 2 or conf.shape != kp.shape[:2]:
        raise ValueError(f"expected keypoints (T, J, 2) and confidence (T, J), got {kp.shape} and {conf.shape}")
    layout = get_layout(layout) if isinstance(layout, str) else layout
    if kp.shape[1] != layout.num_joints:
        raise ValueError(f"layout {layout.name} has {layout.num_joints} joints, keypoints have {kp.shape[1]}")
    pairs = swap_pairs(layout)
    T = kp.shape[0]
    seen = np.isfinite(kp).all(-1) & (conf > 0)
    conf_w = np.where(seen, np.clip(np.nan_to_num(conf), 0.0, 1.0), 0.0)
    swapped = np.zeros((T, len(GROUPS)), bool)
    frames = np.nonzero(seen.any(1))[0]  # the chain runs over the frames with the person
    if len(frames) < 2:
        return kp.copy(), conf.copy(), swapped
    located = np.where(seen[..., None], kp, np.nan)  # the seen joints, NaN elsewhere
    size = person_size(located, layout)
    u, v = frames[:-1], frames[1:]
    linked = (v - u - 1) <= max_gap
    n = len(frames)

    # transitions (n - 1, 8, 8): continuity of each group under its exchange from u to v, plus the switches
    trans = np.zeros((n - 1, 8, 8))
    exchanged = _ABSOLUTE[:, None, :] ^ _ABSOLUTE[None, :, :]  # (8, 8, 3)
    for g, name in enumerate(GROUPS):
        keep, cross = _continuity(kp, conf_w, seen, u, v, pairs[name], size, cap)
        trans += np.where(exchanged[None, :, :, g], cross[:, None, None], keep[:, None, None])
    trans += switch * (_RELATIVE[:, None, :] ^ _RELATIVE[None, :, :]).sum(-1)[None]
    trans[~linked] = 0.0  # a long gap: the chain starts afresh
    # overriding the detector: per frame, the confidence of the seen joints whose labels are exchanged
    weight = np.stack([conf_w[frames][:, np.asarray(pairs[g], np.int64).reshape(-1)].sum(1) for g in GROUPS], 1)
    unary = disagree * (weight @ _ABSOLUTE.T.astype(float))  # (n, 8)
    if all(j in layout.joints for j in FACE):
        face = conf_w[frames][:, [layout.joints.index(j) for j in FACE]].min(1)  # (n,) the face's lowest
        body = _ABSOLUTE[:, 0]  # (8,) the body's labels exchanged
        unary[:, body] *= (faceless + (1.0 - faceless) * face)[:, None]
        frontal = None
        for g, (parts, weight) in enumerate(FACING_PARTS):  # each group's sides, as labelled in each state
            order = facing_order(located, layout, size, parts)[frames]  # (n,)
            labelled = np.where(_ABSOLUTE[None, :, g], -order[:, None], order[:, None])  # (n, 8)
            cost = weight * facing * face * (1.0 if frontal is None else frontal)  # (n,)
            unary += cost[:, None] * np.clip(-labelled / ORDER_SCALE, 0.0, 1.0)
            # the limbs count only as much as the body faces the camera: seen from the side, they cross
            frontal = np.clip((np.abs(order) - PROFILE) / ORDER_SCALE, 0.0, 1.0) if frontal is None else frontal

    if smooth > 0 and n >= 3:
        w_, u, v = frames[:-2], frames[1:-1], frames[2:]
        joints = [j for g in GROUPS for pair in pairs[g] for j in pair]
        margin = _noise_margin(kp, seen, w_, u, v, joints, size)
        triples = np.zeros((n - 2, 3, 2, 2))
        for g, name in enumerate(GROUPS):
            triples[:, g] = _smoothness(kp, conf_w, seen, w_, u, v, pairs[name], size, SMOOTH_CAP, margin)
        triples[~(linked[:-1] & linked[1:])] = 0.0
        states = _viterbi_pairs(smooth * triples, trans, unary)
    else:
        states = _viterbi(trans, unary)

    out_kp, out_conf = kp.copy(), conf.copy()
    absolute = _ABSOLUTE[states]  # (n, 3)
    for g, name in enumerate(GROUPS):
        idx = np.asarray(pairs[name], np.int64).reshape(-1, 2)
        rows = frames[absolute[:, g]]
        if not len(idx) or not len(rows):
            continue
        left, right = np.ix_(rows, idx[:, 0]), np.ix_(rows, idx[:, 1])
        out_kp[left], out_kp[right] = kp[right], kp[left]
        out_conf[left], out_conf[right] = conf[right], conf[left]
        swapped[rows, g] = seen[np.ix_(rows, idx.reshape(-1))].any(1)
    return out_kp, out_conf, swapped


def exchange_labels(values: np.ndarray, swapped: np.ndarray, layout: str | Layout = "coco17") -> np.ndarray:
    """Apply ``fix_left_right``'s ``swapped`` (T, 3) to per-joint ``values`` (T, J, ...) of ``layout``: a new
    array with the left/right labels of each group of ``GROUPS`` exchanged in the frames marked. The renderer
    uses it to draw the 2D with the labels that were lifted (``PoseResult.labels_swapped``)."""
    values = np.asarray(values)
    swapped = np.asarray(swapped, bool)
    if swapped.shape != (values.shape[0], len(GROUPS)):
        raise ValueError(f"expected swapped ({values.shape[0]}, {len(GROUPS)}), got {swapped.shape}")
    out = values.copy()
    for g, pairs in enumerate(swap_pairs(layout)[name] for name in GROUPS):
        idx = np.asarray(pairs, np.int64).reshape(-1, 2)
        rows = np.flatnonzero(swapped[:, g])
        if len(idx) and len(rows):
            out[np.ix_(rows, idx[:, 0])], out[np.ix_(rows, idx[:, 1])] = values[np.ix_(rows, idx[:, 1])], \
                values[np.ix_(rows, idx[:, 0])]
    return out


def _viterbi(trans: np.ndarray, unary: np.ndarray) -> np.ndarray:
    """The cheapest state per frame; ties go to the lower state, so to the detector's labels (state 0)."""
    n = len(unary)
    cost = unary[0].copy()
    back = np.zeros((n - 1, 8), np.int8)
    for i in range(n - 1):
        total = cost[:, None] + trans[i]
        back[i] = np.argmin(total, axis=0)
        cost = total[back[i], np.arange(8)] + unary[i + 1]
    states = np.empty(n, np.int64)
    states[-1] = int(np.argmin(cost))
    for i in range(n - 2, -1, -1):
        states[i] = back[i, states[i + 1]]
    return states


def _triple_selector() -> np.ndarray:
    """(12, 512): sums a triple's costs, (group, exchanged w -> u, exchanged w -> v) flattened, into the states
    (s_w, s_u, s_v) flattened."""
    a = _ABSOLUTE.astype(np.int64)
    index = np.arange(3) * 4 + (a[:, None, None] ^ a[None, :, None]) * 2 + (a[:, None, None] ^ a[None, None, :])
    out = np.zeros((12, 512))
    for g in range(3):
        out[index[..., g].reshape(-1), np.arange(512)] = 1.0
    return out


_TRIPLES = _triple_selector()


def _viterbi_pairs(triples: np.ndarray, trans: np.ndarray, unary: np.ndarray) -> np.ndarray:
    """As ``_viterbi`` with the costs of triples of frames (n - 2, 3, 2, 2) too: the states are then the pairs
    (the previous frame's state, this frame's)."""
    n = len(unary)
    triples = triples.reshape(n - 2, 12)
    cost = unary[0][:, None] + trans[0] + unary[1][None, :]  # (s_w, s_u)
    back = np.zeros((n - 2, 8, 8), np.int8)
    for i in range(n - 2):
        total = cost[:, :, None] + (triples[i] @ _TRIPLES).reshape(8, 8, 8)  # (s_w, s_u, s_v)
        back[i] = np.argmin(total, axis=0)
        cost = np.take_along_axis(total, back[i][None].astype(np.int64), 0)[0] + trans[i + 1] + unary[i + 2][None, :]
    states = np.empty(n, np.int64)
    states[n - 2], states[n - 1] = np.unravel_index(int(np.argmin(cost)), (8, 8))
    for i in range(n - 3, -1, -1):
        states[i] = back[i, states[i + 1], states[i + 2]]
    return states
