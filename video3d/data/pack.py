"""A compact copy of the Human3.6M 3D poses, quick to move to a training machine (``video3d data pack/unpack``).

Every take's (N, 17, 3) positions are rounded to 0.1 mm integers and stored as the first frame and the
differences along time (small numbers at 50 fps, so int16 almost always), in an npz of plain integer arrays
(no pickle) compressed with xz: about a fifth of VideoPose3D's 91 MB file, every coordinate within 0.05 mm.
``load_positions_3d`` reads a packed file directly, so training needs no unpacking; ``unpack`` writes
VideoPose3D's format again for other tools.
"""

from __future__ import annotations

import io
import json
import lzma
import zipfile
from pathlib import Path

import numpy as np

from ..io import AtomicPath

FORMAT = "video3d.h36m-packed.v1"
UNIT_M = 1e-4  # 0.1 mm
XZ_MAGIC = b"\xfd7zXZ\x00"
MAX_UNPACKED_BYTES = 4 << 30  # a packed file may not inflate past this (an xz bomb is refused)


def is_packed(path: str | Path) -> bool:
    with open(path, "rb") as f:
        return f.read(len(XZ_MAGIC)) == XZ_MAGIC


def encode(positions: dict[str, dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """subject -> action -> (N, J, 3) metres  ->  {"S1/Walking 1": deltas (N, J, 3) int16/int32, "index": json}."""
    arrays, index = {}, []
    for s, subject in enumerate(sorted(positions)):
        for a, action in enumerate(sorted(positions[subject])):
            units = np.rint(np.asarray(positions[subject][action], np.float64) / UNIT_M).astype(np.int64)
            deltas = np.diff(units, axis=0)  # steps along time: (N-1, J, 3)
            small = np.iinfo(np.int16)
            fits = not deltas.size or (deltas.min() >= small.min and deltas.max() <= small.max)
            key = f"t{s:02d}_{a:03d}"
            arrays[key + "_first"] = units[0].astype(np.int32)  # frame 0 as it is: (J, 3)
            arrays[key] = deltas.astype(np.int16 if fits else np.int32)
            index.append({"subject": subject, "action": action, "key": key})
    arrays["index"] = np.frombuffer(json.dumps({"format": FORMAT, "unit_m": UNIT_M, "takes": index}).encode(),
                                    np.uint8)
    return arrays


def decode(arrays) -> dict[str, dict[str, np.ndarray]]:
    meta = json.loads(bytes(np.asarray(arrays["index"], np.uint8)).decode())
    if meta.get("format") != FORMAT:
        raise ValueError(f"not a {FORMAT} file")
    out: dict[str, dict[str, np.ndarray]] = {}
    for take in meta["takes"]:
        first, deltas = np.asarray(arrays[take["key"] + "_first"]), np.asarray(arrays[take["key"]])
        if first.dtype.kind != "i" or deltas.dtype.kind != "i" or deltas.ndim != 3 or first.shape != deltas.shape[1:]:
            raise ValueError(f"{take['subject']}/{take['action']} is not a (J, 3) + (N-1, J, 3) integer pair")
        units = np.concatenate([first[None].astype(np.int64), deltas.astype(np.int64)])  # (N, J, 3)
        positions = np.cumsum(units, axis=0) * float(meta["unit_m"])
        out.setdefault(str(take["subject"]), {})[str(take["action"])] = positions.astype(np.float32)
    return out


def read_packed(path: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """A packed file's positions (plain arrays only: ``allow_pickle=False``)."""
    with open(path, "rb") as f:
        raw = lzma.LZMADecompressor().decompress(f.read(), max_length=MAX_UNPACKED_BYTES)
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as arrays:
            return decode(arrays)
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"a damaged packed file ({type(exc).__name__}: {exc})") from None


def pack(src: str | Path, dst: str | Path, force: bool = False) -> dict:
    """VideoPose3D's ``data_3d_h36m*.npz`` (or a packed file) -> a packed file. Returns sizes and the error."""
    from .h36m import load_positions_3d

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
    from .h36m import load_positions_3d

    positions = load_positions_3d(src)
    holder = np.empty((), dtype=object)
    holder[()] = positions
    with AtomicPath(dst, force=force) as out:
        with open(out.tmp, "wb") as f:
            np.savez_compressed(f, positions_3d=holder)
    return {"takes": sum(len(v) for v in positions.values()), "bytes_out": Path(dst).stat().st_size}
