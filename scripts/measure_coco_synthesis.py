"""Measure the COCO-17 -> H36M-17 synthesis rules on Human3.6M's own 2D projections.

COCO has no pelvis, spine or thorax; the conversion makes them from hips, shoulders and nose.
On Human3.6M (training subjects, all cameras, every 10th frame) this prints how far each rule's
2D point lies from the real joint, for the demos' coefficients and for the least-squares best ones.

    python scripts/measure_coco_synthesis.py ../shared/data/h36m/data_3d_h36m_17j.npz
"""

import sys

import numpy as np

from video3d.data.h36m import TRAIN_SUBJECTS, load_sequences


def main(path: str) -> None:
    kp = np.concatenate([s.keypoints_2d[::10] for s in load_sequences(path, TRAIN_SUBJECTS)])
    hip = (kp[:, 1] + kp[:, 4]) / 2
    shoulder = (kp[:, 11] + kp[:, 14]) / 2
    nose = kp[:, 9]
    err = lambda a, b: float(np.linalg.norm(a - b, axis=-1).mean())  # noqa: E731
    print(f"{len(kp)} poses; mean torso length {err(shoulder, hip):.1f} px (1000 px frames)")
    print(f"pelvis = hip midpoint: {err(kp[:, 0], hip):.2f} px")
    d, y = (shoulder - hip).ravel(), (kp[:, 7] - hip).ravel()
    a = float(d @ y / (d @ d))
    print(f"spine = a*shoulders + (1-a)*hips: a=0.5 {err(kp[:, 7], 0.5 * shoulder + 0.5 * hip):.2f} px; "
          f"best a={a:.3f} {err(kp[:, 7], a * shoulder + (1 - a) * hip):.2f} px")
    d, y = (nose - shoulder).ravel(), (kp[:, 8] - shoulder).ravel()
    b = float(d @ y / (d @ d))
    print(f"thorax = shoulders + b*(nose - shoulders): b=1/3 {err(kp[:, 8], shoulder + (nose - shoulder) / 3):.2f} px; "
          f"best b={b:.3f} {err(kp[:, 8], shoulder + b * (nose - shoulder)):.2f} px; "
          f"b=0 (shoulder midpoint) {err(kp[:, 8], shoulder):.2f} px")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/h36m/data_3d_h36m_17j.npz")
