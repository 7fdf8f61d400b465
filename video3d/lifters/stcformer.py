"""STCFormer: spatio-temporal criss-cross attention (Tang et al., CVPR 2023).

One readable file. Reference: the authors' code (zhenhuat/STCFormer) and ../shared/MODELS.md.

Input (B, T, J, 2): T = 27, 81 or 243 frames sampled every ``t_downsample`` video frames (3 by default,
so "27" spans 79 video frames) -> output (B, T, J, 3): a root-relative 3D pose for every sampled frame
(sequence to sequence). ``t_downsample`` is the authors' ``--t_downsample``; their ``-s/--stride`` is
something else (the step between training window centres; with ``-b 128 -s 3`` their batch is
``128 // 3 = 42`` windows). Checkpoints that call it ``stride`` (video3d before 2026-11-23) still load.

Their test protocol: one window centred on every frame, flip averaged, only the centre output scored; that
is ``Lifter.predict(windows="centre")``. ``windows="blend"`` (video3d's own, faster) uses every output of
windows placed ``hop`` samples apart, blended with weights that favour each window's centre (see
``video3d.lifters.base``). Either way the 3D of video frame i is the 3D of frame i: the authors' demo
showed the first output of each window and lagged by 13 frames.

Each of the 6 blocks: pre-LayerNorm, one qkv projection, channels split in half. One half attends
across the 17 joints within each frame, the other across the T frames of each joint, each with
8 heads and the authors' scale (C/2)^-0.5. Both halves add a structure-enhanced positional term to the
attention output: a depthwise 3x3 convolution over (time, joint) of their values, plus a learned
embedding of 5 body parts (torso, right leg, left leg, left arm, right arm). The authors' code scales
the part embedding by 1e-4 (spatial) and 1e-9 (temporal) behind DropPath(0.5); we keep that, since
their numbers come from it. Halves concatenated -> projection -> residual; then a pre-LN MLP (4C,
GELU, dropout 0.1, no biases) with a residual.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..windowing import SequenceToSequence
from .layers import DropPath
from .registry import LifterSpec, register_lifter

BODY_PARTS = (0, 1, 1, 1, 2, 2, 2, 0, 0, 0, 0, 3, 3, 3, 4, 4, 4)  # H36M-17 joint -> part


@dataclass
class STCFormerConfig:
    frames: int = 27  # sampled frames per window
    t_downsample: int = 3  # video frames between two sampled frames (the authors' --t_downsample)
    channels: int = 256  # 512 for STCFormer-L
    blocks: int = 6
    heads: int = 8  # per half
    mlp_ratio: int = 4
    dropout: float = 0.1
    part_drop_path: float = 0.5
    num_joints: int = 17
    in_features: int = 2

    @classmethod
    def for_frames(cls, frames: int, **overrides) -> "STCFormerConfig":
        if frames not in (27, 81, 243):
            raise ValueError(f"STCFormer has 27, 81 or 243 frames, not {frames}")
        return cls(**{"frames": frames, **overrides})


RENAMED_FIELDS = {"stride": "t_downsample"}  # old checkpoint config name -> today's


class CrissCrossAttention(nn.Module):
    def __init__(self, cfg: STCFormerConfig):
        super().__init__()
        C = cfg.channels
        self.heads = cfg.heads
        self.scale = (C // 2) ** -0.5
        self.norm = nn.LayerNorm(C)
        self.qkv = nn.Linear(C, 3 * C)
        self.proj = nn.Linear(C, C)
        # structure-enhanced positional embedding
        self.conv_spatial = nn.Conv2d(C // 2, C // 2, 3, padding=1, groups=C // 2)  # over (time, joint)
        self.conv_temporal = nn.Conv2d(C // 2, C // 2, 3, padding=1, groups=C // 2)
        self.part_embed = nn.Embedding(5, C // 2 // cfg.heads)
        self.register_buffer("parts", torch.tensor(BODY_PARTS), persistent=False)
        self.part_drop = DropPath(cfg.part_drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, J, C = x.shape
        H, D = self.heads, C // 2 // self.heads
        q, k, v = self.qkv(self.norm(x)).chunk(3, dim=-1)  # (B, T, J, C) each
        (qs, qt), (ks, kt), (vs, vt) = q.chunk(2, -1), k.chunk(2, -1), v.chunk(2, -1)  # halves: (B, T, J, C/2)

        # Attention on 4-D (batch, heads, sequence, D) tensors: 5-D ones fall back to PyTorch's slow
        # reference ("math") attention on the CPU; these shapes take the fused kernel (2-3x faster there).
        def heads_over_joints(a):  # (B, T, J, C/2) -> (B*T, H, J, D): attend across J (a view)
            return a.reshape(B * T, J, H, D).transpose(1, 2)

        def heads_over_frames(a):  # (B, T, J, C/2) -> (B*J, H, T, D): attend across T (a copy)
            return a.reshape(B, T, J, H, D).permute(0, 2, 3, 1, 4).reshape(B * J, H, T, D)

        # depthwise conv over (time, joint) of the values, channels first: (B, C/2, T, J)
        conv_s = self.conv_spatial(vs.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)  # (B, T, J, C/2)
        conv_t = self.conv_temporal(vt.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)  # (B, T, J, C/2)
        part = self.part_drop(self.part_embed(self.parts)[None])  # (1, J, D)

        ys = F.scaled_dot_product_attention(heads_over_joints(qs), heads_over_joints(ks), heads_over_joints(vs),
                                            scale=self.scale)  # (B*T, H, J, D)
        ys = ys.transpose(1, 2).reshape(B, T, J, H, D)  # (B, T, J, H, D)
        ys = ys + conv_s.view(B, T, J, H, D) + 1e-4 * part[:, :, None]  # part broadcasts over (B, T, H)
        yt = F.scaled_dot_product_attention(heads_over_frames(qt), heads_over_frames(kt), heads_over_frames(vt),
                                            scale=self.scale)  # (B*J, H, T, D)
        yt = yt.view(B, J, H, T, D).permute(0, 3, 1, 2, 4)  # (B, T, J, H, D)
        yt = yt + conv_t.view(B, T, J, H, D) + 1e-9 * part[:, :, None]
        y = torch.cat([ys, yt], dim=-1)  # per head: spatial D then temporal D: (B, T, J, H, 2D)
        y = y.reshape(B, T, J, C)  # heads side by side: (B, T, J, C)
        return x + self.proj(y)


class STCBlock(nn.Module):
    def __init__(self, cfg: STCFormerConfig):
        super().__init__()
        C = cfg.channels
        self.attention = CrissCrossAttention(cfg)
        self.norm = nn.LayerNorm(C)
        self.mlp = nn.Sequential(nn.Linear(C, cfg.mlp_ratio * C, bias=False), nn.GELU(), nn.Dropout(cfg.dropout),
                                 nn.Linear(cfg.mlp_ratio * C, C, bias=False), nn.Dropout(cfg.dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.attention(x)  # includes its residual
        return x + self.mlp(self.norm(x))


class STCFormer(nn.Module):
    def __init__(self, cfg: STCFormerConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Linear(cfg.in_features, cfg.channels, bias=False)
        self.blocks = nn.ModuleList([STCBlock(cfg) for _ in range(cfg.blocks)])
        self.head = nn.Linear(cfg.channels, 3, bias=False)

    @property
    def receptive_field(self) -> int:
        """Video frames a window spans."""
        return (self.cfg.frames - 1) * self.cfg.t_downsample + 1

    @property
    def window_offsets(self) -> list[int]:
        half = self.cfg.frames // 2
        return [(i - half) * self.cfg.t_downsample for i in range(self.cfg.frames)]

    @property
    def output_index(self) -> int:
        return self.cfg.frames // 2  # the window's centre

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, J, _ = x.shape
        x = F.gelu(self.embed(x))  # (B, T, J, C)
        for block in self.blocks:
            x = block(x)  # (B, T, J, C)
        return self.head(x)  # (B, T, J, 3)


register_lifter(LifterSpec(
    name="stcformer",
    title="STCFormer (Tang et al. 2023)",
    model_cls=STCFormer,
    config_cls=STCFormerConfig,
    config_for_frames=STCFormerConfig.for_frames,
    windowing=SequenceToSequence(),
    frames=(27, 81, 243),
    default_frames=27,
    paper_params={27: 4.75e6, 81: 4.75e6, 243: 4.75e6},  # the same for every T: nothing depends on T
    code_license="no licence file in the authors' repository; this reimplementation AGPL-3.0",
    recipes={"paper": dict(optimizer="adam", lr=1e-3, lr_decay=0.96, weight_decay=0.0, batch_size=128, epochs=80)},
    renamed_config_fields=RENAMED_FIELDS,
    regularisation_fields=("dropout", "part_drop_path"),
    output_head="head",
))
