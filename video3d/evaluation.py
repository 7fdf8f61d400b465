"""The standard Human3.6M protocol (``video3d evaluate``).

Test subjects S9 and S11, every frame at 50 fps, all four cameras. Each take is lifted whole, through
the same ``Lifter.predict`` that ``video3d lift`` uses (edge padding, flip test-time augmentation).
Errors are pooled over all frames of an action group (the name before the first space: 15 groups),
then the groups are averaged without weights.
P1 = MPJPE, P2 = P-MPJPE (per-frame similarity Procrustes), N-MPJPE (per-frame optimal scale),
MPJVE = error of the per-frame velocity (mm per frame at 50 fps).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .data.h36m import TEST_SUBJECTS, Sequence, load_sequences
from .lifters import Lifter
from .metrics import mpjve, n_mpjpe, p_mpjpe, per_joint_errors, procrustes_align
from .missing import drop_joint_spans
from .progress import Progress, stage

METRICS = ("mpjpe", "p_mpjpe", "n_mpjpe", "mpjve")


@dataclass
class ActionScore:
    frames: int
    mpjpe: float  # mm
    p_mpjpe: float
    n_mpjpe: float
    mpjve: float  # mm per frame


@dataclass
class EvaluationReport:
    lifter: str
    weights: str
    subjects: list[str]
    flip: bool
    perturbation: dict | None = None
    max_frames: int | None = None
    windows: str = "centre"  # how a sequence-to-sequence lifter's windows were placed (Lifter.predict)
    hop: int | None = None  # and, blended, how far apart
    actions: dict[str, ActionScore] = field(default_factory=dict)

    @property
    def average(self) -> dict[str, float]:
        return {m: float(np.mean([getattr(a, m) for a in self.actions.values()])) for m in METRICS}

    @property
    def frames(self) -> int:
        return int(sum(a.frames for a in self.actions.values()))

    def to_dict(self) -> dict:
        return {
            "lifter": self.lifter, "weights": self.weights, "subjects": self.subjects, "flip_tta": self.flip,
            "protocol": "Human3.6M, GT 2D (3D projected with each camera), every frame, all cameras; per action "
                        "group pooled over frames, then the unweighted mean over groups; mm (MPJVE: mm/frame at 50 fps)",
            "perturbation": self.perturbation, "max_frames_per_take": self.max_frames, "windows": self.windows,
            "hop": self.hop,
            "actions": {k: {m: (int(x) if m == "frames" else float(x)) for m, x in vars(v).items()}
                        for k, v in sorted(self.actions.items())},
            "average": self.average, "frames": self.frames,
        }


def predict_sequence(lifter: Lifter, seq: Sequence, flip: bool = True, windows: str = "blend",
                     hop: int | None = None) -> np.ndarray:
    """3D (N, 17, 3) for one take, exactly as ``video3d lift`` computes it."""
    return lifter.predict(seq.normalized_2d(), flip=flip, windows=windows, hop=hop)


def sequence_errors(predicted: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """Sums (not means) of the per-frame errors in mm, so that groups can be pooled over frames."""
    n = len(target)
    out = {
        "mpjpe": 1000 * per_joint_errors(predicted, target).mean(-1).sum(),
        "p_mpjpe": 1000 * p_mpjpe(predicted, target) * n,
        "n_mpjpe": 1000 * n_mpjpe(predicted, target) * n,
        "mpjve": 1000 * mpjve(predicted, target) * (n - 1) if n > 1 else 0.0,
        "frames": n, "velocity_frames": max(n - 1, 0),
    }
    return out


@dataclass(frozen=True)
class Perturbation:
    """Detector-like corruption of the GT 2D, to measure robustness (seeded: the same for every model).
    noise_px: std of Gaussian noise in pixels (1000 px frames); coco_synthesis: pelvis, spine and thorax
    made from hips, shoulders and nose as for YOLO's COCO keypoints; drift_px: std of a slowly varying offset
    per joint (detector bias that drifts over ~0.5 s); dropped_joints: spans of joints lost and filled by
    interpolation, as the pipeline fills missing detections."""

    noise_px: float = 0.0
    coco_synthesis: bool = False
    drift_px: float = 0.0
    dropped_joints: float = 0.0  # per 50-frame chunk and joint: the probability of a span lost and interpolated
    seed: int = 0

    @property
    def active(self) -> bool:
        return self.noise_px > 0 or self.coco_synthesis or self.drift_px > 0 or self.dropped_joints > 0

    def __call__(self, kp: np.ndarray, key: int) -> np.ndarray:
        from .layouts import synthesize_coco_like_h36m
        from .smoothing import savgol

        rng = np.random.default_rng([self.seed, key])
        out = np.array(kp, dtype=np.float32, copy=True)
        if self.coco_synthesis:
            out = synthesize_coco_like_h36m(out)
        if self.drift_px > 0 and len(out) >= 25:
            walk = rng.normal(0, 1, out.shape)
            drift = savgol(savgol(walk, 25, 0), 25, 0)  # low-pass: varies over ~0.5 s at 50 fps
            out += drift / (drift.std() + 1e-9) * self.drift_px
        if self.noise_px > 0:
            out += rng.normal(0, self.noise_px, out.shape).astype(np.float32)
        if self.dropped_joints > 0:
            n = len(out) // 50 * 50
            chunks = out[:n].reshape(-1, 50, *out.shape[1:])  # a view: filled in place
            drop_joint_spans(chunks, rng, self.dropped_joints, max_len=25)
        return out


# The detector-like condition used across the project (benchmarks, ship_weights' check): 4 px noise, 4 px drift,
# COCO-made pelvis/spine/thorax.
DETECTOR_LIKE = Perturbation(noise_px=4.0, coco_synthesis=True, drift_px=4.0)


def evaluate(lifter: Lifter, data: str | Path, subjects=TEST_SUBJECTS, actions: list[str] | None = None,
             cameras: list[str] | None = None, flip: bool = True, data_2d: str | Path | None = None,
             perturb: Perturbation | None = None, max_frames: int | None = None, windows: str = "blend",
             hop: int | None = None, progress: Progress | None = None) -> EvaluationReport:
    """The protocol; ``perturb`` corrupts the 2D (robustness), ``max_frames`` keeps each take's first frames
    (quick runs; not the protocol). ``windows`` places a sequence-to-sequence lifter's windows (see
    ``Lifter.predict``): "centre" is the papers' protocol, "blend" (what ``video3d lift`` does) is faster."""
    sequences = protocol_sequences(data, subjects, actions, cameras, data_2d, perturb, max_frames)
    return evaluate_sequences(lifter, sequences, subjects, flip, perturb, max_frames, windows, hop, progress)


def protocol_sequences(data: str | Path, subjects=TEST_SUBJECTS, actions: list[str] | None = None,
                   cameras: list[str] | None = None, data_2d: str | Path | None = None,
                   perturb: Perturbation | None = None, max_frames: int | None = None) -> list[Sequence]:
    """The takes of an evaluation, cut to ``max_frames`` and perturbed (seeded by their order), ready to lift."""
    sequences = load_sequences(data, list(subjects), actions=actions, cameras=cameras, path_2d=data_2d)
    if max_frames is not None:
        for seq in sequences:
            seq.keypoints_2d, seq.positions_3d = seq.keypoints_2d[:max_frames], seq.positions_3d[:max_frames]
    if perturb is not None and perturb.active:
        for key, seq in enumerate(sequences):
            seq.keypoints_2d = perturb(seq.keypoints_2d, key)
    return sequences


def evaluate_sequences(lifter: Lifter, sequences: list[Sequence], subjects=TEST_SUBJECTS, flip: bool = True,
                       perturb: Perturbation | None = None, max_frames: int | None = None, windows: str = "blend",
                       hop: int | None = None, progress: Progress | None = None) -> EvaluationReport:
    """Lift every take and pool the errors per action group (``evaluate`` on takes already loaded)."""
    seq2seq = lifter.spec.windowing.seq2seq
    sums: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    total = sum(len(s.positions_3d) for s in sequences)
    with stage(progress, "evaluate", total) as bar:
        for seq in sequences:
            pred = predict_sequence(lifter, seq, flip, windows, hop)
            for k, v in sequence_errors(pred, seq.positions_3d).items():
                sums[seq.action_group][k] += v
            bar.advance(len(seq.positions_3d))
    report = EvaluationReport(lifter=lifter.name, weights=str(lifter.weights_path or "untrained"),
                              subjects=list(subjects), flip=flip,
                              perturbation=vars(perturb) if perturb is not None and perturb.active else None,
                              max_frames=max_frames, windows=windows if seq2seq else "centre",
                              hop=(hop or lifter.default_hop) if seq2seq and windows == "blend" else None)
    for group, s in sums.items():
        n, nv = s["frames"], max(s["velocity_frames"], 1)
        report.actions[group] = ActionScore(int(n), s["mpjpe"] / n, s["p_mpjpe"] / n, s["n_mpjpe"] / n,
                                            s["mpjve"] / nv)
    return report


# --------------------------------------------------------------------------------------------
# HumanEva-I: a cross-dataset check (``video3d evaluate --dataset humaneva``)
# --------------------------------------------------------------------------------------------
@dataclass
class HumanEvaReport:
    lifter: str
    weights: str
    subjects: list[str]
    flip: bool
    rescale: bool
    actions: dict[str, tuple[int, float]] = field(default_factory=dict)  # group -> (frames, P-MPJPE mm)
    per_subject: dict[str, float] = field(default_factory=dict)  # "Walking Validate/S1" -> P-MPJPE mm

    @property
    def average(self) -> float:
        return float(np.mean([e for _, e in self.actions.values()]))

    @property
    def frames(self) -> int:
        return int(sum(n for n, _ in self.actions.values()))

    def to_dict(self) -> dict:
        return {"lifter": self.lifter, "weights": self.weights, "subjects": self.subjects, "flip_tta": self.flip,
                "rescale": self.rescale,
                "protocol": "HumanEva-I (VideoPose3D's files), GT 2D of the three colour cameras, every frame of the "
                            "Walking, Jog and Box chunks; P-MPJPE on the 14 joints HumanEva shares with Human3.6M, "
                            "pooled over frames per action, then the mean over actions; mm",
                "actions": {k: {"frames": n, "p_mpjpe": e} for k, (n, e) in sorted(self.actions.items())},
                "per_subject": dict(sorted(self.per_subject.items())), "average_p_mpjpe": self.average,
                "frames": self.frames}


def evaluate_humaneva(lifter: Lifter, data_3d: str | Path, data_2d: str | Path, subjects=None, actions=None,
                      flip: bool = True, rescale: bool = True, windows: str = "blend",
                      progress: Progress | None = None) -> HumanEvaReport:
    """Lift HumanEva-I's GT 2D (made Human3.6M-17, ``data.humaneva.to_h36m17``), normalised by the frame width as
    ``lift`` does and, with ``rescale``, scaled to the lifter's typical input size as ``lift`` does (HumanEva's
    cameras see people at other sizes than Human3.6M's); P-MPJPE on the shared joints."""
    from .data import humaneva as he
    from .geometry import fit_scale, normalize_screen_coordinates, rescale_about_root

    takes = he.load_takes(data_3d, data_2d, subjects or he.TEST_SUBJECTS, actions or he.TEST_ACTIONS)
    sums: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    per_subject: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    shared = list(he.H36M_OF_HE15)
    with stage(progress, "evaluate", sum(len(t.positions_3d) for t in takes)) as bar:
        for take in takes:
            x = normalize_screen_coordinates(he.to_h36m17(take.keypoints_2d), *he.FRAME_SIZE)
            if rescale:
                x = rescale_about_root(x, fit_scale(x, lifter.input_spread))
            pred = lifter.predict(x, flip=flip, windows=windows)[:, shared]  # (N, 15, 3) in HumanEva's order
            err = 1000 * np.linalg.norm(procrustes_align(pred, take.positions_3d) - take.positions_3d, axis=-1).mean(-1)
            for table, key in ((sums, take.action_group), (per_subject, f"{take.action_group} {take.subject}")):
                table[key][0] += len(err)
                table[key][1] += float(err.sum())
            bar.advance(len(err))
    report = HumanEvaReport(lifter.name, str(lifter.weights_path or "untrained"),
                            list(subjects or he.TEST_SUBJECTS), flip, rescale)
    report.actions = {k: (int(n), s / n) for k, (n, s) in sums.items()}
    report.per_subject = {k: s / n for k, (n, s) in per_subject.items()}
    return report
