"""A rigid H36M-17 skeleton fitted to 3D joint positions: what BVH export animates.

- Rest pose: a T-pose built from the person's median bone lengths (world frame: z up, the person facing
  -y, their left along +x).
- Per frame, each joint's rotation: a joint with one child gets the smallest rotation that turns its
  bone from where the parent's rotation carries it to where the data has it (no twist: 17 joints do not
  show limb twist). The pelvis and the thorax, which have several children, get the least-squares
  rotation of all their bones (Kabsch), and each of their children hangs from a zero-length branch
  joint of its own (as in CMU's BVH files: LeftHipJoint, LowerBack, ...), so every bone points exactly
  where the data has it. Leaf joints keep their parent's rotation.
- Forward kinematics of those rotations gives positions with constant bone lengths; ``FittedSkeleton``
  keeps them, so the world export and the BVH describe the same skeleton. Frames without a pose hold
  the nearest valid one (a BVH has no 'missing').
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .layouts import H36M17

PARENTS = np.array(H36M17.parents)
CHILDREN = [[c for c, p in enumerate(H36M17.parents) if p == j] for j in range(17)]
# T-pose bone directions (world: x = the person's left when facing -y, z up)
REST_DIRECTIONS = {
    1: (-1, 0, 0), 2: (0, 0, -1), 3: (0, 0, -1), 4: (1, 0, 0), 5: (0, 0, -1), 6: (0, 0, -1),
    7: (0, 0, 1), 8: (0, 0, 1), 9: (0, 0, 1), 10: (0, 0, 1),
    11: (1, 0, 0), 12: (1, 0, 0), 13: (1, 0, 0), 14: (-1, 0, 0), 15: (-1, 0, 0), 16: (-1, 0, 0),
}


def bone_lengths(poses: np.ndarray) -> np.ndarray:
    """(17,) median length of the bone from each joint's parent to it (0 for the root), over valid frames."""
    poses = poses.reshape(-1, 17, 3)
    valid = np.isfinite(poses).all(axis=(-1, -2))
    if not valid.any():
        raise ValueError("no valid pose to measure bones on")
    p = poses[valid]
    lengths = np.zeros(17)
    for j in range(1, 17):
        lengths[j] = np.median(np.linalg.norm(p[:, j] - p[:, PARENTS[j]], axis=-1))
    return lengths


def rest_pose(lengths: np.ndarray) -> np.ndarray:
    """(17, 3) T-pose joint positions, root at the origin."""
    rest = np.zeros((17, 3))
    for j in range(1, 17):
        rest[j] = rest[PARENTS[j]] + lengths[j] * np.asarray(REST_DIRECTIONS[j], float)
    return rest


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(..., 3, 3): the smallest rotation turning unit vectors a into unit vectors b."""
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    v = np.cross(a, b)
    c = np.sum(a * b, axis=-1)
    out = np.empty(a.shape[:-1] + (3, 3))
    vx = np.zeros(a.shape[:-1] + (3, 3))
    vx[..., 0, 1], vx[..., 0, 2], vx[..., 1, 2] = -v[..., 2], v[..., 1], -v[..., 0]
    vx[..., 1, 0], vx[..., 2, 0], vx[..., 2, 1] = v[..., 2], -v[..., 1], v[..., 0]
    factor = 1.0 / np.maximum(1.0 + c, 1e-12)
    out[:] = np.eye(3) + vx + (vx @ vx) * factor[..., None, None]
    opposite = c < -1 + 1e-9  # turn by 180 degrees about any axis perpendicular to a
    if opposite.any():
        axis = np.cross(a[opposite], [1.0, 0.0, 0.0])
        weak = np.linalg.norm(axis, axis=-1) < 1e-6
        axis[weak] = np.cross(a[opposite][weak], [0.0, 1.0, 0.0])
        axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
        out[opposite] = 2 * axis[..., :, None] * axis[..., None, :] - np.eye(3)
    return out


def kabsch(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation R minimising sum_k |R a_k - b_k|^2 for vector sets a, b of shape (..., K, 3)."""
    h = np.swapaxes(a, -1, -2) @ b  # (..., 3, 3)
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(np.swapaxes(vt, -1, -2) @ np.swapaxes(u, -1, -2)))
    fix = np.ones(a.shape[:-2] + (3,))
    fix[..., 2] = d
    return np.swapaxes(vt, -1, -2) @ (fix[..., :, None] * np.swapaxes(u, -1, -2))


NAMES = ("Hips", "RightUpLeg", "RightLeg", "RightFoot", "LeftUpLeg", "LeftLeg", "LeftFoot", "Spine", "Thorax",
         "Neck", "Head", "LeftArm", "LeftForeArm", "LeftHand", "RightArm", "RightForeArm", "RightHand")
BRANCH_NAMES = {1: "RightHipJoint", 4: "LeftHipJoint", 7: "LowerBack", 9: "LowerNeck", 11: "LeftShoulder",
                14: "RightShoulder"}


@dataclass(frozen=True)
class Node:
    """A BVH joint: one of the 17, or a zero-length branch joint (like CMU's LHipJoint) that lets each
    child of the pelvis and of the thorax turn on its own."""

    name: str
    parent: int  # node index, -1 for the root
    joint: int | None  # H36M joint at this node's position (None for a branch joint)
    first_child_joint: int | None  # the joint this node's rotation points at (None for leaves)


def skeleton_nodes() -> list[Node]:
    nodes: list[Node] = []
    node_of: dict[int, int] = {}
    for j in range(17):
        p = int(PARENTS[j])
        parent_node = node_of.get(p, -1)
        if p >= 0 and len(CHILDREN[p]) > 1:  # a branch: insert a zero-length joint for this child
            nodes.append(Node(BRANCH_NAMES[j], parent_node, None, j))
            parent_node = len(nodes) - 1
        kids = CHILDREN[j]
        nodes.append(Node(NAMES[j], parent_node, j, kids[0] if len(kids) == 1 else None))
        node_of[j] = len(nodes) - 1
    return nodes


NODES = skeleton_nodes()


def node_offsets(rest: np.ndarray) -> np.ndarray:
    """(N, 3) each node's rest offset from its parent node."""
    offsets = np.zeros((len(NODES), 3))
    for i, node in enumerate(NODES):
        if node.joint is not None and node.parent >= 0:
            offsets[i] = rest[node.joint] - rest[PARENTS[node.joint]]
    return offsets


@dataclass
class FittedSkeleton:
    lengths: np.ndarray  # (17,)
    rest: np.ndarray  # (17, 3) T-pose
    root: np.ndarray  # (T, 3) root positions
    local: np.ndarray  # (T, N, 3, 3) rotation of each node relative to its parent node
    positions: np.ndarray  # (T, 17, 3) forward kinematics: constant bone lengths
    filled: np.ndarray  # (T,) True where the frame had no pose and holds the nearest valid one

    def forward_kinematics(self) -> np.ndarray:
        return forward_kinematics(self.rest, self.root, self.local)


def forward_kinematics(rest: np.ndarray, root: np.ndarray, local: np.ndarray) -> np.ndarray:
    """Joint positions (T, 17, 3) of the node rotations (T, N, 3, 3)."""
    T = len(root)
    offsets = node_offsets(rest)
    glob = np.zeros((T, len(NODES), 3, 3))
    pos = np.zeros((T, len(NODES), 3))
    for i, node in enumerate(NODES):
        if node.parent < 0:
            glob[:, i], pos[:, i] = local[:, i], root
        else:
            glob[:, i] = glob[:, node.parent] @ local[:, i]
            pos[:, i] = pos[:, node.parent] + glob[:, node.parent] @ offsets[i]
    out = np.zeros((T, 17, 3))
    for i, node in enumerate(NODES):
        if node.joint is not None:
            out[:, node.joint] = pos[:, i]
    return out


def fit(poses: np.ndarray, lengths: np.ndarray | None = None) -> FittedSkeleton:
    """Fit the rigid skeleton to world poses (T, 17, 3); NaN frames hold the nearest valid pose."""
    poses = np.asarray(poses, dtype=np.float64)
    T = len(poses)
    valid = np.isfinite(poses).all(axis=(-1, -2))
    if not valid.any():
        raise ValueError("no valid pose to fit")
    idx = np.arange(T)
    vidx = idx[valid]
    after = np.searchsorted(vidx, idx).clip(0, len(vidx) - 1)
    before = np.maximum(after - 1, 0)
    pick = np.where(np.abs(vidx[before] - idx) < np.abs(vidx[after] - idx), before, after)
    lengths = bone_lengths(poses[valid]) if lengths is None else lengths
    poses = poses[valid][pick]  # every frame now holds a pose
    rest = rest_pose(lengths)
    N = len(NODES)
    glob = np.zeros((T, N, 3, 3))
    local = np.tile(np.eye(3), (T, N, 1, 1))
    for i, node in enumerate(NODES):
        parent_rot = glob[:, node.parent] if node.parent >= 0 else np.tile(np.eye(3), (T, 1, 1))
        j = node.joint
        if node.first_child_joint is not None:  # point this node's one bone at its joint
            c = node.first_child_joint
            start = PARENTS[c]  # a branch node sits at its parent joint
            carried = parent_rot @ (rest[c] - rest[start])  # where the parent's rotation puts the bone
            glob[:, i] = rotation_between(carried, poses[:, c] - poses[:, start]) @ parent_rot
        elif j is not None and len(CHILDREN[j]) > 1:  # pelvis, thorax: the best rotation of all bones
            rest_vecs = np.stack([rest[c] - rest[j] for c in CHILDREN[j]])
            data_vecs = np.stack([poses[:, c] - poses[:, j] for c in CHILDREN[j]], axis=-2)
            unit = data_vecs / np.linalg.norm(data_vecs, axis=-1, keepdims=True)
            rest_unit = rest_vecs / np.linalg.norm(rest_vecs, axis=-1, keepdims=True)
            glob[:, i] = kabsch(np.broadcast_to(rest_unit, unit.shape), unit)
        else:  # a leaf
            glob[:, i] = parent_rot
        local[:, i] = np.swapaxes(parent_rot, -1, -2) @ glob[:, i]
    root = poses[:, 0]
    return FittedSkeleton(lengths, rest, root, local, forward_kinematics(rest, root, local), ~valid)
