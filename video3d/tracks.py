"""From per-frame tracked detections to per-person sequences, and from those to lifter input.

- ``TrackBuilder`` collects one row per decoded frame for every track id (never dropping a frame:
  a frame without the person is all-NaN);
- ``select_persons`` keeps the main subject (the track with the largest sum of box heights over
  its frames: long and large), the N best, or all tracks;
- ``segments`` finds the stretches to lift: gaps of at most ``max_gap`` frames are bridged by
  interpolation, longer ones split the track (frames in them stay invalid);
- ``fill_missing`` fills missing joints the way the lifters were trained to expect: linear
  interpolation in time, held at the ends, and a joint never seen at all takes its parent's place.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .detector import Detection
from .layouts import get_layout
from .sequence import PoseSequence


@dataclass
class Track:
    track_id: int
    first_frame: int
    keypoints: list[np.ndarray] = field(default_factory=list)  # per frame from first_frame: (17, 2) or None
    confidence: list[np.ndarray] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)

    @property
    def frames_seen(self) -> int:
        return sum(b is not None for b in self.boxes)

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


def lifter_input(seq: PoseSequence, start: int, stop: int) -> np.ndarray:
    """Filled H36M-17 2D keypoints (stop - start, 17, 2) of one segment (frames with no joints get
    interpolated too, which bridges the short gaps inside a segment)."""
    layout = get_layout(seq.layout)
    return fill_missing(seq.keypoints[start:stop], layout.parents)
