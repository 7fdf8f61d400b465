"""Reading files a user names without running code from them.

A pickle can call any function while it loads (``__reduce__``), so ``np.load(allow_pickle=True)`` and
``torch.load(weights_only=False)`` run whatever a planted file says. video3d never calls either on a path
it is given. The one format that needs pickles, VideoPose3D's dataset files (``positions_3d`` /
``positions_2d``: nested dicts and lists of arrays in a 0-d object array), is read here by an unpickler
that admits only what those files are made of: dicts, lists, tuples, strings, numbers and numpy arrays
(numpy's own array reconstruction, nothing else); any other global in the stream stops the load before
anything is built.

Sizes are checked before anything is inflated (``check_npz``): every member of an npz is bounded by the size
its zip entry declares (``zipfile`` reads no further) and every array by the shape its .npy header declares
(numpy allocates that before reading), so a small file that would inflate to gigabytes is refused first. What
an unpickled object holds is counted per reference (``materialised_bytes``): one array named a hundred thousand
times through the pickle memo is a small file, but every later copy of it is real memory.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

# The most an npz a user names may hold, inflated (zip entries) and as arrays (declared shapes): the largest
# legitimate inputs are far below it (VideoPose3D's 2D detections of all of Human3.6M, about 0.5 GB; a one-hour
# 30 fps video of ten people, 0.2 GB of keypoints_2d).
MAX_NPZ_BYTES = 1 << 30
MAX_DEPTH = 64  # nesting of an unpickled dataset object (VideoPose3D's files: 3)

# The globals a pickled numpy array refers to (numpy 1.x and 2.x module names). _reconstruct builds an empty
# ndarray of the class it is given, and only numpy.ndarray can be named here; dtype builds a dtype from a string.
ALLOWED_GLOBALS = {
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class UnsafePickleError(pickle.UnpicklingError):
    """The stream names a global outside ALLOWED_GLOBALS."""


class RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise UnsafePickleError(f"refusing to load {module}.{name} (only numpy arrays, dicts, lists and strings)")


class TooLargeError(ValueError):
    """The file declares more than a video3d input may hold; refused before it is inflated."""


def _gib(n: float) -> str:
    return f"{n / (1 << 30):,.3g} GiB" if n < 1000 << 30 else f"{n / (1 << 30):,.0f} GiB"


def npy_header(f) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype a .npy stream declares (the stream is left after its header)."""
    version = npy_format.read_magic(f)
    if version == (1, 0):
        shape, _, dtype = npy_format.read_array_header_1_0(f)
    elif version in ((2, 0), (3, 0)):
        shape, _, dtype = npy_format.read_array_header_2_0(f)
    else:  # pragma: no cover - numpy writes only these
        raise ValueError(f"unknown .npy version {version}")
    return tuple(int(n) for n in shape), dtype


def npz_declared(archive: zipfile.ZipFile) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Each .npy member's declared (shape, dtype), read from its header alone."""
    out = {}
    for info in archive.infolist():
        if info.filename.endswith(".npy"):
            with archive.open(info) as f:
                out[info.filename[:-4]] = npy_header(f)
    return out


def check_npz(source, limit: int = MAX_NPZ_BYTES) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Refuse (TooLargeError) an npz (a path or a binary file) whose zip entries or declared arrays add up to more
    than ``limit`` bytes, before anything is inflated; returns the declared shapes and dtypes. ValueError for a
    file that is not a zip."""
    try:
        archive = zipfile.ZipFile(source)
    except zipfile.BadZipFile:
        raise ValueError("not an npz (zip) file") from None
    with archive:
        inflated = sum(info.file_size for info in archive.infolist())
        if inflated > limit:
            raise TooLargeError(f"it inflates to {_gib(inflated)}, more than the {_gib(limit)} an input may hold")
        declared = npz_declared(archive)
    total = sum(int(np.prod(shape, dtype=np.float64)) * dtype.itemsize for shape, dtype in declared.values())
    if total > limit:
        name, (shape, dtype) = max(declared.items(), key=lambda kv: np.prod(kv[1][0], dtype=np.float64))
        raise TooLargeError(f"its arrays declare {_gib(total)} ({name}: {shape} {dtype}), more than the "
                            f"{_gib(limit)} an input may hold")
    return declared


def materialised_bytes(obj, limit: int = MAX_NPZ_BYTES) -> int:
    """The bytes of every array in an unpickled object, counted once per reference (as copies of it would be),
    walked without recursion; TooLargeError past ``limit`` or ``MAX_DEPTH`` levels of nesting."""
    total, stack = 0, [(obj, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise TooLargeError(f"it nests more than {MAX_DEPTH} levels deep")
        if isinstance(item, np.ndarray):
            if item.dtype.hasobject:
                stack.extend((x, depth + 1) for x in item.reshape(-1))
            else:
                total += item.nbytes
        elif isinstance(item, dict):
            stack.extend((x, depth + 1) for pair in item.items() for x in pair)
        elif isinstance(item, (list, tuple)):
            stack.extend((x, depth + 1) for x in item)
        else:
            total += 8
        if total > limit:
            raise TooLargeError(f"its objects hold more than the {_gib(limit)} an input may hold (arrays counted "
                                "each time they are named)")
    return total


def restricted_loads(data: bytes):
    return RestrictedUnpickler(io.BytesIO(data)).load()


def load_object_npz(path: str | Path, key: str):
    """The object stored under ``key`` in an npz written by ``np.savez(..., key=np.array(obj, dtype=object))``,
    unpickled by ``RestrictedUnpickler``. A plain (non-object) array under ``key`` is returned as it is.
    Raises KeyError (no such key), ValueError (not an npz / not a .npy inside; TooLargeError, a ValueError, for
    one that would hold more than ``MAX_NPZ_BYTES``) or UnsafePickleError."""
    check_npz(path)  # bounded before anything is read: each member by its zip entry's size
    with zipfile.ZipFile(path) as archive:
        name = f"{key}.npy"
        if name not in archive.namelist():
            raise KeyError(key)
        with archive.open(name) as f:
            _, dtype = npy_header(f)
            body = f.read()
    if not dtype.hasobject:
        with np.load(path, allow_pickle=False) as data:
            return data[key]
    obj = restricted_loads(body)
    materialised_bytes(obj)
    if isinstance(obj, np.ndarray) and obj.shape == () and obj.dtype == object:
        return obj.item()
    return obj
