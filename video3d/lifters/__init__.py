"""2D-to-3D lifters: ``create_lifter(name, weights=...)``, like timm's ``create_model``.

Every module in this folder (but the runtime ones) is a model file that registers itself; they are
imported here, so a new lifter is one new file.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from pathlib import Path

from ..errors import Video3DError

from .base import CheckpointError, Lifter, load_checkpoint, new_model, resolve_device
from .registry import LifterSpec, UnknownLifterError, get_spec, list_lifters, register_lifter, spec_of

_RUNTIME_MODULES = {"base", "layers", "registry"}
for _module in pkgutil.iter_modules(__path__):
    if _module.name not in _RUNTIME_MODULES:
        importlib.import_module(f"{__name__}.{_module.name}")

WEIGHTS_ENV = "VIDEO3D_WEIGHTS_DIR"


class MissingWeightsError(Video3DError, FileNotFoundError):
    pass


def weights_dir() -> Path:
    """Where the shipped weights live: $VIDEO3D_WEIGHTS_DIR, the installed package, or the checkout."""
    if os.environ.get(WEIGHTS_ENV):
        return Path(os.environ[WEIGHTS_ENV])
    installed = Path(__file__).resolve().parent.parent / "weights"  # site-packages/video3d/weights
    if installed.is_dir():
        return installed
    return Path(__file__).resolve().parent.parent.parent / "weights"  # <checkout>/weights


def default_weights(name: str, frames: int | None = None) -> Path:
    """The shipped ``<name>_<frames>f.pt``. Without frames: the lifter's default window if that file is
    shipped, else the longest window that is (PoseFormer's default is 81 frames, but a CPU-trained 9-frame
    model may be all there is); if none is shipped, the default window's path (for the error message)."""
    spec = get_spec(name)
    folder = weights_dir()
    if frames is not None:
        return folder / f"{name}_{frames}f.pt"
    for f in [spec.default_frames, *sorted(spec.frames, reverse=True)]:
        if (folder / f"{name}_{f}f.pt").is_file():
            return folder / f"{name}_{f}f.pt"
    return folder / f"{name}_{spec.default_frames}f.pt"


def create_lifter(
    name: str,
    weights: str | os.PathLike | None = None,
    frames: int | None = None,
    device: str | None = "auto",
    pretrained: bool = True,
) -> Lifter:
    """Build a lifter by name.

    weights: a checkpoint path; None takes the shipped ``weights/<name>_<frames>f.pt``.
    pretrained=False builds a randomly initialised model (tests of mechanics only: never shipped).
    """
    spec = get_spec(name)
    if not pretrained:
        _, config, model = new_model(name, frames)
        return Lifter(spec, model, config, device=resolve_device(device))
    path = Path(weights) if weights is not None else default_weights(name, frames)
    if weights is None and not path.is_file():
        raise MissingWeightsError(
            f"no trained weights for {name}: {path} is missing; train them with `video3d train --lifter {name}` "
            f"or pass --weights PATH")
    lifter = load_checkpoint(path, device=device, expect=name)
    if frames is not None and lifter.frames != frames:
        raise CheckpointError(f"{path} is a {lifter.frames}-frame model, not {frames} frames")
    return lifter


__all__ = [
    "CheckpointError", "Lifter", "LifterSpec", "MissingWeightsError", "UnknownLifterError", "create_lifter",
    "default_weights", "get_spec", "list_lifters", "load_checkpoint", "new_model",
    "register_lifter", "spec_of", "weights_dir",
]
