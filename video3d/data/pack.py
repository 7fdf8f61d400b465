"""``video3d data pack/unpack``: write a compact copy of the Human3.6M 3D poses, quick to move to a training
machine, and VideoPose3D's format back from it for other tools. The packed format and its reader are
``video3d.data.h36m``'s (``load_positions_3d`` reads a packed file directly, so training needs no unpacking).
"""

from __future__ import annotations

import io
import lzma
from pathlib import Path

import numpy as np

from ..io import AtomicPath
from .h36m import encode, load_positions_3d, read_packed


def pack(src: str | Path, dst: str | Path, force: bool = False) -> dict:
    """VideoPose3D's ``data_3d_h36m*.npz`` (or a packed file) -> a packed file. Returns sizes and the error."""
    positions = load_positions_3d(src)
    buffer = io.BytesIO()
    np.savez(buffer, **encode(positions))
    with AtomicPath(dst, force=force) as out:
        out.tmp.write_bytes(lzma.compress(buffer.getvalue(), preset=6))
    back = read_packed(dst)
    worst = max(float(np.abs(back[s][a] - positions[s][a]).max()) for s in positions for a in positions[s])
    return {"takes": sum(len(v) for v in positions.values()), "frames": sum(len(x) for v in positions.values()
                                                                            for x in v.values()),
            "bytes_in": Path(src).stat().st_size, "bytes_out": Path(dst).stat().st_size, "max_error_m": worst}


def unpack(src: str | Path, dst: str | Path, force: bool = False) -> dict:
    """A packed file -> VideoPose3D's format (``positions_3d``: subject -> action -> (N, 17, 3) float32)."""
    positions = load_positions_3d(src)
    holder = np.empty((), dtype=object)
    holder[()] = positions
    with AtomicPath(dst, force=force) as out:
        with open(out.tmp, "wb") as f:
            np.savez_compressed(f, positions_3d=holder)
    return {"takes": sum(len(v) for v in positions.values()), "bytes_out": Path(dst).stat().st_size}
