"""PoseFormer: spatial-temporal transformer for 3D pose (Zheng et al., ICCV 2021).

One readable file. Reference: the authors' code (zczcwh/PoseFormer) and ../shared/MODELS.md.

Input (B, F, J, 2) normalised 2D keypoints, F = 9, 27 or 81 frames centred on the target frame ->
output (B, 1, J, 3): the centre frame's root-relative 3D pose, metres.

1. Spatial transformer, per frame: each joint's (x, y) -> Linear(2 -> 32) + a learned joint
   embedding, 4 pre-norm blocks of width 32 attending across the 17 joints.
2. Temporal transformer: each frame's 17 x 32 features flattened to 544, + a learned frame
   embedding, 4 pre-norm blocks of width 544 attending across the F frames.
3. A learned weighted mean over the frames (a Conv1d from F channels to 1), then
   LayerNorm + Linear(544 -> 17 * 3).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..windowing import Centre
from .layers import DropPath
from .registry import LifterSpec, register_lifter


@dataclass
class PoseFormerConfig:
    frames: int = 81
    num_joints: int = 17
    in_features: int = 2
    spatial_dim: int = 32  # per joint; the temporal width is num_joints * spatial_dim = 544
    depth: int = 4  # blocks in each of the two transformers
    heads: int = 8
    mlp_ratio: float = 2.0
    qkv_bias: bool = True
    dropout: float = 0.0
    attention_dropout: float = 0.0
    drop_path: float = 0.1  # stochastic depth of the temporal blocks, rising linearly to this over the blocks
    # Stochastic depth of the spatial blocks, and over what it draws: "frame" (the authors' code: the spatial
    # transformer runs on B*F rows, so each frame of a window loses its branch on its own) or "window" (all F
    # frames of a window together). Per frame, the temporal transformer learns to lean on the frames whose
    # spatial branch was dropped; in eval mode there are none: the GPU-trained 81f model gave 55 mm on training
    # windows in train mode and 92 mm in eval mode (scripts/poseformer_droppath.py probe). Fine-tuning it with
    # 0.1 per window or 0 gave the same validation error (77 mm on average over two seeds each, 98 per frame);
    # 0 leaves eval and train mode closest (1 mm apart, 7 per window): the default.
    spatial_drop_path: float = 0.0
    spatial_drop_path_per: str = "window"

    def __post_init__(self):
        if self.spatial_drop_path_per not in ("frame", "window"):
            raise ValueError(f"spatial_drop_path_per is 'frame' or 'window', not {self.spatial_drop_path_per!r}")

    @classmethod
    def for_frames(cls, frames: int, **overrides) -> "PoseFormerConfig":
        if frames not in (9, 27, 81):
            raise ValueError(f"PoseFormer has 9, 27 or 81 frames, not {frames}")
        return cls(**{"frames": frames, **overrides})


def upgrade_config(saved: dict) -> dict:
    """A checkpoint saved before the spatial stochastic depth had its own fields used ``drop_path`` for both
    transformers, drawn per frame (the authors' code): say so, so that its config is what it was trained with."""
    if "spatial_drop_path" not in saved:
        saved = {**saved, "spatial_drop_path": saved.get("drop_path", 0.1), "spatial_drop_path_per": "frame"}
    return saved


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, qkv_bias: bool, attention_dropout: float, dropout: float):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.attention_dropout = attention_dropout
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        H = self.heads
        q, k, v = self.qkv(x).view(B, N, 3, H, C // H).permute(2, 0, 3, 1, 4)  # 3 x (B, H, N, C/H)
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attention_dropout if self.training else 0.0)
        y = y.transpose(1, 2).reshape(B, N, C)  # heads side by side: (B, N, C)
        return self.drop(self.proj(y))


class Block(nn.Module):
    """Pre-norm transformer block: x + attention(LN(x)), then x + MLP(LN(x)) (GELU)."""

    def __init__(self, dim: int, cfg: PoseFormerConfig, drop_path: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, cfg.heads, cfg.qkv_bias, cfg.attention_dropout, cfg.dropout)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        hidden = int(dim * cfg.mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(cfg.dropout), nn.Linear(hidden, dim),
                                 nn.Dropout(cfg.dropout))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor, groups: int = 1) -> torch.Tensor:
        # groups: consecutive rows of x that share one stochastic-depth draw (see DropPath)
        x = x + self.drop_path(self.attn(self.norm1(x)), groups)
        return x + self.drop_path(self.mlp(self.norm2(x)), groups)


class PoseFormer(nn.Module):
    def __init__(self, cfg: PoseFormerConfig):
        super().__init__()
        self.cfg = cfg
        J, Cs = cfg.num_joints, cfg.spatial_dim
        Ct = J * Cs
        rates = torch.linspace(0, cfg.drop_path, cfg.depth, device="cpu").tolist()
        spatial_rates = torch.linspace(0, cfg.spatial_drop_path, cfg.depth, device="cpu").tolist()
        self.joint_embed = nn.Linear(cfg.in_features, Cs)
        self.joint_pos = nn.Parameter(torch.zeros(1, J, Cs))
        self.spatial_blocks = nn.ModuleList([Block(Cs, cfg, r) for r in spatial_rates])
        self.spatial_norm = nn.LayerNorm(Cs, eps=1e-6)
        self.frame_pos = nn.Parameter(torch.zeros(1, cfg.frames, Ct))
        self.temporal_blocks = nn.ModuleList([Block(Ct, cfg, r) for r in rates])
        self.temporal_norm = nn.LayerNorm(Ct, eps=1e-6)
        self.weighted_mean = nn.Conv1d(cfg.frames, 1, kernel_size=1)  # learned weights over the frames
        self.head = nn.Sequential(nn.LayerNorm(Ct), nn.Linear(Ct, J * 3))
        self.drop = nn.Dropout(cfg.dropout)

    @property
    def receptive_field(self) -> int:
        return self.cfg.frames

    @property
    def window_offsets(self) -> list[int]:
        half = self.cfg.frames // 2
        return list(range(-half, half + 1))

    output_index = 0  # the one output frame is the window's centre

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, J, C = x.shape
        if T != self.cfg.frames:
            raise ValueError(f"PoseFormer-{self.cfg.frames} takes windows of {self.cfg.frames} frames, got {T}")
        x = x.reshape(B * T, J, C)  # every frame on its own: (B*T, J, 2)
        x = self.drop(self.joint_embed(x) + self.joint_pos)  # (B*T, J, Cs)
        groups = T if self.cfg.spatial_drop_path_per == "window" else 1  # the T rows of a window are consecutive
        for block in self.spatial_blocks:
            x = block(x, groups)  # attention across the joints of a frame
        x = self.spatial_norm(x).reshape(B, T, -1)  # a token per frame: (B, T, J*Cs)
        x = self.drop(x + self.frame_pos)
        for block in self.temporal_blocks:
            x = block(x)  # attention across the frames
        x = self.temporal_norm(x)  # (B, T, J*Cs)
        x = self.weighted_mean(x)  # frames as Conv1d channels: (B, 1, J*Cs)
        return self.head(x).view(B, 1, J, 3)  # (B, 1, J, 3)


register_lifter(LifterSpec(
    name="poseformer",
    title="PoseFormer (Zheng et al. 2021)",
    model_cls=PoseFormer,
    config_cls=PoseFormerConfig,
    config_for_frames=PoseFormerConfig.for_frames,
    windowing=Centre(),
    frames=(9, 27, 81),
    default_frames=81,
    paper_params={81: 9.6e6},  # the paper gives the 81-frame count only
    code_license="MIT (authors' reference code); this reimplementation AGPL-3.0",
    recipes={
        # zczcwh/PoseFormer as run for its published GT-2D figure (README: -k gt -f 81 -lr 0.0004 -lrd 0.99;
        # arguments.py: batch 512, 200 epochs; AdamW weight decay 0.1): every frame a window centre, flip only
        "authors-code": dict(optimizer="adamw", lr=4e-4, lr_decay=0.99, weight_decay=0.1, batch_size=512, epochs=200,
                             subsample=1, flip=True),
        # the paper's text (section 4.1): batch 1024, lr 2e-4 decayed by 0.98 per epoch, 130 epochs
        "paper": dict(optimizer="adamw", lr=2e-4, lr_decay=0.98, weight_decay=0.1, batch_size=1024, epochs=130),
    },
    upgrade_config=upgrade_config,
    regularisation_fields=("dropout", "attention_dropout", "drop_path", "spatial_drop_path", "spatial_drop_path_per"),
    output_head="head",
))
