"""From per-frame tracked detections to per-person sequences, and from those to lifter input.

- ``TrackBuilder`` collects one row per decoded frame for every track id (never dropping a frame:
  a frame without the person is all-NaN);
- ``stitch_tracks`` joins the pieces a tracker splits one person into;
- ``select_persons`` keeps the main subject (the track with the largest sum of box heights over
  its frames: long and large), the N best, or all tracks;
- ``segments`` finds the stretches to lift: gaps of at most ``max_gap`` frames are bridged by
  interpolation, longer ones split the track (frames in them stay invalid);
- ``fill_missing`` fills missing joints the way the lifters were trained to expect: linear
  interpolation in time, held at the ends, and a joint never seen at all takes its parent's place.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .detector import Detection
from .layouts import get_layout
from .sequence import PoseSequence
from .world import H36M_BONES


@dataclass
class Track:
    track_id: int
    first_frame: int
    keypoints: list[np.ndarray] = field(default_factory=list)  # per frame from first_frame: (17, 2) or None
    confidence: list[np.ndarray] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)

    def score(self) -> float:
        """Sum of box heights over the frames where the person is seen: long and large tracks win."""
        return float(sum(b[3] - b[1] for b in self.boxes if b is not None))


class TrackBuilder:
    """Accumulates ``Detection`` lists frame by frame; memory grows with keypoints, never with pixels."""

    def __init__(self, min_confidence: float = 0.3):
        self.min_confidence = min_confidence
        self.tracks: dict[int, Track] = {}
        self.num_frames = 0

    def add(self, detections: list[Detection]) -> None:
        t = self.num_frames
        for det in detections:
            track = self.tracks.get(det.track_id)
            if track is None:
                track = self.tracks[det.track_id] = Track(det.track_id, t)
            while track.first_frame + len(track.boxes) < t:  # the person was not seen in between
                track.keypoints.append(None)
                track.confidence.append(None)
                track.boxes.append(None)
            if track.first_frame + len(track.boxes) > t:  # the same id twice in a frame: keep the first
                continue
            track.keypoints.append(det.keypoints)
            track.confidence.append(det.keypoint_confidence)
            track.boxes.append(det.box)
        self.num_frames += 1

    def sequences(self, fps: float, frame_size: tuple[int, int]) -> list[tuple[PoseSequence, np.ndarray]]:
        """(COCO-17 PoseSequence over all frames, boxes (T, 4)) per track, by track id."""
        out = []
        T = self.num_frames
        for tid in sorted(self.tracks):
            track = self.tracks[tid]
            kp = np.full((T, 17, 2), np.nan, np.float32)
            conf = np.zeros((T, 17), np.float32)
            boxes = np.full((T, 4), np.nan, np.float32)
            for i, (k, c, b) in enumerate(zip(track.keypoints, track.confidence, track.boxes)):
                if b is None:
                    continue
                t = track.first_frame + i
                seen = c >= self.min_confidence
                kp[t, seen] = k[seen]
                conf[t, seen] = np.clip(c[seen], 0.0, 1.0)
                boxes[t] = b
            out.append((PoseSequence(kp, conf, fps, "coco17", track_id=tid, frame_size=frame_size), boxes))
        return out


def assign_track_ids(frames: list[list[Detection]], fps: float, max_distance: float = 0.5) -> list[list[Detection]]:
    """Give every detection a track id, for keypoints imported without one (a video runs ByteTrack in the
    detector instead): frame by frame, detections are matched to the tracks seen in the last second by the mean
    keypoint distance in body heights (Hungarian, at most ``max_distance``). Ids the file has are kept."""
    import lap

    if all(d.track_id is not None for dets in frames for d in dets):
        return frames
    max_age = max(1, int(round(fps)))
    tracks: dict[int, tuple[np.ndarray, int]] = {}  # id -> (last keypoints, last frame)
    next_id = 1
    out = []
    for t, dets in enumerate(frames):
        alive = [i for i, (_, last) in tracks.items() if t - last <= max_age]
        cost = np.full((len(dets), len(alive)), 1e6)
        for a, det in enumerate(dets):
            for b, i in enumerate(alive):
                ref = tracks[i][0]
                d = np.linalg.norm(det.keypoints - ref, axis=-1)
                seen = np.isfinite(d)
                if seen.sum() >= 3:
                    h = np.nanmax(ref[:, 1]) - np.nanmin(ref[:, 1])
                    cost[a, b] = float(d[seen].mean() / max(h, 1.0))
        assigned: dict[int, int] = {}
        if len(dets) and len(alive):
            _, x, _ = lap.lapjv(cost, extend_cost=True, cost_limit=max_distance)
            assigned = {a: alive[b] for a, b in enumerate(x) if b >= 0}
        labelled = []
        for a, det in enumerate(dets):
            tid = assigned.get(a)
            if tid is None:
                tid, next_id = next_id, next_id + 1
            kp = det.keypoints
            tracks[tid] = (np.where(np.isnan(kp), tracks[tid][0], kp) if tid in tracks else kp, t)
            labelled.append(replace(det, track_id=tid))
        out.append(labelled)
    return out


def _track_distance(a: tuple[PoseSequence, np.ndarray], b: tuple[PoseSequence, np.ndarray], fps: float,
                    max_gap: int) -> float | None:
    """How far apart two tracks are as the same person (lower is closer), or None if they cannot be one.

    Overlapping in time: the median over shared frames of the mean keypoint distance / box height
    (duplicates of one person score near 0). One after the other within ``max_gap`` frames: the jump of
    the box centre from the last frame of one to the first of the other, in box heights, less the
    distance a person could walk in the gap (1.5 heights per second)."""
    (sa, ba), (sb, bb) = a, b
    va, vb = ~np.isnan(ba[:, 0]), ~np.isnan(bb[:, 0])
    both = va & vb
    heights = lambda boxes: boxes[:, 3] - boxes[:, 1]  # noqa: E731
    if both.any():
        ka, kb = sa.keypoints[both], sb.keypoints[both]  # (N, J, 2)
        d = np.linalg.norm(ka - kb, axis=-1)  # NaN where a joint is missing in either
        seen = np.isfinite(d).sum(-1) >= 3
        if seen.mean() < 0.5:
            return None
        h = (heights(ba[both]) + heights(bb[both])) / 2
        per_frame = np.nanmean(d[seen], axis=-1) / h[seen]
        dist = float(np.median(per_frame))
        return dist if dist < 0.15 else None
    ia, ib = np.nonzero(va)[0], np.nonzero(vb)[0]
    first, second, (fa, fb) = (ba, bb, (ia, ib)) if ia[-1] < ib[0] else (bb, ba, (ib, ia))
    end, start = fa[-1], fb[0]
    gap = start - end - 1
    if gap > max_gap:
        return None
    centre = lambda box: np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])  # noqa: E731
    h = (heights(first[end:end + 1])[0] + heights(second[start:start + 1])[0]) / 2
    jump = np.linalg.norm(centre(first[end]) - centre(second[start])) / h
    allowance = 0.5 + 1.5 * (gap + 1) / fps
    return float(jump / allowance) if jump < allowance else None


def _merge(a: tuple[PoseSequence, np.ndarray], b: tuple[PoseSequence, np.ndarray]):
    """One track from two: each frame from whichever has the more confident keypoints (a's id kept)."""
    (sa, ba), (sb, bb) = a, b
    take_b = np.isnan(ba[:, 0]) | (~np.isnan(bb[:, 0]) & (sb.confidence.sum(-1) > sa.confidence.sum(-1)))
    kp = np.where(take_b[:, None, None], sb.keypoints, sa.keypoints)
    conf = np.where(take_b[:, None], sb.confidence, sa.confidence)
    boxes = np.where(take_b[:, None], bb, ba)
    return sa.with_(keypoints=kp, confidence=conf), boxes


def stitch_tracks(tracks: list[tuple[PoseSequence, np.ndarray]], fps: float,
                  max_gap_seconds: float = 1.0) -> list[tuple[PoseSequence, np.ndarray]]:
    """Join the pieces a tracker splits one person into (an id switch after an occlusion, or a duplicate
    box kept as a second track), greedily, closest pair first. People who are apart are never joined."""
    tracks = list(tracks)
    max_gap = int(round(max_gap_seconds * fps))
    while True:
        best = None
        for i in range(len(tracks)):
            for j in range(i + 1, len(tracks)):
                d = _track_distance(tracks[i], tracks[j], fps, max_gap)
                if d is not None and (best is None or d < best[0]):
                    best = (d, i, j)
        if best is None:
            return tracks
        _, i, j = best
        # keep the id of the longer piece
        first, second = (i, j) if (~np.isnan(tracks[i][1][:, 0])).sum() >= (~np.isnan(tracks[j][1][:, 0])).sum() \
            else (j, i)
        merged = _merge(tracks[first], tracks[second])
        tracks = [t for k, t in enumerate(tracks) if k not in (i, j)] + [merged]
        tracks.sort(key=lambda t: t[0].track_id)


def select_persons(tracks: list[tuple[PoseSequence, np.ndarray]], persons: int | str,
                   min_frames: int = 5) -> list[tuple[PoseSequence, np.ndarray]]:
    """Keep 1 (the main subject), N, or 'all' tracks seen in at least ``min_frames`` frames, best first."""
    kept = [t for t in tracks if int((~np.isnan(t[1][:, 0])).sum()) >= min_frames]
    kept.sort(key=lambda t: -np.nansum(t[1][:, 3] - t[1][:, 1]))
    if persons == "all":
        return kept
    n = int(persons)
    if n < 1:
        raise ValueError("persons must be at least 1 or 'all'")
    return kept[:n]


def segments(present: np.ndarray, max_gap: int) -> list[tuple[int, int]]:
    """[start, stop) stretches of frames to lift: present frames, with gaps of <= max_gap frames bridged."""
    idx = np.nonzero(present)[0]
    if not len(idx):
        return []
    out = []
    start = prev = int(idx[0])
    for t in idx[1:]:
        t = int(t)
        if t - prev - 1 > max_gap:
            out.append((start, prev + 1))
            start = t
        prev = t
    out.append((start, prev + 1))
    return out


def fill_missing(keypoints: np.ndarray, parents: tuple[int, ...] | None) -> np.ndarray:
    """Fill NaN joints of (T, J, C): interpolate over time per joint (hold at the ends); a joint never
    seen takes its nearest seen ancestor's track. Raises if no joint is ever seen."""
    x = np.array(keypoints, dtype=np.float32, copy=True)
    T, J, C = x.shape
    t = np.arange(T)
    never = []
    for j in range(J):
        seen = ~np.isnan(x[:, j, 0])
        if seen.all():
            continue
        if not seen.any():
            never.append(j)
            continue
        for c in range(C):
            x[:, j, c] = np.interp(t, t[seen], x[seen, j, c])
    for j in sorted(never, key=lambda j: _depth(j, parents)):
        a = parents[j] if parents else -1
        while a >= 0 and a in never and np.isnan(x[0, a, 0]):
            a = parents[a]
        if a < 0:
            raise ValueError(f"joint {j} and all its ancestors are never seen")
        x[:, j] = x[:, a]
    if np.isnan(x).any():
        raise ValueError("cannot fill missing joints")
    return x


def _depth(j: int, parents: tuple[int, ...] | None) -> int:
    d = 0
    while parents and parents[j] >= 0:
        j = parents[j]
        d += 1
    return d


# H36M-17 joints a lifter needs that a detector may not see for long (a person cut by the frame's edge, a limb
# hidden or outside it): joint -> (parent, +1 down the body / -1 up it); parents first. Their length is
# Human3.6M's bone over its pelvis-to-thorax distance (``_TORSO_RATIO``).
GUESSED = {9: (8, -1), 10: (9, -1), 2: (1, 1), 3: (2, 1), 5: (4, 1), 6: (5, 1), 12: (11, 1), 13: (12, 1),
           15: (14, 1), 16: (15, 1)}
_TORSO_RATIO = H36M_BONES / (H36M_BONES[7] + H36M_BONES[8])  # (17,) bones in pelvis-to-thorax lengths


def unseen_joints(missing: np.ndarray, max_gap: int) -> np.ndarray:
    """(T, J) bool: the joints of ``missing`` (T, J) that are missing for a run of more than ``max_gap`` frames
    (between two sightings, at either end, or throughout): where they are, the lifter's 3D would be a guess,
    not estimated from what was seen. Shorter runs are interpolated (``fill_missing``) and count as seen."""
    missing = np.asarray(missing, bool)
    out = np.zeros_like(missing)
    edges = np.diff(np.pad(missing.astype(np.int8), ((1, 1), (0, 0))), axis=0)  # (T + 1, J): +1 starts, -1 ends
    for j in range(missing.shape[1]):
        for s, e in zip(np.nonzero(edges[:, j] == 1)[0], np.nonzero(edges[:, j] == -1)[0]):
            if e - s > max_gap or e - s == len(missing):  # too long, or never seen at all
                out[s:e, j] = True
    return out


def guess_unseen(keypoints: np.ndarray, unseen: np.ndarray) -> np.ndarray:
    """H36M-17 2D (T, 17, 2), NaN where missing, with the ``unseen`` joints of ``GUESSED`` put where a relaxed
    body would have them: the limbs straight down the line of the torso (pelvis -> thorax, that frame's or the
    track's median), the head up it, at Human3.6M's proportions. Holding a lost knee where it was last seen, or
    at the hip, folds the lifter's whole figure; this keeps the seen joints' 3D sound, and the guessed ones are
    marked as such (``lift``). Other missing joints stay NaN for ``fill_missing``."""
    x = np.array(keypoints, dtype=np.float32, copy=True)
    up = x[:, 8] - x[:, 0]  # (T, 2): pelvis -> thorax
    length = np.linalg.norm(up, axis=-1)
    ok = np.isfinite(length) & (length > 0)
    if not ok.any():
        return x
    unit = up[ok] / length[ok, None]
    median = np.median(unit, axis=0)
    median = median / (np.linalg.norm(median) or 1.0)
    direction = np.where(ok[:, None], up / np.where(ok, length, 1.0)[:, None], median)  # (T, 2)
    length = np.where(ok, length, np.median(length[ok]))
    for j, (parent, sign) in GUESSED.items():
        rows = unseen[:, j] & np.isfinite(x[:, parent, 0])
        x[rows, j] = x[rows, parent] - sign * direction[rows] * (_TORSO_RATIO[j] * length[rows])[:, None]
    return x


def lifter_input(seq: PoseSequence, start: int, stop: int, unseen: np.ndarray | None = None) -> np.ndarray:
    """Filled H36M-17 2D keypoints (stop - start, 17, 2) of one segment (frames with no joints get
    interpolated too, which bridges the short gaps inside a segment). The ``unseen`` joints (stop - start, 17)
    (``unseen_joints``) are first guessed (``guess_unseen``)."""
    layout = get_layout(seq.layout)
    x = seq.keypoints[start:stop]
    if unseen is not None:
        x = guess_unseen(x, unseen)
    return fill_missing(x, layout.parents)
