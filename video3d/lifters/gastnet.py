"""GAST-Net: graph attention spatio-temporal convolutional network (Liu et al., 2020).

One readable file, in the manner of nanoGPT's model.py. Reference: the authors' code
(fabro66/GAST-Net-3DPoseEstimation, MIT) and ../shared/MODELS.md.

Input (B, T, J, 2) normalised 2D keypoints -> output (B, T - RF + 1, J, 3), root-relative metres,
where RF (the receptive field) is 27, 81 or 243. Output frame t belongs to input frame t + RF // 2.

The network is a stack of dilated temporal convolutions (kernel 3, dilations 1, 3, 9, ...) whose
weights are shared across joints, each followed by a graph attention block that mixes joints:
  - a local graph: two channel-wise semantic graph convolutions, one over the left/right symmetry
    graph, one over the skeleton (1-hop, and 2-hop for the distal joints);
  - a global graph: 4-head attention between all joints plus a learned joint-joint matrix.
The width doubles after every graph attention block (27 frames: 128 -> 256 -> 512 -> 1024).

Layout: we keep tensors channels-last, (B, T, J, C), so that every 1x1 convolution of the paper is a
``nn.Linear`` and every temporal convolution is a ``nn.Linear`` over the concatenated taps. Parameters
and outputs are those of the authors' model; two of their operations are computed more cheaply but
exactly: the global graph's score conv over concat[theta_i; phi_j] is linear, so it equals
a_i + b_j with a = w_theta . theta(x), b = w_phi . phi(x), and the channel-wise graph convolution's
17 x 17 mixing is one batched matmul per channel instead of B * T * C tiny ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..layouts import H36M17
from ..windowing import Dense
from .registry import LifterSpec, register_lifter


@dataclass
class GASTNetConfig:
    filter_widths: tuple[int, ...] = (3, 3, 3)  # one temporal kernel per stage; RF = product
    channels: int = 128  # width of the first stage; doubles after each graph attention block
    dropout: float = 0.05
    num_joints: int = 17
    in_features: int = 2
    distal_joints: tuple[int, ...] = (3, 6, 10, 13, 16)  # ankles, head, wrists: 2-hop neighbours
    parents: tuple[int, ...] = H36M17.parents
    joints_left: tuple[int, ...] = H36M17.left
    joints_right: tuple[int, ...] = H36M17.right
    global_heads: int = 4

    @property
    def receptive_field(self) -> int:
        rf = 1
        for w in self.filter_widths:
            rf *= w
        return rf

    @classmethod
    def for_frames(cls, frames: int, **overrides) -> "GASTNetConfig":
        """The paper's configurations: 27 (3,3,3; C=128), 81 (3,3,3,3; C=64), 243 (3x5; C=32)."""
        presets = {27: ((3, 3, 3), 128), 81: ((3, 3, 3, 3), 64), 243: ((3, 3, 3, 3, 3), 32)}
        if frames not in presets:
            raise ValueError(f"GAST-Net has 27, 81 or 243 frames, not {frames}")
        widths, channels = presets[frames]
        return cls(**{"filter_widths": widths, "channels": channels, **overrides})


class BatchNormLast(nn.BatchNorm1d):
    """BatchNorm over the last (channel) axis of a channels-last tensor: the paper's BatchNorm2d."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        return super().forward(x.reshape(-1, shape[-1])).reshape(shape)


def skeleton_adjacency(parents: tuple[int, ...]) -> torch.Tensor:
    """Boolean (J, J) adjacency of the bone graph, self-loops included."""
    j = len(parents)
    adj = torch.eye(j, dtype=torch.bool, device="cpu")  # on the CPU even where the model is planned on "meta"
    for child, parent in enumerate(parents):
        if parent >= 0:
            adj[child, parent] = adj[parent, child] = True
    return adj


def connection_graph(cfg: GASTNetConfig) -> torch.Tensor:
    """Self + 1-hop neighbours; for distal joints self + 1-hop + 2-hop (the paper's 'connection' graph)."""
    adj = skeleton_adjacency(cfg.parents)
    two_hop = (adj.float() @ adj.float()) > 0
    distal = torch.zeros(cfg.num_joints, dtype=torch.bool, device="cpu")
    distal[list(cfg.distal_joints)] = True
    return torch.where(distal[:, None], two_hop, adj)


def symmetry_graph(cfg: GASTNetConfig) -> torch.Tensor:
    """Self + the mirrored joint (left knee <-> right knee, ...)."""
    adj = torch.eye(cfg.num_joints, dtype=torch.bool, device="cpu")
    for left, right in zip(cfg.joints_left, cfg.joints_right):
        adj[left, right] = adj[right, left] = True
    return adj


class SemChannelGraphConv(nn.Module):
    """Channel-wise semantic graph convolution: every output channel has its own softmax-normalised
    edge weights over the graph, and self and neighbour features have separate transforms."""

    def __init__(self, c_in: int, c_out: int, graph: torch.Tensor):
        super().__init__()
        self.W = nn.Parameter(torch.empty(2, c_in, c_out))  # [0]: self, [1]: neighbours
        nn.init.xavier_uniform_(self.W, gain=1.414)
        self.register_buffer("graph", graph, persistent=False)
        self.e = nn.Parameter(torch.ones(c_out, int(graph.sum())))  # one weight per (channel, edge)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        *lead, J, _ = x.shape
        h_self = x @ self.W[0]  # (..., J, C_out)
        h_nbr = x @ self.W[1]  # (..., J, C_out)
        C = h_self.shape[-1]
        logits = torch.full((C, J, J), -9e15, dtype=self.e.dtype, device=x.device)  # the edge weights' dtype (float32 under autocast)
        logits[:, self.graph] = self.e
        A = F.softmax(logits, dim=-1)  # (C, J, J), rows sum to 1 over each joint's neighbours
        eye = torch.eye(J, dtype=torch.bool, device=x.device)
        A_self = A.diagonal(dim1=1, dim2=2).transpose(0, 1)  # (J, C)
        A_nbr = A.masked_fill(eye, 0.0)  # (C, J, J)
        h = h_nbr.reshape(-1, J, C).permute(2, 1, 0).contiguous()  # (C, J, N) with N = B*T
        mixed = torch.bmm(A_nbr, h).permute(2, 1, 0).reshape(*lead, J, C)  # (..., J, C)
        return h_self * A_self + mixed


class LocalGraph(nn.Module):
    def __init__(self, cfg: GASTNetConfig, c_in: int, c_out: int):
        super().__init__()
        self.gcn_sym = SemChannelGraphConv(c_in, c_out, symmetry_graph(cfg))
        self.bn_sym = BatchNormLast(c_out)
        self.gcn_con = SemChannelGraphConv(c_in, c_out, connection_graph(cfg))
        self.bn_con = BatchNormLast(c_out)
        self.cat = nn.Linear(2 * c_out, c_out, bias=False)
        self.cat_bn = BatchNormLast(c_out)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = F.relu(self.bn_sym(self.gcn_sym(x)))  # (B, T, J, C)
        c = F.relu(self.bn_con(self.gcn_con(x)))  # (B, T, J, C)
        return self.drop(F.relu(self.cat_bn(self.cat(torch.cat([s, c], dim=-1)))))


class GlobalGraph(nn.Module):
    """Multi-head attention between all joints: softmax(LeakyReLU(a_i + b_j)) + C_k per head."""

    def __init__(self, cfg: GASTNetConfig, c: int):
        super().__init__()
        H = cfg.global_heads
        self.heads, self.head_dim = H, c // H
        self.g = nn.Linear(c, c)  # the heads' g projections (c -> c/H each), side by side
        self.theta = nn.Linear(c, c)
        self.phi = nn.Linear(c, c)
        # the per-head 1x1 conv over concat[theta_i; phi_j] -> 1, split into its theta and phi halves
        self.score = nn.Parameter(torch.empty(H, 2 * self.head_dim))
        nn.init.kaiming_normal_(self.score)
        for proj in (self.g, self.theta, self.phi):
            nn.init.kaiming_normal_(proj.weight)
            nn.init.zeros_(proj.bias)
        self.C_k = nn.Parameter(torch.zeros(H, cfg.num_joints, cfg.num_joints))  # learned joint-joint matrix
        self.cat = nn.Linear(c, c, bias=False)
        self.cat_bn = BatchNormLast(c)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, J, C = x.shape
        H, D = self.heads, self.head_dim
        w_theta, w_phi = self.score[:, :D], self.score[:, D:]  # (H, D) each
        a = torch.einsum("btjhd,hd->bthj", self.theta(x).view(B, T, J, H, D), w_theta)  # (B, T, H, J)
        b = torch.einsum("btjhd,hd->bthj", self.phi(x).view(B, T, J, H, D), w_phi)  # (B, T, H, J)
        scores = F.leaky_relu(a.unsqueeze(-1) + b.unsqueeze(-2), 0.2)  # (B, T, H, J, J)
        attention = F.softmax(scores, dim=-1) + self.C_k  # (B, T, H, J, J)
        g = self.g(x).view(B, T, J, H, D).transpose(2, 3)  # (B, T, H, J, D)
        y = (attention @ g).transpose(2, 3).reshape(B, T, J, C)  # heads side by side: (B, T, J, C)
        return self.drop(F.relu(self.cat_bn(self.cat(y))))


class GraphAttentionBlock(nn.Module):
    """concat[x, local(x), global(x)] -> 1x1 conv to 2c -> BN -> ReLU."""

    def __init__(self, cfg: GASTNetConfig, c: int):
        super().__init__()
        self.local_graph = LocalGraph(cfg, c, c)
        self.global_graph = GlobalGraph(cfg, c)
        self.cat = nn.Linear(3 * c, 2 * c, bias=False)
        self.cat_bn = BatchNormLast(2 * c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.cat([x, self.local_graph(x), self.global_graph(x)], dim=-1)  # (B, T, J, 3c)
        return F.relu(self.cat_bn(self.cat(y)))  # (B, T, J, 2c)


class TemporalConv(nn.Module):
    """Conv2d with kernel (k, 1) and dilation d over (time, joint), shared by all joints.

    Dense mode: output t sees inputs t, t+d, ..., t+(k-1)d. Strided mode (stride k, used when the
    input is exactly one receptive field long) gives the same result for the one output frame while
    skipping the intermediate frames it does not need (VideoPose3D's 'optimized 1f' model)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, dilation: int):
        super().__init__()
        self.kernel, self.dilation = kernel, dilation
        self.linear = nn.Linear(kernel * c_in, c_out, bias=False)

    def forward(self, x: torch.Tensor, strided: bool = False) -> torch.Tensor:
        B, T, J, C = x.shape
        k, d = self.kernel, self.dilation
        if strided:
            x = x.view(B, T // k, k, J, C).transpose(2, 3).reshape(B, T // k, J, k * C)  # (B, T/k, J, kC)
        else:
            span = T - (k - 1) * d
            x = torch.cat([x[:, i * d: i * d + span] for i in range(k)], dim=-1)  # (B, T-(k-1)d, J, kC)
        return self.linear(x)


class TemporalBlock(nn.Module):
    """Dilated temporal conv + BN + ReLU, 1x1 conv + BN + ReLU + dropout, residual from the centre."""

    def __init__(self, cfg: GASTNetConfig, c: int, kernel: int, dilation: int):
        super().__init__()
        self.conv = TemporalConv(c, c, kernel, dilation)
        self.bn = BatchNormLast(c)
        self.pointwise = nn.Linear(c, c, bias=False)
        self.pointwise_bn = BatchNormLast(c)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, strided: bool = False) -> torch.Tensor:
        k, d = self.conv.kernel, self.conv.dilation
        if strided:
            residual = x[:, k // 2:: k]  # (B, T/k, J, C): the centre tap of each window
        else:
            pad = (k - 1) * d // 2
            residual = x[:, pad: x.shape[1] - pad]  # (B, T-(k-1)d, J, C)
        x = F.relu(self.bn(self.conv(x, strided)))
        return residual + self.drop(F.relu(self.pointwise_bn(self.pointwise(x))))


class GASTNet(nn.Module):
    def __init__(self, cfg: GASTNetConfig):
        super().__init__()
        self.cfg = cfg
        widths = cfg.filter_widths
        if any(w % 2 == 0 for w in widths):
            raise ValueError("GAST-Net needs odd temporal kernel widths")
        C = cfg.channels
        self.init_bn = BatchNormLast(cfg.in_features)
        self.expand = TemporalConv(cfg.in_features, C, widths[0], 1)
        nn.init.kaiming_normal_(self.expand.linear.weight)
        self.expand_bn = BatchNormLast(C)
        self.graph_blocks = nn.ModuleList([GraphAttentionBlock(cfg, C)])
        self.temporal_blocks = nn.ModuleList()
        dilation = widths[0]
        for i, w in enumerate(widths[1:], start=1):
            c = C * 2**i
            self.temporal_blocks.append(TemporalBlock(cfg, c, w, dilation))
            self.graph_blocks.append(GraphAttentionBlock(cfg, c))
            dilation *= w
        self.shrink = nn.Linear(C * 2 ** len(widths), 3, bias=False)

    @property
    def receptive_field(self) -> int:
        return self.cfg.receptive_field

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, J, _ = x.shape
        if T < self.receptive_field:
            raise ValueError(f"GAST-Net needs at least {self.receptive_field} frames, got {T}")
        strided = T == self.receptive_field  # one output frame: skip the frames it does not need
        x = self.init_bn(x)
        x = F.relu(self.expand_bn(self.expand(x, strided)))  # (B, T', J, C)
        x = self.graph_blocks[0](x)  # (B, T', J, 2C)
        for temporal, graph in zip(self.temporal_blocks, self.graph_blocks[1:]):
            x = graph(temporal(x, strided))  # (B, T'', J, 2c) -> (B, T'', J, 4c)
        return self.shrink(x)  # (B, T - RF + 1, J, 3)

    def set_bn_momentum(self, momentum: float) -> None:
        for m in self.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.momentum = momentum


register_lifter(LifterSpec(
    name="gastnet",
    title="GAST-Net (Liu et al. 2020)",
    model_cls=GASTNet,
    config_cls=GASTNetConfig,
    config_for_frames=GASTNetConfig.for_frames,
    windowing=Dense(),
    frames=(27, 81, 243),
    default_frames=27,
    paper_params={27: 6.92e6, 81: 7.05e6, 243: 7.09e6},
    code_license="MIT (authors' reference code); this reimplementation AGPL-3.0",
    recipes={"paper": dict(optimizer="adam", lr=1e-3, lr_decay=0.95, weight_decay=0.0, batch_size=128, epochs=60)},
    regularisation_fields=("dropout",),
    output_head="shrink",
))
