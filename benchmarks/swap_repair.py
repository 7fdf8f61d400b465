"""How well does ``video3d.repair.fix_left_right`` undo short left/right label flips, and what does it break?

    python benchmarks/swap_repair.py [--subjects S9] [--cameras 0] [--step 1,2] [--noise 4] [--rate 0.1]
                                     [--lengths 1-8] [--disagree D] [--switch S] [--smooth W]

Takes the true 2D of Human3.6M (projected mocap, pixels of the 1000x1000 frames, h36m17 layout), adds Gaussian
noise (``--noise`` px, like a detector's jitter) and injects random flips of the left and right labels: the whole
body, the legs only (knees, ankles) or the arms only (elbows, wrists), each 1-8 frames long (``--lengths``),
covering about ``--rate`` of the frames. Then repairs every take and prints, per frame step (1: Human3.6M's
50 fps; 2: 25 fps, a video's rate), the two figures: the share of flipped frames restored exactly (every group
labelled as in the truth) and the share of clean frames wrongly changed (any group exchanged); with the
restored share per flip kind and among the visible flips, the same takes repaired without flips, and the
flipped frames' mean joint error before and after. Longer ``--lengths`` show which flips count as short.
One run on this project's machine, 2 s a setting.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from video3d.data.h36m import load_sequences  # noqa: E402
from video3d.repair import DISAGREE, GROUPS, SMOOTH, SWITCH, fix_left_right, person_size, swap_pairs  # noqa: E402

KINDS = {"body": (True, True, True), "legs": (False, True, False), "arms": (False, False, True)}


def inject(kp: np.ndarray, rng: np.random.Generator, rate: float, min_len: int = 1, max_len: int = 8):
    """Flip random stretches; returns the flipped keypoints, the truth (T, 3) per group and the kind per frame."""
    T = len(kp)
    pairs = swap_pairs("h36m17")
    truth = np.zeros((T, 3), bool)
    kind = np.full(T, "", object)
    taken = np.zeros(T, bool)
    target = int(rate * T)
    while taken.sum() < target:
        length = int(rng.integers(min_len, max_len + 1))
        start = int(rng.integers(0, T - length + 1))
        if taken[max(0, start - 2):start + length + 2].any():  # flips apart, so each one is one event
            continue
        name = list(KINDS)[int(rng.integers(len(KINDS)))]
        taken[start:start + length] = True
        truth[start:start + length] = KINDS[name]
        kind[start:start + length] = name
    out = kp.copy()
    for g, group in enumerate(GROUPS):
        for left, right in pairs[group]:
            rows = truth[:, g]
            out[rows, left], out[rows, right] = kp[rows, right], kp[rows, left]
    return out, truth, kind


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT.parent / "shared/data/h36m/data_3d_h36m_17j.npz"))
    parser.add_argument("--subjects", default="S9")
    parser.add_argument("--cameras", default="0")
    parser.add_argument("--step", default="1,2", help="frame steps: 1 = 50 fps, 2 = 25 fps")
    parser.add_argument("--noise", type=float, default=4.0, help="Gaussian noise, px")
    parser.add_argument("--rate", type=float, default=0.1, help="share of the frames flipped")
    parser.add_argument("--disagree", type=float, default=DISAGREE)
    parser.add_argument("--switch", type=float, default=SWITCH)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smooth", type=float, default=SMOOTH, help="weight of the constant-velocity term")
    parser.add_argument("--lengths", default="1-8", help="flip lengths in frames, MIN-MAX")
    args = parser.parse_args()
    lo, hi = (int(v) for v in args.lengths.split("-"))
    start = time.perf_counter()
    seqs = load_sequences(args.data, args.subjects.split(","), cameras=args.cameras.split(","))
    print(f"{len(seqs)} takes ({args.subjects}, camera(s) {args.cameras}); noise {args.noise:g} px; flips of {lo}-{hi} "
          f"frames on {args.rate:.0%} of the frames; disagree {args.disagree:g}, switch {args.switch:g}, "
          f"smooth {args.smooth:g}")
    for step in (int(s) for s in args.step.split(",")):
        rng = np.random.default_rng(args.seed)
        flipped = restored = clean = changed = clean_take_changed = frames = visible = visible_restored = 0
        per_kind = {k: [0, 0] for k in KINDS}
        error_before = error_after = 0.0
        repair_s = 0.0
        for seq in seqs:
            kp = seq.keypoints_2d[::step].astype(np.float32)
            kp = kp + rng.normal(0.0, args.noise, kp.shape).astype(np.float32)
            conf = np.ones(kp.shape[:2], np.float32)
            bad, truth, kind = inject(kp, rng, args.rate, lo, hi)
            t0 = time.perf_counter()
            fixed, _, swapped = fix_left_right(bad, conf, "h36m17", disagree=args.disagree, switch=args.switch,
                                               smooth=args.smooth)
            repair_s += time.perf_counter() - t0
            ok = (swapped == truth).all(1)
            is_flipped = truth.any(1)
            flipped += is_flipped.sum()
            restored += (ok & is_flipped).sum()
            clean += (~is_flipped).sum()
            changed += (~ok & ~is_flipped).sum()
            for k in KINDS:
                per_kind[k][0] += (kind == k).sum()
                per_kind[k][1] += (ok & (kind == k)).sum()
            size = person_size(kp, "h36m17")
            # a visible flip: the flipped joints lie a tenth of the torso or more from their true places, on average
            moved = np.linalg.norm(bad - kp, axis=-1)  # 0 but for the flipped joints
            mean_moved = moved.sum(1) / np.maximum((moved > 0).sum(1), 1)
            shown = is_flipped & (mean_moved >= 0.1 * size)
            visible += shown.sum()
            visible_restored += (ok & shown).sum()
            error_before += np.linalg.norm(bad - kp, axis=-1)[is_flipped].mean(1).sum() / size
            error_after += np.linalg.norm(fixed - kp, axis=-1)[is_flipped].mean(1).sum() / size
            clean_take_changed += fix_left_right(kp, conf, "h36m17", disagree=args.disagree,
                                                 switch=args.switch, smooth=args.smooth)[2].any(1).sum()
            frames += len(kp)
        kinds = ", ".join(f"{k} {r / max(n, 1):.1%}" for k, (n, r) in per_kind.items())
        print(f"step {step} ({50 / step:g} fps), {frames} frames:")
        print(f"  flipped frames restored:      {restored / flipped:6.1%} ({restored}/{flipped}; {kinds})")
        print(f"  of those, the visible flips:  {visible_restored / visible:6.1%} ({visible_restored}/{visible}; the "
              f"flipped joints 0.1 torso or more from their true places)")
        print(f"  clean frames wrongly changed: {changed / clean:6.2%} ({changed}/{clean})")
        print(f"  the same takes without flips: {clean_take_changed / frames:6.2%} of the frames changed "
              f"({clean_take_changed})")
        print(f"  flipped frames' mean joint error, torso lengths: {error_before / flipped:.3f} before, "
              f"{error_after / flipped:.3f} after; repair at {frames / repair_s:.0f} frames/s")
    print(f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
