"""Joint layouts (H36M-17, COCO-17) and the COCO-17 -> H36M-17 conversion.

Every lifter outputs H36M-17. YOLO pose outputs COCO-17. The conversion follows the one the
GAST-Net / MHFormer demos use for in-the-wild video (see ../shared/MODELS.md); the synthesised
joints (pelvis, spine, thorax) were checked on Human3.6M (``scripts/measure_coco_synthesis.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Layout:
    """A named list of joints, its bones (for drawing) and its left/right pairs (for flipping)."""

    name: str
    joints: tuple[str, ...]
    edges: tuple[tuple[int, int], ...]
    left: tuple[int, ...]
    right: tuple[int, ...]
    parents: tuple[int, ...] | None = None
    flip_index: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.left) != len(self.right):
            raise ValueError(f"{self.name}: left and right joint lists differ in length")
        perm = np.arange(len(self.joints))
        perm[list(self.left)] = self.right
        perm[list(self.right)] = self.left
        object.__setattr__(self, "flip_index", perm)

    @property
    def num_joints(self) -> int:
        return len(self.joints)

    def index(self, name: str) -> int:
        return self.joints.index(name)

    def side_of_edge(self, edge: tuple[int, int]) -> int:
        """-1 for a right-side bone, +1 for a left-side bone, 0 for the midline (used for colours)."""
        a, b = edge
        if a in self.left or b in self.left:
            return 1
        if a in self.right or b in self.right:
            return -1
        return 0


_H36M_PARENTS = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)

H36M17 = Layout(
    name="h36m17",
    joints=(
        "pelvis", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
        "spine", "thorax", "neck_nose", "head", "left_shoulder", "left_elbow", "left_wrist",
        "right_shoulder", "right_elbow", "right_wrist",
    ),
    edges=tuple((j, p) for j, p in enumerate(_H36M_PARENTS) if p >= 0),
    left=(4, 5, 6, 11, 12, 13),
    right=(1, 2, 3, 14, 15, 16),
    parents=_H36M_PARENTS,
)

COCO17 = Layout(
    name="coco17",
    joints=(
        "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
        "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
        "left_knee", "right_knee", "left_ankle", "right_ankle",
    ),
    edges=(
        (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7),
        (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
    ),
    left=(1, 3, 5, 7, 9, 11, 13, 15),
    right=(2, 4, 6, 8, 10, 12, 14, 16),
)

LAYOUTS: dict[str, Layout] = {layout.name: layout for layout in (H36M17, COCO17)}


def get_layout(name: str) -> Layout:
    try:
        return LAYOUTS[name]
    except KeyError:
        raise ValueError(f"unknown joint layout {name!r}; known: {', '.join(sorted(LAYOUTS))}") from None


# COCO index -> H36M index for the 13 joints both layouts have.
COCO_TO_H36M_DIRECT = {0: 9, 5: 11, 6: 14, 7: 12, 8: 15, 9: 13, 10: 16, 11: 4, 12: 1, 13: 5, 14: 2, 15: 6, 16: 3}

# Synthesised joints, as weights on (shoulder midpoint, hip midpoint, nose): the demos' rules.
# Measured on the 2D projections of Human3.6M S1/S5/S6/S7/S8 (scripts/measure_coco_synthesis.py):
# pelvis = hip midpoint is off by 0.3 px; spine 7.4 px (0.5) vs 6.0 px (best fit 0.545); thorax 5.4 px
# (1/3) vs 5.3 px (best fit 0.37), on a ~94 px torso. The gains are small, and the shipped lifters were
# trained with these rules (synthesize_coco_like_h36m), so they stay.
SPINE_FROM_SHOULDER_MID = 0.5
THORAX_TOWARD_NOSE = 1.0 / 3.0


def _mean_of_seen(x: np.ndarray) -> np.ndarray:
    """Mean over the last axis of the finite values; NaN where none is finite."""
    seen = np.isfinite(x).sum(axis=-1)
    return np.where(seen > 0, np.nansum(x, axis=-1) / np.maximum(seen, 1), np.nan)


def coco17_to_h36m17(
    keypoints: np.ndarray,
    confidence: np.ndarray,
    spine_from_shoulder_mid: float = SPINE_FROM_SHOULDER_MID,
    thorax_toward_nose: float = THORAX_TOWARD_NOSE,
) -> tuple[np.ndarray, np.ndarray]:
    """Convert COCO-17 keypoints (..., 17, 2) and confidences (..., 17) to H36M-17.

    A synthesised joint is missing (NaN, confidence 0) when any joint it is made from is missing.
    Confidences: pelvis = mean(hips), thorax = mean(shoulders), spine = mean(pelvis, thorax),
    head = mean(eyes, ears); direct joints keep their own.
    """
    keypoints = np.asarray(keypoints, dtype=np.float32)
    confidence = np.asarray(confidence, dtype=np.float32)
    if keypoints.shape[-2:] != (17, 2) or confidence.shape != keypoints.shape[:-1]:
        raise ValueError(f"expected COCO-17 keypoints (..., 17, 2) and confidence (..., 17), got "
                         f"{keypoints.shape} and {confidence.shape}")
    out = np.full(keypoints.shape, np.nan, dtype=np.float32)
    conf = np.zeros(confidence.shape, dtype=np.float32)
    for c, h in COCO_TO_H36M_DIRECT.items():
        out[..., h, :] = keypoints[..., c, :]
        conf[..., h] = confidence[..., c]

    hip_mid = (keypoints[..., 11, :] + keypoints[..., 12, :]) / 2.0  # NaN unless both seen
    shoulder_mid = (keypoints[..., 5, :] + keypoints[..., 6, :]) / 2.0
    nose = keypoints[..., 0, :]
    out[..., 0, :] = hip_mid
    out[..., 7, :] = spine_from_shoulder_mid * shoulder_mid + (1.0 - spine_from_shoulder_mid) * hip_mid
    out[..., 8, :] = shoulder_mid + thorax_toward_nose * (nose - shoulder_mid)
    # Head top: x from the mean of eyes and ears, y one eye-to-nose distance above the eyes
    # (the demos' rule), from whichever eyes and ears are seen.
    eyes = keypoints[..., 1:3, :]
    ears = keypoints[..., 3:5, :]
    head_x = _mean_of_seen(np.concatenate([eyes[..., 0], ears[..., 0]], axis=-1))
    eye_y = _mean_of_seen(eyes[..., 1])  # one eye is enough (profile views)
    out[..., 10, 0] = np.where(np.isnan(eye_y), np.nan, head_x)
    out[..., 10, 1] = 2.0 * eye_y - nose[..., 1]

    conf[..., 0] = confidence[..., [11, 12]].mean(axis=-1)
    conf[..., 8] = confidence[..., [5, 6]].mean(axis=-1)
    conf[..., 7] = (conf[..., 0] + conf[..., 8]) / 2.0
    conf[..., 10] = confidence[..., 1:5].mean(axis=-1)
    missing = np.isnan(out).any(axis=-1)
    out[missing] = np.nan
    conf[missing] = 0.0
    return out, conf


def synthesize_coco_like_h36m(keypoints: np.ndarray) -> np.ndarray:
    """Replace pelvis, spine and thorax of H36M-17 2D keypoints by the COCO conversion's rules.

    Training augmentation: the lifter then sees at training the synthesised joints it is fed
    in the wild. H36M's own nose stands in for COCO's nose; its head joint is left alone.
    Takes a numpy array (returns float32) or a torch tensor (returns a tensor on its device: the trainer's
    tensor data loop).
    """
    out = keypoints.clone() if hasattr(keypoints, "clone") else np.array(keypoints, dtype=np.float32, copy=True)
    hip_mid = (out[..., 1, :] + out[..., 4, :]) / 2.0
    shoulder_mid = (out[..., 11, :] + out[..., 14, :]) / 2.0
    nose = out[..., 9, :]
    out[..., 0, :] = hip_mid
    out[..., 7, :] = SPINE_FROM_SHOULDER_MID * shoulder_mid + (1.0 - SPINE_FROM_SHOULDER_MID) * hip_mid
    out[..., 8, :] = shoulder_mid + THORAX_TOWARD_NOSE * (nose - shoulder_mid)
    return out
