"""Published weights by name (hub/): the table is checked against its sources, and every family loads a tag from a
loopback server that serves files in the sources' layouts (hub_server.py), written by timm, torchvision and
transformers themselves. Models are tiny: each tag's registered name with size overrides (the file holds a tiny
reference model's weights); torchvision URL entries are monkeypatched to a URL whose sha256 prefix is the served
file's (the real URLs' prefixes belong to the real files)."""

import dataclasses
import hashlib
import io
import re
from pathlib import Path

import pytest
import torch
from hub_server import WeightsServer
from parity.test_mvit import _randomise_norms
from safetensors.torch import save as safetensors_bytes

import vitkit
from vitkit import hub
from vitkit.hub import WEIGHTS, WeightsError
from vitkit.registry import is_weights_name

timm = pytest.importorskip("timm")
transformers = pytest.importorskip("transformers")


@pytest.fixture
def server(tmp_path, monkeypatch):
    """The loopback server, with the caches in tmp_path and vitkit pointed at it as its mirror."""
    srv = WeightsServer()
    for var in ("HF_HUB_OFFLINE", "HF_HUB_CACHE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_ENDPOINT", srv.url)
    monkeypatch.setenv("VITKIT_WEIGHTS_MIRROR", srv.url)
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    yield srv
    srv.stop()


def _bytes(state_dict: dict, fmt: str) -> bytes:
    sd = {k: v.detach().contiguous().clone() for k, v in state_dict.items()}
    if fmt == "safetensors":
        return safetensors_bytes(sd)
    buf = io.BytesIO()
    torch.save(sd, buf)
    return buf.getvalue()


def serve(srv: WeightsServer, monkeypatch, tag: str, state_dict: dict) -> hub.Weights:
    """Serve `state_dict` as `tag`'s file, in the tag's format and path."""
    w = hub._BY_TAG[tag]
    data = _bytes(state_dict, w.fmt)
    if w.hub_repo:
        srv.add_hub(w.hub_repo, w.filename, data)
        return w
    sha = hashlib.sha256(data).hexdigest()
    url = re.sub(r"-[0-9a-f]+\.pth$", f"-{sha[:8]}.pth", w.url)
    w = dataclasses.replace(w, url=url, sha256=sha[:8])
    monkeypatch.setitem(hub._BY_TAG, tag, w)
    srv.add_url(url, data)
    return w


# --- one tag per family: (reference model, its state dict, vitkit overrides, input, reference logits) -------------
VIT = dict(img_size=32, patch_size=8, embed_dim=48, depth=2, num_heads=3, num_classes=7)


def _vit():
    ref = _randomise_norms(timm.create_model("vit_base_patch16_224", pretrained=False, **VIT))
    return ref, ref.state_dict(), VIT, torch.randn(2, 3, 32, 32), ref


def _deit():
    ref = _randomise_norms(timm.create_model("deit_base_distilled_patch16_224", pretrained=False, **VIT))
    return ref, ref.state_dict(), VIT, torch.randn(2, 3, 32, 32), ref


SWIN = dict(img_size=56, embed_dim=16, depths=(2, 2), num_heads=(1, 2), num_classes=7)


def _swin_tv():
    import torchvision

    ref = _randomise_norms(torchvision.models.SwinTransformer(patch_size=[4, 4], embed_dim=16, depths=[2, 2],
                                                              num_heads=[1, 2], window_size=[7, 7], num_classes=7))
    return ref, ref.state_dict(), SWIN, torch.randn(2, 3, 56, 56), ref


MVIT2 = dict(img_size=32, embed_dim=16, depths=(1, 1), num_classes=7)


def _mvitv2():
    from timm.models.mvitv2 import MultiScaleVit, MultiScaleVitCfg

    ref = _randomise_norms(MultiScaleVit(MultiScaleVitCfg(depths=(1, 1), embed_dim=16, num_heads=1), img_size=(32, 32),
                                         num_classes=7))
    return ref, ref.state_dict(), MVIT2, torch.randn(2, 3, 32, 32), ref


MVIT = dict(num_frames=4, img_size=32, embed_dim=16, depths=(1, 2, 1), pool_stride_kv=(1, 4, 4), num_classes=5)


def _mvit_tv():
    from parity.test_mvit import _torchvision

    ref = _torchvision(vitkit.create_model("mvit_base_16x4", **MVIT), 4, 32)
    return ref, ref.state_dict(), MVIT, torch.randn(1, 3, 4, 32, 32), ref


def _cvt():
    from parity.test_cvt import TINY, _hf

    from vitkit.layers import QuickGELU

    ref = _hf()
    for stage in ref.cvt.encoder.stages:  # the official activation, which the released weights were trained with
        for layer in stage.layers:
            layer.intermediate.activation = QuickGELU()
    return ref, ref.state_dict(), TINY, torch.randn(2, 3, 64, 64), lambda x: ref(x).logits


def _timesformer():
    from parity.test_timesformer import DEPTH, HEADS, SIZE, T, _pair, _ref_logits

    _, ref = _pair("divided_space_time")
    overrides = dict(img_size=SIZE, patch_size=8, num_frames=T, embed_dim=48, depth=DEPTH, num_heads=HEADS,
                     num_classes=7, drop_path_rate=0.0)
    return (ref, ref.state_dict(), overrides, torch.randn(2, 3, T, SIZE, SIZE),
            lambda x: _ref_logits(ref, x, "divided_space_time"))


def _vivit():
    from parity.test_vivit import CLASSES, DEPTH, HEADS, SIZE, T, _hf, t

    ref = _hf()
    overrides = dict(img_size=SIZE, num_frames=T, patch_size=8, tubelet_size=t, embed_dim=48, depth=DEPTH,
                     num_heads=HEADS, num_classes=CLASSES)
    return ref, ref.state_dict(), overrides, torch.randn(2, 3, T, SIZE, SIZE), lambda x: ref(x.transpose(1, 2)).logits


FAMILIES = {  # name as the user types it -> (tag served, reference builder)
    "vit_base_patch16_224.augreg2_in21k_ft_in1k": ("vit_base_patch16_224.augreg2_in21k_ft_in1k", _vit),
    "deit_base_distilled_patch16_224": ("deit_base_distilled_patch16_224.fb_in1k", _deit),  # bare name: default
    "swin_t": ("swin_tiny_patch4_window7_224.tv_in1k", _swin_tv),  # torchvision alias
    "mvitv2_tiny.fb_in1k": ("mvitv2_tiny.fb_in1k", _mvitv2),
    "mvit_v1_b": ("mvit_base_16x4.tv_k400", _mvit_tv),
    "microsoft/cvt-13": ("cvt_13_224.hf_in1k", _cvt),  # transformers repository id
    "facebook/timesformer-base-finetuned-k400": ("timesformer_base_8x224_divided_space_time.hf_k400", _timesformer),
    "google/vivit-b-16x2-kinetics400": ("vivit_base_16x2_spatiotemporal.hf_k400", _vivit),
}


@pytest.mark.parametrize("name", list(FAMILIES))
@torch.no_grad()
def test_pretrained_by_name_matches_reference(server, monkeypatch, name):
    tag, build = FAMILIES[name]
    ref, sd, overrides, x, ref_forward = build()
    w = serve(server, monkeypatch, tag, sd)
    model = vitkit.create_model(name, pretrained=True, **overrides).eval()
    assert model.model_name == w.model
    assert ("GET", f"/{w.hub_repo}/resolve/main/{w.filename}" if w.hub_repo else re.sub("^https:/", "", w.url)) \
        in server.requests
    want = ref_forward(x)
    assert (model(x) - want).abs().max().item() <= 1e-5
    assert want.abs().max() > 1e-3
    if "distilled" in tag:  # both heads
        ref.set_distilled_training(True)
        for a, b in zip(model.forward_distill(x), ref.train()(x)):
            assert (a - b).abs().max().item() <= 1e-5
    # the weights' data config travels with the model
    cfg = vitkit.data_config(model)
    assert (cfg["mean"], cfg["std"], cfg["crop_pct"], cfg["interpolation"], cfg["source"]) == \
        (w.data.mean, w.data.std, w.data.crop_pct, w.data.interpolation, w.source)


def test_second_call_loads_from_the_cache(server, monkeypatch):
    tags = {"vit_base_patch16_224.augreg2_in21k_ft_in1k": _vit, "swin_tiny_patch4_window7_224.tv_in1k": _swin_tv}
    first = {}
    for tag, build in tags.items():
        _, sd, overrides, _, _ = build()
        serve(server, monkeypatch, tag, sd)
        first[tag] = vitkit.create_model(tag, pretrained=True, **overrides).state_dict()
    server.stop()
    n = len(server.requests)
    for tag, build in tags.items():
        again = vitkit.create_model(tag, pretrained=True, **build()[2]).state_dict()
        assert all(torch.equal(first[tag][k], v) for k, v in again.items())
    assert len(server.requests) == n
    server.httpd.server_close()


def _one_sentence(e: Exception, *needles: str) -> None:
    text = str(e)
    assert "\n" not in text and text.count(". ") == 0, text
    for n in needles:
        assert n in text, text


def test_corrupt_url_file_fails_its_checksum_and_is_not_cached(server, monkeypatch, tmp_path):
    tag = "swin_tiny_patch4_window7_224.tv_in1k"
    _, sd, overrides, _, _ = _swin_tv()
    w = serve(server, monkeypatch, tag, sd)
    path = re.sub(r"^https://", "/", w.url)
    data, etag = server.files[path]
    server.files[path] = (data[:-1] + bytes([data[-1] ^ 1]), etag)  # one flipped bit
    with pytest.raises(WeightsError) as e:
        vitkit.create_model(tag, pretrained=True, **overrides)
    _one_sentence(e.value, tag, "sha256", w.sha256)
    assert not any((tmp_path / "torch").rglob("*.pth*"))


def test_corrupt_hub_file_fails_its_checksum_and_is_not_cached(server, monkeypatch, tmp_path):
    tag = "vit_base_patch16_224.augreg2_in21k_ft_in1k"
    _, sd, overrides, _, _ = _vit()
    w = hub._BY_TAG[tag]
    data = _bytes(sd, "safetensors")
    server.add_hub(w.hub_repo, w.filename, data[:-1] + bytes([data[-1] ^ 1]), etag=hashlib.sha256(data).hexdigest())
    with pytest.raises(WeightsError) as e:
        vitkit.create_model(tag, pretrained=True, **overrides)
    _one_sentence(e.value, tag, "sha256", w.hub_repo)
    assert not [p for p in (tmp_path / "hf").rglob("*") if p.is_file() and "blobs" in p.parts]


@pytest.mark.parametrize("tag", ["vit_base_patch16_224.augreg2_in21k_ft_in1k", "swin_tiny_patch4_window7_224.tv_in1k"])
def test_offline_with_nothing_cached_is_one_sentence(server, monkeypatch, tag):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsError) as e:
        vitkit.create_model(tag, pretrained=True)
    w = hub._BY_TAG[tag]
    _one_sentence(e.value, tag, "HF_HUB_OFFLINE", w.hub_repo or w.url)
    assert server.requests == []


def test_missing_file_on_the_server_is_one_sentence(server):
    with pytest.raises(WeightsError) as e:
        vitkit.create_model("mvitv2_tiny.fb_in1k", pretrained=True)
    _one_sentence(e.value, "mvitv2_tiny.fb_in1k", "not found", "timm/mvitv2_tiny.fb_in1k")


# --- the table ----------------------------------------------------------------------------------------------------
def test_table_entries_are_complete():
    names = set(vitkit.list_models())
    assert len({w.tag for w in WEIGHTS}) == len(WEIGHTS)
    for w in WEIGHTS:
        assert w.model in names, w.tag
        assert w.source in ("timm", "torchvision", "hf", "official"), w.tag
        assert (w.hub_repo and w.filename) or (w.url and w.url.startswith("https://")), w.tag
        d = w.data
        assert len(d.input_size) == 3 and len(d.mean) == len(d.std) == d.input_size[0], w.tag
        assert d.interpolation in ("bilinear", "bicubic") and 0 < d.crop_pct <= 1 and d.num_classes >= 0, w.tag
        assert w.citation, w.tag
        if w.top1 is None:  # "not published" only with the reason
            assert len(w.top1_note) > 20, w.tag
        else:
            assert 50 < w.top1 < 100, w.tag
        if d.classes:
            assert len(hub._read_names(d.classes)) == d.num_classes, w.tag
        with torch.device("meta"):  # the tag's config builds, at the size of its data config
            m = vitkit.create_model(w.tag)
        assert m.num_classes == d.num_classes and tuple(m.input_shape()[-2:]) == d.input_size[1:], w.tag
        if d.num_frames:
            assert m.input_shape()[1] == d.num_frames, w.tag


def test_every_family_has_a_tag():
    families = {re.match(r"^(vit|deit|swin|cvt|vivit|timesformer|mvitv2|mvit)_", n)[1]
                for n in vitkit.list_models() if not n.startswith("resnet")}
    tagged = {re.match(r"^(vit|deit|swin|cvt|vivit|timesformer|mvitv2|mvit)_", w.tag)[1] for w in WEIGHTS}
    assert families == tagged
    sources = {w.source for w in WEIGHTS}
    assert sources == {"timm", "torchvision", "hf", "official"}


def test_timm_entries_agree_with_timm():
    from timm.models import get_pretrained_cfg

    for w in (w for w in WEIGHTS if w.source == "timm"):
        cfg = get_pretrained_cfg(w.tag)
        assert cfg is not None, w.tag
        assert cfg.hf_hub_id == w.hub_repo and w.filename == "model.safetensors", w.tag
        d = w.data
        assert (cfg.num_classes, tuple(cfg.input_size), cfg.interpolation, cfg.crop_pct, tuple(cfg.mean),
                tuple(cfg.std)) == (d.num_classes, d.input_size, d.interpolation, d.crop_pct, d.mean, d.std), w.tag


def test_torchvision_entries_agree_with_torchvision():
    from torchvision.models import get_model_weights

    for alias, tag in hub.ALIASES.items():
        w = hub._BY_TAG[tag]
        if w.source != "torchvision":
            continue
        tv = get_model_weights(alias).DEFAULT
        t = tv.transforms()
        assert tv.url == w.url and Path(w.url).name.split("-")[-1].startswith(w.sha256), tag
        assert next(iter(tv.meta["_metrics"].values()))["acc@1"] == w.top1, tag
        assert len(tv.meta["categories"]) == w.data.num_classes, tag
        assert tuple(t.mean) == w.data.mean and tuple(t.std) == w.data.std, tag
        assert t.interpolation.value == w.data.interpolation, tag
        assert t.crop_size[0] / t.resize_size[0] == pytest.approx(w.data.crop_pct), tag
        assert [c for c in tv.meta["categories"]] == list(hub._read_names(w.data.classes)), tag


def test_aliases_resolve_and_unknown_tags_list_the_known_ones():
    assert hub.resolve("swin_t") == ("swin_tiny_patch4_window7_224", hub._BY_TAG["swin_tiny_patch4_window7_224.tv_in1k"])
    assert hub.resolve("mvit_v2_s")[0] == "mvitv2_small_16x4"
    assert hub.resolve("microsoft/cvt-13")[0] == "cvt_13_224"
    assert hub.resolve("swin_tiny_patch4_window7_224") == ("swin_tiny_patch4_window7_224", None)
    assert is_weights_name("swin_tiny_patch4_window7_224.nope") and not is_weights_name("vit_base_patch16_224.pth")
    assert hub.resolve("swin_tiny_patch4_window7_224", pretrained=True)[1].tag == "swin_tiny_patch4_window7_224.ms_in1k"
    with pytest.raises(WeightsError, match="known tags of swin_tiny_patch4_window7_224: ms_in1k, tv_in1k"):
        hub.resolve("swin_tiny_patch4_window7_224.nope")
    with pytest.raises(WeightsError, match="no published weights for 'resnet20_cifar'"):
        vitkit.create_model("resnet20_cifar", pretrained=True)


def test_class_names_travel_with_the_weights():
    with torch.device("meta"):
        m = vitkit.create_model("swin_t")
        v = vitkit.create_model("mvit_v2_s")
        plain = vitkit.create_model("swin_tiny_patch4_window7_224")
    assert hub.class_names(m)[:2] == ["tench", "goldfish"] and len(hub.class_names(v)) == 400
    assert hub.class_names(plain) is None


# --- the command line ------------------------------------------------------------------------------------------
def test_cli_weights_lists_tags_with_accuracy_and_size(capsys):
    from vitkit.cli import main

    assert main(["weights", "swin_tiny*"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["tag", "source", "top-1", "params"]
    row = next(line for line in lines if line.startswith("swin_tiny_patch4_window7_224.tv_in1k "))
    assert "torchvision" in row and "81.47" in row and "28.3M" in row and "swin_t-704ceda3.pth" in row
    assert len(lines) == 1 + len(hub.list_weights("swin_tiny*"))
    assert main(["weights", "nothing*"]) == 2


def test_cli_unknown_tag_lists_the_known_ones_in_one_line(capsys):
    from vitkit.cli import main

    code = main(["eval", "swin_tiny_patch4_window7_224.nope"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("error: unknown weights tag 'swin_tiny_patch4_window7_224.nope'; known tags of "
                          "swin_tiny_patch4_window7_224: ms_in1k, tv_in1k, ms_in22k_ft_in1k")


TINY_CLI = ["--override", "img_size=32", "--override", "patch_size=8", "--override", "embed_dim=48",
            "--override", "depth=1", "--override", "num_heads=3"]


def test_cli_predict_a_tag_prints_imagenet_names_and_train_init_from_a_tag(server, monkeypatch, tmp_path, capsys):
    from PIL import Image

    from vitkit.cli import main

    tag = "vit_base_patch16_224.augreg2_in21k_ft_in1k"
    ref = timm.create_model("vit_base_patch16_224", img_size=32, patch_size=8, embed_dim=48, depth=1, num_heads=3)
    serve(server, monkeypatch, tag, ref.state_dict())
    img = tmp_path / "x.png"
    Image.fromarray((torch.rand(40, 48, 3) * 255).byte().numpy()).save(img)
    assert main(["predict", tag, str(img), "--topk", "2", *TINY_CLI]) == 0
    out = capsys.readouterr().out
    names = hub._read_names("imagenet-1k")
    assert sum(n in out for n in names) >= 2, out
    code = main(["train", "--model", "vit_base_patch16_224", "--init", tag, "--data", "digits", *TINY_CLI,
                 "--epochs", "1", "--limit", "8", "--batch-size", "8", "--out", str(tmp_path / "run")])
    err = " ".join(capsys.readouterr().err.split())  # rich wraps lines
    assert code == 0 and f"from {tag!r} (vitkit layout)" in err and "classifier was re-initialised" in err
