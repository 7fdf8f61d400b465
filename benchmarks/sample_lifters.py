"""The synthetic sample (samples/mannequin_walk.mp4, known truth) through the int8 YOLO once, then lifted by each
checkpoint given, with ``lift``'s defaults (as ``reconstruct`` does):

    python benchmarks/sample_lifters.py weights/gastnet_27f.pt [OTHER_GASTNET.pt ...]

Prints MPJPE, P-MPJPE (mm), the size ratio and the share of frames with left and right exchanged in 3D. The
detection is kept in benchmarks/.wild_cache/sample_yolo.npz.
"""

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.wild import CACHE, SHARED_DETECTOR, lift_3d, pose_metrics  # noqa: E402


def main() -> None:
    from video3d.lifters import create_lifter, load_checkpoint
    from video3d.pipeline import detect
    from video3d.results import load_npz

    cache = CACHE / "sample_yolo.npz"
    if cache.is_file():
        result = load_npz(cache)
    else:
        result = detect(ROOT / "samples" / "mannequin_walk.mp4", detector=str(SHARED_DETECTOR), persons=1, device="cpu")
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(cache, **result.to_arrays())
    with np.load(ROOT / "samples" / "mannequin_walk_gt.npz") as gt:
        truth = gt["keypoints_3d"].astype(np.float64)
    for path in sys.argv[1:]:
        name = load_checkpoint(path).spec.name
        m = pose_metrics(lift_3d(result, create_lifter(name, weights=path, device="cpu"), "cpu"), truth)
        print(f"{path}: MPJPE {m['mpjpe']:.1f} mm, P-MPJPE {m['p_mpjpe']:.1f} mm, scale {m['scale']:.2f}, "
              f"left/right exchanged in {m['swap_3d']:.1%} of frames ({m['valid']} frames)")


if __name__ == "__main__":
    main()
