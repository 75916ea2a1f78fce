"""Video data: the generated moving-digits set (seeded, label = motion direction) and video folders decoded with
PyAV (tiny videos written by the tests), including short and corrupt files."""

import numpy as np
import pytest
import torch

import vitkit
from vitkit.data.moving_digits import _STEPS, DIRECTIONS, MovingDigits
from vitkit.data.video_folder import VideoFolder, read_clip, read_video
from vitkit.errors import DataError

av = pytest.importorskip("av")


# --- moving digits -------------------------------------------------------------------------------------------
def test_moving_digits_shapes_and_normalisation():
    ds = MovingDigits("val", num_frames=6, img_size=32, in_chans=3, size=64)
    assert len(ds) == 64 and ds.num_classes == 8
    x, y = ds[5]
    assert x.shape == (3, 6, 32, 32) and x.dtype == torch.float32 and 0 <= y < 8
    assert torch.equal(x[0], x[2])  # grey level replicated
    batch = torch.stack([ds[i][0] for i in range(64)])
    assert abs(batch.mean().item()) < 0.1 and abs(batch.std().item() - 1) < 0.1
    assert sorted(ds[i][1] for i in range(64)) == sorted(list(range(8)) * 8)  # balanced


def test_moving_digits_is_seeded():
    a, b = MovingDigits("train", size=16, seed=3), MovingDigits("train", size=16, seed=3)
    c = MovingDigits("train", size=16, seed=4)
    assert all(torch.equal(a[i][0], b[i][0]) for i in range(16))
    assert not all(torch.equal(a[i][0], c[i][0]) for i in range(16))
    assert torch.equal(MovingDigits("train", size=100, seed=3)[7][0], a[7][0])  # item i does not depend on size


def _shift(prev: torch.Tensor, nxt: torch.Tensor, max_speed: int) -> tuple[int, int] | None:
    """The (dy, dx) translation (wrap-around) mapping one frame to the next, if one exists."""
    found = [(dy, dx) for dy in range(-max_speed, max_speed + 1) for dx in range(-max_speed, max_speed + 1)
             if torch.equal(prev.roll((dy, dx), dims=(0, 1)), nxt)]
    return found[0] if len(found) == 1 else None


@pytest.mark.parametrize("img_size", [32, 48])
def test_label_is_the_motion_direction(img_size):
    ds = MovingDigits("test", num_frames=5, img_size=img_size, size=24)
    for i in range(len(ds)):
        clip, label = ds.clip(i)
        shifts = {_shift(clip[t], clip[t + 1], ds.max_speed) for t in range(4)}
        assert len(shifts) == 1 and None not in shifts  # one constant translation
        dy, dx = shifts.pop()
        speed = max(abs(dy), abs(dx))
        assert (dy // speed, dx // speed) == _STEPS[label], (DIRECTIONS[label], dy, dx)
        # reversed in time, the same frames show the opposite direction: only the order tells the label
        assert _shift(clip[1], clip[0], ds.max_speed) == (-dy, -dx)


def test_start_positions_cover_the_canvas():
    """A single frame must not tell the label: for each label the digit starts anywhere on the canvas."""
    ds = MovingDigits("train", num_frames=2, img_size=32, size=800)
    for label in (0, 2, 4, 6):
        first = torch.stack([ds.clip(i)[0][0] for i in range(label, 800, 8)])  # (100, H, W)
        coverage = (first > 0.1).float().mean(0)  # fraction of clips lighting each pixel
        assert coverage.min() > 0.02 and coverage.max() < 0.5


def test_moving_digits_bad_arguments():
    with pytest.raises(DataError, match="split"):
        MovingDigits("dev")
    with pytest.raises(DataError, match=r"num_frames must be at least 2 \(one frame cannot show a motion\), got 1"):
        MovingDigits("train", num_frames=1)
    with pytest.raises(DataError, match="img_size"):
        MovingDigits("train", img_size=8)
    with pytest.raises(DataError, match="moving-digits size must be at least 1, got 0"):
        MovingDigits("train", size=0)


def test_moving_digits_feeds_a_video_model():
    ds = MovingDigits("train", num_frames=4, img_size=32, size=8)
    model = vitkit.create_model("vivit_base_16x2_factorised_encoder", img_size=32, patch_size=8, num_frames=4,
                                embed_dim=32, depth=1, temporal_depth=1, num_heads=4, num_classes=ds.num_classes)
    x, y = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert model(x).shape == (4, 8) and y.shape == (4,)


# --- video folders -------------------------------------------------------------------------------------------
def _write_video(path, n_frames: int, size=(24, 32), codec="mpeg4"):
    """Flat grey frames whose level encodes the frame index (20·i), so sampling can be checked after decoding."""
    with av.open(str(path), mode="w") as out:
        stream = out.add_stream(codec, rate=10)
        stream.height, stream.width = size
        stream.pix_fmt = "yuv420p"
        for i in range(n_frames):
            img = np.full((*size, 3), min(20 * i, 255), dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


@pytest.fixture
def video_root(tmp_path):
    for c, n in (("jump", 12), ("run", 9)):
        (tmp_path / c).mkdir()
        for k in range(2):
            _write_video(tmp_path / c / f"{c}{k}.mp4", n)
    (tmp_path / "run" / "notes.txt").write_text("not a video")
    return tmp_path


def test_video_folder_items(video_root):
    ds = VideoFolder(video_root, num_frames=4, frame_stride=2, img_size=16)
    assert ds.classes == ["jump", "run"] and len(ds) == 4 and ds.targets == [0, 0, 1, 1]
    x, y = ds[3]
    assert x.shape == (3, 4, 16, 16) and x.dtype == torch.float32 and y == 1
    raw = read_video(ds.samples[3][0], num_frames=4, img_size=16, frame_stride=2)  # before normalisation
    assert raw.shape == (3, 4, 16, 16) and raw.min() >= 0 and raw.max() <= 1
    assert torch.allclose(ds.transform(raw), x)


def test_frames_are_sampled_with_the_stride_from_a_centred_clip(video_root):
    clip = read_clip(video_root / "jump" / "jump0.mp4", num_frames=4, frame_stride=2)  # 12 frames, span 7
    assert clip.shape == (3, 4, 24, 32) and clip.dtype == torch.uint8
    levels = clip.float().mean(dim=(0, 2, 3))
    start = (12 - 7) // 2
    expected = torch.tensor([20.0 * (start + 2 * k) for k in range(4)])
    assert (levels - expected).abs().max() < 4, levels


def test_short_video_is_reported_with_its_path(video_root):
    ds = VideoFolder(video_root, num_frames=5, frame_stride=2, img_size=16)  # needs 9 frames: "run" has 9
    ds[2]
    ds = VideoFolder(video_root, num_frames=6, frame_stride=2, img_size=16)  # needs 11
    with pytest.raises(DataError, match=r"run0\.mp4.* has 9 frames, fewer than the 11 needed"):
        ds[2]


def test_corrupt_video_is_reported_with_its_path(video_root):
    bad = video_root / "jump" / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)
    ds = VideoFolder(video_root, num_frames=2, frame_stride=1, img_size=16)
    i = ds.samples.index((str(bad), 0))
    with pytest.raises(DataError, match=r"broken\.mp4.*could not be decoded"):
        ds[i]


def test_video_folder_bad_roots(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        VideoFolder(tmp_path / "missing")
    (tmp_path / "empty_class").mkdir()
    (tmp_path / "empty_class" / "a.png").write_bytes(b"")
    with pytest.raises(DataError, match=r"no files with extensions \.mp4"):
        VideoFolder(tmp_path)


# --- seeking, clip sampling, per-clip augmentation, test views ------------------------------------------------
def _write_noise_video(path, n_frames: int, size=(32, 40), gop=6, seed=0):
    """Frames of smooth noise that change every frame, key frames every `gop` frames (so seeking matters)."""
    g = np.random.default_rng(seed)
    with av.open(str(path), mode="w") as out:
        stream = out.add_stream("mpeg4", rate=25)
        stream.height, stream.width = size
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = gop
        for _ in range(n_frames):
            img = np.kron(g.integers(0, 256, (size[0] // 4, size[1] // 4, 3)), np.ones((4, 4, 1))).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


TINY_TIMESFORMER = ["--model", "timesformer_base_8x224_divided_space_time", "--override", "img_size=16",
                    "--override", "patch_size=8", "--override", "num_frames=4", "--override", "embed_dim=16",
                    "--override", "depth=1", "--override", "num_heads=2"]


def noise_video_folder(root):
    """root/{a,b}/{0,1}.mp4: four 12-frame 24×32 noise videos in two classes (for training runs on a folder)."""
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for k in range(2):
            _write_noise_video(root / c / f"{k}.mp4", 12, size=(24, 32), seed=k + ord(c))
    return root


def test_a_seeking_read_equals_decoding_from_the_start(tmp_path):
    path = tmp_path / "noise.mp4"
    _write_noise_video(path, 120)
    from vitkit.data.video_folder import read_frames, video_frame_count

    assert video_frame_count(path) == 120
    for indices in ([0, 1, 2], [50, 52, 54, 56], [7, 61, 119], [119], [3, 3, 90], list(range(40, 120, 10))):
        seek = read_frames(path, indices, seek=True)
        ref = read_frames(path, indices, seek=False)
        assert seek.shape == (3, len(indices), 32, 40) and torch.equal(seek, ref), indices
    with pytest.raises(DataError, match=r"noise\.mp4.* ends before frame 120"):
        read_frames(path, [5, 120])


def test_clip_sampling_stride_uniform_and_views():
    from vitkit.data.video_folder import clip_indices

    assert clip_indices(20, 4, 2) == [6, 8, 10, 12]  # span 7, centred
    assert clip_indices(20, 4, 2, view=0, views=3) == [0, 2, 4, 6]
    assert clip_indices(20, 4, 2, view=2, views=3) == [13, 15, 17, 19]
    assert clip_indices(20, 4, sampling="uniform") == [2, 7, 12, 17]  # the middle of each of 4 segments
    torch.manual_seed(0)
    for _ in range(20):
        starts = clip_indices(20, 4, 2, train=True)
        assert 0 <= starts[0] <= 13 and np.diff(starts).tolist() == [2, 2, 2]
        uni = clip_indices(20, 4, sampling="uniform", train=True)
        assert all(5 * i <= f < 5 * (i + 1) for i, f in enumerate(uni)), uni
    with pytest.raises(ValueError, match="too few for 15 different clips"):
        clip_indices(20, 4, 2, views=15)


def test_all_frames_of_a_clip_share_the_crop_and_flip():
    from vitkit.data.config import create_transform

    frame = torch.randint(0, 256, (3, 1, 40, 56), dtype=torch.uint8)
    clip = frame.expand(-1, 6, -1, -1)  # six identical frames: (C, T, H, W)
    t = create_transform({"input_size": (3, 24, 24), "num_frames": 6, "mean": (0.5,) * 3, "std": (0.5,) * 3,
                          "interpolation": "bilinear"}, train=True, randaugment=(2, 9))
    outs = []
    for seed in range(8):
        torch.manual_seed(seed)
        out = t(clip)
        assert out.shape == (3, 6, 24, 24)
        assert torch.equal(out, out[:, :1].expand_as(out)), seed  # one draw for the whole clip
        outs.append(out[:, 0])
    assert len({tuple(o.flatten()[:50].tolist()) for o in outs}) > 4  # and different draws across clips


def test_multi_view_eval_is_the_mean_of_the_per_view_logits(tmp_path):
    from vitkit.data import build_dataset
    from vitkit.data.video_folder import ViewAverage

    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        _write_noise_video(tmp_path / c / "v.mp4", 30, size=(32, 48), seed=ord(c))
    model = vitkit.create_model("vivit_base_16x2_factorised_encoder", img_size=16, patch_size=8, num_frames=4,
                                embed_dim=32, depth=1, temporal_depth=1, num_heads=4, num_classes=2).eval()
    cfg = vitkit.data_config(model)
    ds = build_dataset(str(tmp_path), "test", model.input_shape(), data_cfg=cfg, frame_stride=2, test_views=(2, 3))
    x, y = ds[1]
    assert x.shape == (6, 3, 4, 16, 16) and y == 1
    single = build_dataset(str(tmp_path), "test", model.input_shape(), data_cfg=cfg, frame_stride=2)
    with torch.no_grad():
        averaged = ViewAverage(model)(x[None])
        per_view = model(x)
    assert torch.allclose(averaged[0], per_view.mean(0), atol=1e-6)
    # the views: temporal clips spread over the video, spatial crops along the longer side (the centre one is
    # the single-view eval crop when crop_pct keeps the whole shorter side)
    assert not torch.equal(x[0], x[3]) and not torch.equal(x[0], x[1])
    assert single[1][0].shape == (3, 4, 16, 16)
    with pytest.raises(DataError, match=r"v\.mp4.* too few for 40 different clips"):
        build_dataset(str(tmp_path), "test", model.input_shape(), data_cfg=cfg, test_views=(40, 1))[0]
