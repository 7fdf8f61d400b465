from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from video3d.layouts import H36M17
from video3d.lifters import (CheckpointError, Lifter, LifterSpec, MissingWeightsError, UnknownLifterError,
                             create_lifter, get_spec, list_lifters, load_checkpoint, new_model)
from video3d.windowing import Centre, Dense, SequenceToSequence, flip
from video3d.lifters.poseformer import PoseFormer, PoseFormerConfig

CONFIGS = [(name, frames) for name in list_lifters() for frames in get_spec(name).frames]


def test_registry_lists_gastnet():
    assert "gastnet" in list_lifters()


def test_unknown_lifter_lists_the_valid_ones():
    with pytest.raises(UnknownLifterError, match="valid lifters: .*gastnet"):
        create_lifter("videopose9000")


PUBLISHED = [(name, frames) for name in list_lifters() for frames in get_spec(name).paper_params]


def test_every_lifter_has_a_published_parameter_count_to_check():
    assert {name for name, _ in PUBLISHED} == set(list_lifters())


@pytest.mark.parametrize("name,frames", PUBLISHED)
def test_parameter_count_within_2_percent_of_the_paper(name, frames):
    spec, _, model = new_model(name, frames)
    n = sum(p.numel() for p in model.parameters())
    assert abs(n / spec.paper_params[frames] - 1) < 0.02, n


@pytest.mark.parametrize("name,frames", CONFIGS)
def test_every_configuration_builds_and_states_its_receptive_field(name, frames):
    _, cfg, model = new_model(name, frames)
    assert model.receptive_field >= frames


@pytest.mark.parametrize("name", list_lifters())
def test_smoke_every_registered_lifter(name):
    torch.manual_seed(0)
    spec = get_spec(name)
    _, _, model = new_model(name, spec.default_frames)
    lifter = Lifter(spec, model, model.cfg)
    T = 12
    x = np.random.default_rng(0).uniform(-0.5, 0.5, size=(T, 17, 2)).astype(np.float32)
    y = lifter.predict(x, flip=True, batch_frames=512)
    assert y.shape == (T, 17, 3)
    assert np.isfinite(y).all()
    np.testing.assert_array_equal(y[:, 0], 0)  # pelvis at the origin


def test_gastnet_dense_and_strided_agree():
    _, _, model = new_model("gastnet", 27)
    model.eval()
    x = torch.randn(1, 40, 17, 2)
    with torch.no_grad():
        dense = model(x)
        single = torch.cat([model(x[:, i:i + 27]) for i in range(14)], dim=1)
    torch.testing.assert_close(dense, single, atol=1e-5, rtol=1e-5)


# --- frame alignment: the 3D pose of frame i comes from the window centred on frame i --------------
class CentreEcho(nn.Module):
    """Outputs, for each output frame, the 2D input of the frame the model says it belongs to, as (x, y, 0)."""

    def __init__(self, kind: str, frames: int, output_index: int | None = None):
        super().__init__()
        self.kind, self.frames = kind, frames
        self.receptive_field = frames
        self.window_offsets = list(range(-(frames // 2), frames // 2 + 1))
        self.output_index = frames // 2 if output_index is None else output_index
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        B, T, J, _ = x.shape
        z = torch.zeros(B, T, J, 1)
        xyz = torch.cat([x, z], dim=-1)
        if self.kind == "dense":
            pad = self.frames // 2
            return xyz[:, pad:T - pad]  # (B, T - RF + 1, J, 3)
        if self.kind == "center":
            return xyz[:, T // 2:T // 2 + 1]  # (B, 1, J, 3)
        return xyz  # seq2seq: (B, F, J, 3)


WINDOWINGS = {"dense": Dense, "center": Centre, "seq2seq": SequenceToSequence}


def echo_lifter(kind, frames=9, output_index=None):
    spec = LifterSpec(name=f"echo-{kind}", title="echo", model_cls=CentreEcho, config_cls=object,
                      config_for_frames=lambda f: None, windowing=WINDOWINGS[kind](), frames=(frames,),
                      default_frames=frames,
                      paper_params={}, code_license="test")
    return Lifter(spec, CentreEcho(kind, frames, output_index), None)


@pytest.mark.parametrize("kind,windows", [("dense", "centre"), ("center", "centre"), ("seq2seq", "centre"),
                                          ("seq2seq", "blend")])
@pytest.mark.parametrize("T", [1, 5, 9, 23])  # shorter than, equal to and longer than the window
def test_frame_i_comes_from_the_window_centred_on_i(kind, windows, T):
    x = np.random.default_rng(T).uniform(-1, 1, size=(T, 17, 2)).astype(np.float32)
    x[:, 0] = 0  # the root is zeroed on output
    y = echo_lifter(kind).predict(x, flip=False, batch_frames=64, windows=windows)
    np.testing.assert_allclose(y[..., :2], x, atol=1e-6)


def test_alignment_test_catches_the_first_frame_bug():
    """The STCFormer demo took the window's first frame: its 3D lags the video by half a window."""
    x = np.random.default_rng(0).uniform(-1, 1, size=(30, 17, 2)).astype(np.float32)
    x[:, 0] = 0
    y = echo_lifter("seq2seq", output_index=0).predict(x, flip=False, windows="centre")
    assert not np.allclose(y[..., :2], x, atol=1e-3)
    np.testing.assert_allclose(y[4:, :, :2], x[:-4], atol=1e-6)  # 4 = 9 // 2 frames late


class Strided(CentreEcho):
    """A seq2seq echo whose window samples every `step`-th frame (as STCFormer's does) and counts its windows."""

    def __init__(self, frames: int = 9, step: int = 3):
        super().__init__("seq2seq", frames)
        self.window_offsets = [(i - frames // 2) * step for i in range(frames)]
        self.receptive_field = (frames - 1) * step + 1
        self.windows_seen = 0

    def forward(self, x):
        self.windows_seen += x.shape[0]
        return super().forward(x)


@pytest.mark.parametrize("T", [1, 2, 4, 30, 100])
@pytest.mark.parametrize("hop", [1, 3, 9])
def test_blended_windows_put_every_output_on_its_own_frame(T, hop):
    x = np.random.default_rng(T).uniform(-1, 1, size=(T, 17, 2)).astype(np.float32)
    x[:, 0] = 0
    lifter = echo_lifter("seq2seq")
    lifter.model = Strided()
    y = lifter.predict(x, flip=False, windows="blend", hop=hop, batch_frames=9 * 4)
    np.testing.assert_allclose(y[..., :2], x, atol=1e-6)
    # about T / hop windows: per subsequence of ~T/3 frames, one window per hop positions and one at its end
    assert lifter.model.windows_seen <= 3 * (-(-T // 3) // hop + 2)
    lifter.model.windows_seen = 0
    lifter.predict(x, flip=False, windows="centre")
    assert lifter.model.windows_seen == T


def test_blend_is_the_centre_weighted_mean_of_every_window_holding_the_frame():
    """Brute force on the real STCFormer (random weights): frame f gets, from each window centred on a frame c
    of its subsequence (c = r + 3 * hop * m, and the last frame of the subsequence), output k = (f - c) / 3 + 13
    with weight 14 - |k - 13|."""
    torch.manual_seed(0)
    lifter = create_lifter("stcformer", frames=27, pretrained=False, device="cpu")
    T, hop, step, F = 100, 9, 3, 27
    x = np.random.default_rng(5).uniform(-0.5, 0.5, size=(T, 17, 2)).astype(np.float32)
    y = lifter.predict(x, flip=False, windows="blend", hop=hop)
    total, weight = np.zeros((T, 17, 3)), np.zeros(T)
    for r in range(step):
        n = len(range(r, T, step))
        for p in sorted(set(range(0, n, hop)) | {n - 1}):
            c = r + step * p
            idx = np.clip(c + step * (np.arange(F) - F // 2), 0, T - 1)
            with torch.no_grad():
                out = lifter.model(torch.from_numpy(x[idx])[None])[0].numpy()
            for k in range(F):
                f = c + step * (k - F // 2)
                if 0 <= f < T:
                    total[f] += (14 - abs(k - 13)) * out[k]
                    weight[f] += 14 - abs(k - 13)
    ref = total / weight[:, None, None]
    ref[:, 0] = 0
    np.testing.assert_allclose(y, ref, atol=1e-5)


def test_unknown_windows_mode_is_refused():
    with pytest.raises(ValueError, match="blend, centre"):
        echo_lifter("seq2seq").predict(np.zeros((5, 17, 2), np.float32), windows="middle")


@pytest.mark.parametrize("kind", ["dense", "center", "seq2seq"])
def test_flip_augmentation_of_an_equivariant_model_changes_nothing(kind):
    x = np.random.default_rng(1).uniform(-1, 1, size=(12, 17, 2)).astype(np.float32)
    x[:, 0] = 0
    lifter = echo_lifter(kind)
    np.testing.assert_allclose(lifter.predict(x, flip=True), lifter.predict(x, flip=False), atol=1e-6)


def test_gastnet_output_i_depends_on_inputs_within_its_centred_window():
    torch.manual_seed(0)
    lifter = create_lifter("gastnet", pretrained=False, device="cpu")
    T, j = 80, 40
    x = np.random.default_rng(2).uniform(-0.5, 0.5, size=(T, 17, 2)).astype(np.float32)
    y0 = lifter.predict(x, flip=False)
    x2 = x.copy()
    x2[j] += 0.3
    changed = np.abs(lifter.predict(x2, flip=False) - y0).max(axis=(1, 2)) > 1e-6
    np.testing.assert_array_equal(np.nonzero(changed)[0], np.arange(j - 13, j + 14))


@pytest.mark.parametrize("name", list_lifters())
def test_predict_equals_the_model_on_the_edge_padded_window_centred_on_each_frame(name):
    torch.manual_seed(0)
    spec = get_spec(name)
    frames = min(spec.frames)
    lifter = create_lifter(name, frames=frames, pretrained=False, device="cpu")
    model = lifter.model
    # written out here, not taken from the lifter's windowing: what the papers define
    if name == "gastnet":
        offsets, centre = np.arange(-(frames // 2), frames // 2 + 1), 0
    else:
        offsets = np.asarray(model.window_offsets)
        centre = 0 if name == "poseformer" else model.output_index
    T = 20
    x = np.random.default_rng(3).uniform(-0.5, 0.5, size=(T, 17, 2)).astype(np.float32)
    y = lifter.predict(x, flip=False, windows="centre")
    for i in (0, 5, T - 1):
        idx = np.clip(i + offsets, 0, T - 1)
        with torch.no_grad():
            ref = model(torch.from_numpy(x[idx])[None])[0, centre].numpy()
        ref[0] = 0
        np.testing.assert_allclose(y[i], ref, atol=1e-5)


def test_flip_swaps_sides_and_mirrors_x():
    x = torch.arange(17 * 3, dtype=torch.float32).view(1, 17, 3)
    f = flip(x)
    assert f[0, H36M17.index("left_knee"), 0] == -x[0, H36M17.index("right_knee"), 0]
    assert f[0, H36M17.index("left_knee"), 2] == x[0, H36M17.index("right_knee"), 2]
    torch.testing.assert_close(flip(f), x)


def test_predict_rejects_nan_and_wrong_shape():
    lifter = echo_lifter("dense")
    with pytest.raises(ValueError, match="NaN"):
        lifter.predict(np.full((10, 17, 2), np.nan, np.float32))
    with pytest.raises(ValueError, match=r"\(T, 17, 2\)"):
        lifter.predict(np.zeros((10, 16, 2), np.float32))


# --- checkpoints ---------------------------------------------------------------------------------------
def test_checkpoint_round_trip_rebuilds_the_model(tmp_path):
    torch.manual_seed(0)
    lifter = create_lifter("gastnet", frames=81, pretrained=False, device="cpu")
    path = lifter.save(tmp_path / "g.pt", training={"data": "test", "epochs_completed": 1})
    loaded = load_checkpoint(path)
    assert loaded.receptive_field == 81 and loaded.config == lifter.config
    assert loaded.meta["training"]["data"] == "test" and loaded.meta["layout"] == "h36m17"
    assert "AGPL" in loaded.meta["license"]
    x = np.random.default_rng(0).uniform(-0.5, 0.5, size=(30, 17, 2)).astype(np.float32)
    np.testing.assert_allclose(loaded.predict(x), lifter.predict(x), atol=1e-6)


def test_saved_checkpoints_are_replaced_whole_with_the_umask_permissions(tmp_path):
    import os

    from video3d.lifters.base import save_atomic

    old = os.umask(0o022)
    try:
        path = save_atomic({"step": 1}, tmp_path / "last.pt")
        save_atomic({"step": 2}, path)  # a training run overwrites its last.pt
    finally:
        os.umask(old)
    assert torch.load(path)["step"] == 2
    assert os.stat(path).st_mode & 0o777 == 0o644  # not mkstemp's 0600: others can read shipped weights
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left


SHIPPED_FILES = sorted((Path(__file__).resolve().parent.parent / "weights").glob("*.pt"))


@pytest.mark.parametrize("path", SHIPPED_FILES, ids=[p.name for p in SHIPPED_FILES])
def test_shipped_weights_load_without_unpickling_code(path):
    ckpt = torch.load(path, map_location="cpu", weights_only=True)  # plain types only: no pickled objects
    frames = ckpt["config"].get("frames", ckpt["receptive_field"])  # GAST-Net's config has no frames field
    assert path.name == f"{ckpt['lifter']}_{frames}f.pt"  # the name create_lifter looks for
    assert ckpt["training"]["train_subjects"] == ["S1", "S5", "S6", "S7", "S8"]
    assert not {"S9", "S11"} & set(ckpt["training"]["recipe"]["train_subjects"])
    evaluation = ckpt["training"]["evaluation"]  # measured on the shipped file itself (scripts/ship_weights.py)
    assert evaluation["frames"] == 519_852 and len(evaluation["actions"]) == 15  # the full protocol, not a subset
    assert 20 < evaluation["average"]["mpjpe"] < 100
    if ckpt["lifter"] == "gastnet":
        assert evaluation["average"]["mpjpe"] < 45  # the target for the default, as measured


def test_checkpoint_of_another_lifter_is_refused(tmp_path, random_checkpoint):
    with pytest.raises(CheckpointError, match="gastnet weights, not poseformer"):
        load_checkpoint(random_checkpoint, expect="poseformer")


def test_garbage_is_not_a_checkpoint(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        load_checkpoint(bad)
    torch.save({"hello": 1}, tmp_path / "dict.pt")
    with pytest.raises(CheckpointError, match="not a video3d lifter checkpoint"):
        load_checkpoint(tmp_path / "dict.pt")


def test_missing_default_weights_name_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("VIDEO3D_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(MissingWeightsError, match="gastnet_27f.pt is missing"):
        create_lifter("gastnet")


@pytest.mark.parametrize("shipped, expected", [
    ([], "poseformer_81f.pt"),  # nothing shipped: the default window, for the error message
    (["poseformer_9f.pt"], "poseformer_9f.pt"),  # only a short window is shipped: take it
    (["poseformer_9f.pt", "poseformer_27f.pt"], "poseformer_27f.pt"),  # the longest shipped window
    (["poseformer_9f.pt", "poseformer_81f.pt"], "poseformer_81f.pt"),  # the default window wins
    (["gastnet_27f.pt"], "poseformer_81f.pt"),  # another lifter's file is not a candidate
])
def test_default_weights_follow_what_is_shipped(tmp_path, monkeypatch, shipped, expected):
    from video3d.lifters import default_weights

    monkeypatch.setenv("VIDEO3D_WEIGHTS_DIR", str(tmp_path))
    for name in shipped:
        (tmp_path / name).write_bytes(b"")
    assert default_weights("poseformer").name == expected
    assert default_weights("poseformer", 27).name == "poseformer_27f.pt"  # an explicit window is taken as asked


def test_frames_must_match_the_checkpoint(random_checkpoint):
    with pytest.raises(CheckpointError, match="27-frame model, not 81"):
        create_lifter("gastnet", weights=random_checkpoint, frames=81)


def test_stcformer_checkpoints_that_say_stride_still_load(tmp_path):
    """Before 2026-11-23 the config field t_downsample was called stride (the authors' --stride is another
    thing); such checkpoints (the GPU run's among them) load under the new name."""
    torch.manual_seed(0)
    lifter = create_lifter("stcformer", frames=27, pretrained=False, device="cpu")
    ckpt = lifter.checkpoint()
    ckpt["config"]["stride"] = ckpt["config"].pop("t_downsample")
    torch.save(ckpt, tmp_path / "old.pt")
    loaded = load_checkpoint(tmp_path / "old.pt")
    assert loaded.config.t_downsample == 3 and loaded.receptive_field == 79
    x = np.random.default_rng(0).uniform(-0.5, 0.5, size=(30, 17, 2)).astype(np.float32)
    np.testing.assert_allclose(loaded.predict(x), lifter.predict(x), atol=1e-6)


def test_a_lifter_is_asked_for_by_its_window_not_its_receptive_field(tmp_path):
    """STCFormer 27 spans 79 video frames (every 3rd sampled): --frames 27 finds it."""
    torch.manual_seed(0)
    path = create_lifter("stcformer", frames=27, pretrained=False, device="cpu").save(tmp_path / "s.pt")
    lifter = create_lifter("stcformer", weights=path, frames=27, device="cpu")
    assert (lifter.frames, lifter.receptive_field) == (27, 79)
    with pytest.raises(CheckpointError, match="27-frame model, not 81"):
        create_lifter("stcformer", weights=path, frames=81, device="cpu")


@pytest.mark.parametrize("groups", [1, 3])
def test_drop_path_draws_once_per_group_of_rows(groups):
    from video3d.lifters.layers import DropPath

    layer = DropPath(0.5).train()
    torch.manual_seed(0)
    y = layer(torch.ones(3 * 200, 4, 2), groups)  # (N, J, C): rows of a group are consecutive
    kept = (y[:, 0, 0] > 0).view(-1, 3)  # (windows, frames)
    assert set(y.unique().tolist()) == {0.0, 2.0}  # dropped, or kept and rescaled by 1/(1-p)
    agree = bool((kept == kept[:, :1]).all())
    assert agree == (groups == 3)  # per window: all frames alike; per frame: not
    assert 0.4 < kept.float().mean() < 0.6
    assert torch.equal(layer.eval()(torch.ones(6, 4, 2), groups), torch.ones(6, 4, 2))


def test_poseformer_spatial_drop_path_per_window_drops_whole_windows():
    torch.manual_seed(0)
    cfg = PoseFormerConfig.for_frames(9, spatial_drop_path=0.9, spatial_drop_path_per="window", drop_path=0.0)
    model = PoseFormer(cfg).train()
    seen = []
    model.spatial_blocks[-1].drop_path.register_forward_hook(lambda m, args, out: seen.append((args[0], out)))
    model(torch.randn(4, 9, 17, 2))
    branch, out = seen[0]  # the last spatial block's attention branch: (B*T, J, Cs)
    dropped = (out == 0).flatten(1).all(1).view(4, 9)  # per frame
    assert (dropped == dropped[:, :1]).all()


def test_old_poseformer_checkpoints_keep_the_stochastic_depth_they_were_trained_with(tmp_path):
    """Saved before the spatial blocks had their own fields: both used drop_path, drawn per frame."""
    path = create_lifter("poseformer", frames=9, pretrained=False, device="cpu").save(tmp_path / "old.pt")
    ckpt = torch.load(path, weights_only=True)
    for name in ("spatial_drop_path", "spatial_drop_path_per"):  # as the files saved before them
        del ckpt["config"][name]
    torch.save(ckpt, path)
    lifter = load_checkpoint(path)
    assert (lifter.config.spatial_drop_path, lifter.config.spatial_drop_path_per) == (0.1, "frame")
    assert PoseFormerConfig().spatial_drop_path_per == "window"  # today's default differs


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here (checked on an H100: 0.0015 mm)")
@pytest.mark.parametrize("name", list_lifters())
def test_cuda_predicts_what_the_cpu_predicts(name):
    """--device cuda: the shipped weights lift the same poses on the GPU as on the CPU."""
    x = np.random.default_rng(0).normal(scale=0.15, size=(300, 17, 2)).astype(np.float32)
    cpu = create_lifter(name, device="cpu").predict(x)
    gpu = create_lifter(name, device="cuda").predict(x)
    assert np.abs(cpu - gpu).max() < 1e-5  # metres: 0.01 mm
