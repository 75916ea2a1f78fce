"""Bundled digits, image folders, transforms and the dataset dispatch."""

import pytest
import torch
from PIL import Image

from vitkit.data import Digits, ImageFolder, build_dataset, prediction_inputs
from vitkit.data.transforms import affine_pipeline
from vitkit.errors import DataError


def test_digits_split_is_fixed_stratified_and_disjoint():
    sets = {s: Digits(s) for s in ("train", "val", "test")}
    assert [len(sets[s]) for s in ("train", "val", "test")] == [1257, 180, 360]
    # every class is in every split in proportion (1,797 digits, about 180 per class)
    for s, d in sets.items():
        counts = torch.bincount(d.targets, minlength=10)
        assert counts.min() >= 0.9 * counts.float().mean(), s
    # the same split every time, and no image in two splits
    assert torch.equal(Digits("test").images, sets["test"].images)
    flat = {s: {tuple(x.flatten().tolist()) for x in d.images} for s, d in sets.items()}
    assert not flat["train"] & flat["test"] or len(flat["train"] & flat["test"]) < 5  # the raw set has a few duplicates


def test_digits_sizes_channels_and_augmentation():
    d = Digits("train", img_size=24, in_chans=1)
    x, y = d[0]
    assert x.shape == (1, 24, 24) and 0 <= y < 10
    x3, _ = Digits("val", img_size=32, in_chans=3)[0]
    assert x3.shape == (3, 32, 32) and torch.equal(x3[0], x3[2])  # grey level replicated
    # the eval transform is deterministic; the train one draws from torch's generator
    assert torch.equal(Digits("val")[3][0], Digits("val")[3][0])
    torch.manual_seed(1)
    a = d[5][0]
    torch.manual_seed(1)
    assert torch.equal(a, d[5][0])
    assert not torch.equal(a, d[5][0])
    with pytest.raises(DataError, match="unknown digits split 'dev'"):
        Digits("dev")


def test_digits_affine_pipeline_keeps_shape_moves_pixels_and_normalises():
    x = torch.zeros(1, 16, 16)
    x[:, 6:10, 6:10] = 1
    torch.manual_seed(0)
    y = affine_pipeline([0.0], [1.0], train=True)(x)
    assert y.shape == x.shape and not torch.allclose(x, y)
    assert torch.allclose(affine_pipeline([0.5], [0.25], train=False)(x), (x - 0.5) / 0.25)


def _make_folder(root, classes=("cat", "dog"), per_class=2, size=(20, 24)):
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            pixels = torch.randint(0, 255, (*size, 3), dtype=torch.uint8).numpy()
            Image.fromarray(pixels).save(root / c / f"{i}.png")
    return root


def test_image_folder_layout_and_transform(tmp_path):
    root = _make_folder(tmp_path / "data")
    ds = ImageFolder(root)
    assert ds.classes == ["cat", "dog"] and len(ds) == 4 and ds.targets == [0, 0, 1, 1]
    x, y = ds[3]
    assert x.shape == (3, 20, 24) and y == 1 and x.min() >= 0 and x.max() <= 1
    built = build_dataset(str(root), "val", (3, 16, 16))
    assert built[0][0].shape == (3, 16, 16)
    grey = build_dataset(str(root), "train", (1, 16, 16))
    assert grey[0][0].shape == (1, 16, 16)


def test_image_folder_with_split_subfolders(tmp_path):
    _make_folder(tmp_path / "d" / "train")
    _make_folder(tmp_path / "d" / "val", per_class=1)
    assert len(build_dataset(str(tmp_path / "d"), "train", (3, 8, 8))) == 4
    assert len(build_dataset(str(tmp_path / "d"), "val", (3, 8, 8))) == 2
    assert len(build_dataset(str(tmp_path / "d"), "test", (3, 8, 8))) == 2  # test falls back to val


def test_image_folder_errors_name_the_problem(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="has no class sub-folders"):
        ImageFolder(tmp_path / "empty")
    (tmp_path / "noimg" / "a").mkdir(parents=True)
    (tmp_path / "noimg" / "a" / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="has no files with extensions"):
        ImageFolder(tmp_path / "noimg")
    root = _make_folder(tmp_path / "bad")
    (root / "dog" / "broken.png").write_bytes(b"not a png at all")
    ds = ImageFolder(root)
    i = [str(p) for p, _ in ds.samples].index(str(root / "dog" / "broken.png"))
    with pytest.raises(DataError, match=r"cannot read image '.*broken\.png'"):
        ds[i]
    with pytest.raises(DataError, match="does not exist"):
        ImageFolder(tmp_path / "nowhere")


def test_build_dataset_dispatch_errors(tmp_path):
    assert len(build_dataset("digits", "test", (3, 32, 32))) == 360
    with pytest.raises(DataError, match="unknown dataset 'mnist'"):
        build_dataset("mnist", "train", (3, 32, 32))
    with pytest.raises(DataError, match="holds images but the model takes videos"):
        build_dataset("digits", "train", (3, 4, 32, 32))
    with pytest.raises(DataError, match="unknown split"):
        build_dataset("digits", "dev", (3, 32, 32))
    f = tmp_path / "file.png"
    f.write_bytes(b"")
    with pytest.raises(DataError, match="is a file"):
        build_dataset(str(f), "train", (3, 32, 32))


def test_prediction_inputs_follow_the_training_data(tmp_path):
    root = _make_folder(tmp_path / "data", per_class=1)
    x, classes = prediction_inputs([str(root / "cat" / "0.png")], (3, 16, 16), data=str(root))
    assert x.shape == (1, 3, 16, 16) and classes == ["cat", "dog"]
    x, classes = prediction_inputs([str(root / "cat" / "0.png")], (1, 32, 32), data="digits")
    assert x.shape == (1, 1, 32, 32) and classes == [str(i) for i in range(10)]
    with pytest.raises(DataError, match="does not exist"):
        prediction_inputs([str(tmp_path / "missing.png")], (3, 16, 16))


def test_folders_follow_the_models_data_config(tmp_path):
    import vitkit
    from vitkit.data import data_info, open_image

    root = _make_folder(tmp_path / "data", size=(40, 30))
    model = vitkit.create_model("vit_tiny_patch16_224", img_size=16, patch_size=8, embed_dim=16, depth=1, num_heads=2)
    cfg = vitkit.data_config(model)
    val = build_dataset(str(root), "val", model.input_shape(), data_cfg=cfg)
    assert torch.equal(val[1][0], vitkit.create_transform(cfg)(open_image(val.samples[1][0])))
    train = build_dataset(str(root), "train", model.input_shape(), data_cfg=cfg, randaugment=(2, 9), reprob=0.5)
    assert train[0][0].shape == (3, 16, 16)
    assert data_info(str(root), val, 3, cfg)["mean"] == [0.5, 0.5, 0.5]  # what predict reads back
