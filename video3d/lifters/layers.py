"""Layers shared by several model files."""

from __future__ import annotations

import torch
import torch.nn as nn


class DropPath(nn.Module):
    """Stochastic depth: while training, drop a whole residual branch per sample (and rescale the rest).

    ``groups``: consecutive rows of the batch axis that share one draw. PoseFormer's spatial transformer sees
    (B*T, J, C), a row per frame; ``groups=T`` drops a window's spatial branch in all its frames at once
    instead of frame by frame."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor, groups: int = 1) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        N = x.shape[0]
        keep = torch.rand(N // groups, device=x.device) >= self.p  # one draw per group of rows: (N/groups,)
        keep = keep.repeat_interleave(groups).view(N, *([1] * (x.ndim - 1)))  # back to one per row: (N, 1, ...)
        return x * keep / (1.0 - self.p)
