"""The lifter registry, in the manner of timm's: each model file registers a ``LifterSpec``.

Adding a lifter is one file in ``video3d/lifters/``: define the config dataclass and the model and
call ``register_lifter``; the package imports every module in the folder, so nothing else changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch.nn as nn

from ..errors import Video3DError
from ..windowing import Windowing


@dataclass(frozen=True)
class LifterSpec:
    name: str
    title: str
    model_cls: type[nn.Module]
    config_cls: type
    config_for_frames: Callable[..., object]
    # how the model maps windows of 2D frames to 3D frames, and so how it is trained and run
    # (``video3d.windowing``: Dense for GAST-Net, Centre for PoseFormer, SequenceToSequence for STCFormer)
    windowing: Windowing
    frames: tuple[int, ...]  # the window lengths the paper defines
    default_frames: int
    paper_params: dict[int, float]  # parameter count by frames, from the paper / MODELS.md
    code_license: str
    # named training settings (TrainConfig fields), the default first; e.g. {"paper": ..., "authors-code": ...}
    recipes: dict[str, dict] = field(default_factory=dict)
    renamed_config_fields: dict = field(default_factory=dict)  # {old name in saved checkpoints: today's name}
    # saved config dict -> today's: fills fields that older checkpoints lack with what they were trained with
    upgrade_config: Callable[[dict], dict] | None = None
    # config fields that change training only (dropout, stochastic depth), not the weights' shapes: fine-tuning
    # (``TrainConfig.init_from``) may change them
    regularisation_fields: tuple[str, ...] = ()
    output_head: str = ""  # the module that writes the 3D coordinates: kept in float32 under bf16 training


    @property
    def recipe(self) -> dict:
        """The default training settings."""
        return next(iter(self.recipes.values()), {})

    def get_recipe(self, name: str | None) -> dict:
        if name is None:
            return self.recipe
        if name not in self.recipes:
            raise UnknownRecipeError(f"{self.name} has no recipe {name!r}; its recipes: {', '.join(self.recipes)}")
        return self.recipes[name]


_REGISTRY: dict[str, LifterSpec] = {}


def register_lifter(spec: LifterSpec) -> LifterSpec:
    if spec.name in _REGISTRY and _REGISTRY[spec.name] is not spec:
        raise ValueError(f"a lifter named {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def list_lifters() -> list[str]:
    return sorted(_REGISTRY)


def get_spec(name: str) -> LifterSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownLifterError(name) from None


def spec_of(model: nn.Module) -> LifterSpec:
    """The registered lifter whose model class ``model`` is (a ValueError if none)."""
    for spec in _REGISTRY.values():
        if isinstance(model, spec.model_cls):
            return spec
    raise ValueError(f"{type(model).__name__} is not a registered lifter")


class UnknownRecipeError(Video3DError, ValueError):
    exit_code = 2


class UnknownLifterError(Video3DError, ValueError):
    def __init__(self, name: str):
        super().__init__(f"unknown lifter {name!r}; valid lifters: {', '.join(list_lifters())}")
