"""The compact training-data copy (``video3d data pack/unpack``)."""

import io
import lzma

import numpy as np
import pytest

from video3d.data.h36m import DataError, is_packed, load_positions_3d, load_sequences, read_packed
from video3d.data.pack import pack, unpack
from tests.test_cli import invoke, one_line_error


def test_pack_is_exact_to_half_a_tenth_of_a_millimetre(tiny_dataset, tmp_path):
    info = pack(tiny_dataset, tmp_path / "h36m.xz")
    original, packed = load_positions_3d(tiny_dataset), load_positions_3d(tmp_path / "h36m.xz")
    assert is_packed(tmp_path / "h36m.xz") and not is_packed(tiny_dataset)
    assert {s: sorted(a) for s, a in packed.items()} == {s: sorted(a) for s, a in original.items()}
    worst = max(np.abs(packed[s][a] - original[s][a]).max() for s in original for a in original[s])
    assert 1e-6 < worst <= 0.0500005 and info["max_error_m"] == pytest.approx(worst)  # rounded, not exact
    assert info["bytes_out"] < info["bytes_in"] / 2


def test_unpack_gives_videopose3d_format_back(tiny_dataset, tmp_path):
    pack(tiny_dataset, tmp_path / "h36m.xz")
    unpack(tmp_path / "h36m.xz", tmp_path / "again.npz")
    assert not is_packed(tmp_path / "again.npz")
    a, b = load_positions_3d(tmp_path / "h36m.xz"), load_positions_3d(tmp_path / "again.npz")
    assert all(np.array_equal(a[s][k], b[s][k]) for s in a for k in a[s])


def test_training_data_reads_the_packed_file_as_it_is(tiny_dataset, tmp_path):
    pack(tiny_dataset, tmp_path / "h36m.xz")
    seqs = load_sequences(tmp_path / "h36m.xz", ["S1"], cameras=["0"])
    ref = load_sequences(tiny_dataset, ["S1"], cameras=["0"])
    assert [s.action for s in seqs] == [s.action for s in ref]
    # each world coordinate within 0.05 mm: a joint within 0.05 * sqrt(3) mm, relative to the root twice that
    np.testing.assert_allclose(seqs[0].positions_3d, ref[0].positions_3d, atol=2 * 0.05e-3 * 3**0.5)


def _xz_npz(path, **arrays):
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path.write_bytes(lzma.compress(buffer.getvalue()))
    return path


@pytest.mark.parametrize("make", [
    lambda p: p.write_bytes(lzma.compress(b"not a zip file at all")),
    lambda p: p.write_bytes(b"\xfd7zXZ\x00" + b"\x00" * 40),  # an xz header and garbage
    lambda p: _xz_npz(p, index=np.array([{"format": "x"}], dtype=object)),  # a pickle inside: refused
    lambda p: _xz_npz(p, index=np.frombuffer(b'{"format": "other"}', np.uint8)),
])
def test_bad_packed_files_are_data_errors(tmp_path, make):
    path = tmp_path / "bad.xz"
    make(path)
    with pytest.raises(DataError, match="not a readable packed dataset"):
        load_positions_3d(path)


def test_an_xz_bomb_is_not_inflated(tmp_path, monkeypatch):
    import video3d.data.h36m as h36m

    monkeypatch.setattr(h36m, "MAX_UNPACKED_BYTES", 1000)
    path = tmp_path / "bomb.xz"
    path.write_bytes(lzma.compress(b"\x00" * 10_000_000))
    with pytest.raises(ValueError):
        read_packed(path)


def test_cli_pack_and_unpack(tiny_dataset, tmp_path):
    r = invoke("data", "pack", tiny_dataset, tmp_path / "h.xz")
    assert r.exit_code == 0, r.stderr
    assert "largest error 0.05" in r.stderr and r.stdout.strip() == str(tmp_path / "h.xz")
    one_line_error(invoke("data", "pack", tiny_dataset, tmp_path / "h.xz"), 3, "exists")  # no silent overwrite
    assert invoke("data", "unpack", tmp_path / "h.xz", tmp_path / "h.npz").exit_code == 0
    one_line_error(invoke("data", "pack", tmp_path / "h.npz.missing", tmp_path / "x.xz"), 2, "does not exist")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    one_line_error(invoke("data", "unpack", tmp_path / "junk.npz", tmp_path / "y.npz"), 2, "junk.npz")
    assert not (tmp_path / "y.npz").exists() and not list(tmp_path.glob(".*.tmp"))
