"""Reading files a user names without running code from them.

A pickle can call any function while it loads (``__reduce__``), so ``np.load(allow_pickle=True)`` and
``torch.load(weights_only=False)`` run whatever a planted file says. video3d never calls either on a path
it is given. The one format that needs pickles, VideoPose3D's dataset files (``positions_3d`` /
``positions_2d``: nested dicts and lists of arrays in a 0-d object array), is read here by an unpickler
that admits only what those files are made of: dicts, lists, tuples, strings, numbers and numpy arrays
(numpy's own array reconstruction, nothing else); any other global in the stream stops the load before
anything is built.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

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


def restricted_loads(data: bytes):
    return RestrictedUnpickler(io.BytesIO(data)).load()


def load_object_npz(path: str | Path, key: str):
    """The object stored under ``key`` in an npz written by ``np.savez(..., key=np.array(obj, dtype=object))``,
    unpickled by ``RestrictedUnpickler``. A plain (non-object) array under ``key`` is returned as it is.
    Raises KeyError (no such key), ValueError (not an npz / not a .npy inside) or UnsafePickleError."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise ValueError("not an npz (zip) file") from None
    with archive:
        name = f"{key}.npy"
        if name not in archive.namelist():
            raise KeyError(key)
        with archive.open(name) as f:
            version = npy_format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = npy_format.read_array_header_1_0(f)
            elif version in ((2, 0), (3, 0)):
                shape, fortran, dtype = npy_format.read_array_header_2_0(f)
            else:  # pragma: no cover - numpy writes only these
                raise ValueError(f"unknown .npy version {version}")
            body = f.read()
    if not dtype.hasobject:
        with np.load(path, allow_pickle=False) as data:
            return data[key]
    obj = restricted_loads(body)
    if isinstance(obj, np.ndarray) and obj.shape == () and obj.dtype == object:
        return obj.item()
    return obj
