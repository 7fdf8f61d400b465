"""Shared fixtures. Data, weights and videos come from ../shared beside the checkout; tests that
need them skip with a reason when it is absent, so a fresh clone still passes its own tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
H36M = SHARED / "data" / "h36m" / "data_3d_h36m_17j.npz"
DETECTOR = SHARED / "weights" / "yolov8n-pose_int8_openvino_model"
APART = SHARED / "videos" / "gastnet_apart.avi"
SAMPLE = ROOT / "samples" / "mannequin_walk.mp4"
SAMPLE_GT = ROOT / "samples" / "mannequin_walk_gt.npz"
WEIGHTS = ROOT / "weights" / "gastnet_27f.pt"


def need(path: Path, what: str, why: str = "../shared is absent") -> Path:
    if not path.exists():
        pytest.skip(f"{what} not found at {path} ({why})")
    return path


@pytest.fixture
def h36m_path() -> Path:
    return need(H36M, "Human3.6M 17-joint data")


@pytest.fixture
def detector_path() -> Path:
    need(DETECTOR, "the shared YOLO pose model")
    if importlib.util.find_spec("openvino") is None:
        pytest.skip("the shared YOLO model needs the openvino package (pip install '.[test]')")
    return DETECTOR


@pytest.fixture
def apart_video() -> Path:
    return need(APART, "the shared test video")


@pytest.fixture
def trained_weights() -> Path:
    return need(WEIGHTS, "the shipped GAST-Net weights", "not trained yet")


@pytest.fixture
def random_checkpoint(tmp_path) -> Path:
    """A randomly initialised GAST-Net checkpoint: for mechanics only, never for accuracy."""
    import torch

    from video3d.lifters import create_lifter

    torch.manual_seed(0)
    lifter = create_lifter("gastnet", pretrained=False, device="cpu")
    return lifter.save(tmp_path / "random_gastnet_27f.pt")


def tiny_h36m(path: Path, subjects=("S1", "S5", "S6", "S7", "S8", "S9", "S11"), frames: int = 120,
              seed: int = 0) -> Path:
    """A small dataset in VideoPose3D's format: real-looking poses (a skeleton walking in a circle)."""
    rng = np.random.default_rng(seed)
    from video3d.layouts import H36M17

    offsets = np.array([[0, 0, 0], [-.13, 0, 0], [0, 0, -.45], [0, 0, -.45], [.13, 0, 0], [0, 0, -.45], [0, 0, -.45],
                        [0, 0, .24], [0, 0, .25], [0, .05, .1], [0, -.03, .11], [.15, 0, 0], [0, 0, -.28],
                        [0, 0, -.25], [-.15, 0, 0], [0, 0, -.28], [0, 0, -.25]], float)
    data = {}
    for s in subjects:
        data[s] = {}
        for action in ("Walking 1", "Eating"):
            t = np.arange(frames) / 50
            pose = np.zeros((frames, 17, 3))
            for j, p in enumerate(H36M17.parents):
                wobble = 0.05 * np.sin(2 * np.pi * (t[:, None] + j / 17)) * np.array([1, 1, 0.2])
                pose[:, j] = (pose[:, p] if p >= 0 else 0) + offsets[j] + (wobble if p >= 0 else 0)
            pose[:, :, 0] += np.cos(t)[:, None] * 0.5
            pose[:, :, 1] += np.sin(t)[:, None] * 0.5
            pose[:, :, 2] += 0.95
            data[s][action] = (pose + rng.normal(0, 0.002, pose.shape)).astype(np.float32)
    np.savez(path, positions_3d=np.array(data, dtype=object), metadata=np.array({}, dtype=object))
    return path


@pytest.fixture
def tiny_dataset(tmp_path) -> Path:
    return tiny_h36m(tmp_path / "tiny_h36m.npz")
