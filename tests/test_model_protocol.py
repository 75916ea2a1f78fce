"""The model protocol (models/base.py, docs/architecture.md): a family defined only in this file — RowNet, whose
blocks attend within each row of the patch grid, a grouping no vitkit family uses — is registered here and gets
from the layers above, with no edit anywhere else: layer-wise lr decay, ONNX export with its free axes (checked
in onnxruntime at another size), attention maps and rollout on its token grid, its position tables, and its
data config and transform; and, with key maps it registers here under its `weight_layout`, weight conversion
(`to_vitkit`, `vitkit convert --to`)."""

import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

import vitkit
from vitkit import convert, registry
from vitkit.checkpoint import read_state_dict
from vitkit.cli import main
from vitkit.errors import ConfigError
from vitkit.layers import Block, PatchEmbed, resample_grid
from vitkit.layers.tokens import TokenLayout, TokenSpace, trace
from vitkit.models.base import PositionTable, VitkitModel, data_cfg
from vitkit.registry import build_config, register_model
from vitkit.tools import visualize
from vitkit.tools.attention_maps import record_attention
from vitkit.tools.export import export_onnx, onnx_dynamic_axes
from vitkit.train import build_optimizer, lr_scales


@dataclass(frozen=True)
class RowNetConfig:
    img_size: int = 16
    patch_size: int = 4
    in_chans: int = 3
    num_classes: int = 3
    embed_dim: int = 16
    depth: int = 2
    num_heads: int = 2


def _rows(x: torch.Tensor, W: int) -> torch.Tensor:
    return x.reshape(-1, W, x.shape[-1])  # (B, H·W, D) -> (B·H, W, D): one sequence per row


class RowBlock(Block):
    """Attention within each row of the (H, W) patch grid, then the MLP: (B, H·W, D) -> same."""

    def forward(self, x, grid):
        B, N, D = x.shape
        x = x + self.attn(_rows(self.norm1(x), grid[1])).reshape(B, N, D)
        return x + self.mlp(self.norm2(x))

    def attention_layout(self, call):
        H, W = call.args[1]
        return TokenLayout.groups(trace(lambda t: _rows(t, W), H * W), TokenSpace(0, (H, W)))


class RowNet(VitkitModel):
    """(B, C, H, W) -> logits; a learned position table resampled to the patch grid, mean pooling."""

    weight_layout = "RowNet"  # the name its key maps to and from other libraries are registered under

    def __init__(self, cfg: RowNetConfig):
        super().__init__(cfg, num_features=cfg.embed_dim)
        self.patch_embed = PatchEmbed(cfg.patch_size, cfg.in_chans, cfg.embed_dim)
        self.grid_size = (cfg.img_size // cfg.patch_size,) * 2
        self.pos_embed = nn.Parameter(torch.randn(1, math.prod(self.grid_size), cfg.embed_dim) * 0.02)
        self.blocks = nn.ModuleList(RowBlock(cfg.embed_dim, cfg.num_heads) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.embed_dim)
        self.head = self.new_head(cfg.num_classes)

    def forward_features(self, x):
        grid = self.patch_embed.grid(x)
        pos = self.pos_embed
        if grid != self.grid_size:
            pos = resample_grid(pos.reshape(1, *self.grid_size, -1), grid).flatten(1, 2)  # (1, H, W, D) -> (1, N, D)
        x = self.patch_embed(x) + pos
        for blk in self.blocks:
            x = blk(x, grid)
        return self.norm(x)

    def forward_head(self, x, pre_logits=False):
        x = x.mean(1)
        return x if pre_logits else self.head(x)

    # the protocol: layer_groups and input_steps keep their defaults (a `blocks` stack, one patch per step)
    def size_dependence(self):
        return {"height": "positions", "width": "positions"}

    def position_tables(self):
        return [PositionTable("row-net position embedding", self.pos_embed[0], self.grid_size)]

    def data_sources(self):
        return {"toy": data_cfg((0.5, 0.4, 0.3), (0.2, 0.2, 0.2), "bilinear", 0.875)}


@pytest.fixture
def model():
    @register_model
    def rownet_tiny(**overrides) -> RowNet:
        return RowNet(build_config(RowNetConfig(), overrides))

    try:
        torch.manual_seed(0)
        yield vitkit.create_model("rownet_tiny").eval()
    finally:
        registry._MODELS.pop("rownet_tiny")  # keep the registry as the other tests expect it


def test_layer_decay(model):
    scales = lr_scales(model, 0.5)  # L = 2 blocks: embeddings 0.5^3, block j 0.5^(2 - j), norm and head 1
    assert scales["patch_embed.proj.weight"] == scales["pos_embed"] == 0.125
    assert scales["blocks.0.attn.qkv.weight"] == 0.25 and scales["blocks.1.mlp.fc2.bias"] == 0.5
    assert scales["norm.weight"] == scales["head.weight"] == 1.0
    opt = build_optimizer(model, lr=2.0, layer_decay=0.5)
    lr_of = {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}
    assert lr_of[id(model.blocks[0].attn.qkv.weight)] == pytest.approx(0.5)


def test_export_leaves_the_declared_axes_free(model, tmp_path):
    assert onnx_dynamic_axes(model) == ("batch", "height", "width") and onnx_dynamic_axes(model, 17) == ("batch",)
    diff = export_onnx(model, tmp_path / "m.onnx", batch_size=2)  # checked at (3, 16, 16) and at (3, 24, 24)
    assert diff is not None and diff <= 1e-4


def test_attention_maps_and_rollout_on_the_row_grid(model):
    x = torch.randn(2, 3, 16, 12)  # a 4×3 patch grid
    with torch.no_grad(), record_attention(model) as rec:
        model(x)
    layers = rec.layers
    assert [layer.name for layer in layers] == ["blocks.0.attn", "blocks.1.attn"]
    assert layers[0].probs.shape == (2, 2, 12, 12) and layers[0].q_space == TokenSpace(0, (4, 3))
    # block 0 by hand: softmax(q kᵀ / √d) within each row, zero across rows
    blk = model.blocks[0]
    h = _rows(blk.norm1(model.patch_embed(x) + resample_grid(model.pos_embed.reshape(1, 4, 4, -1), (4, 3))
                        .flatten(1, 2)), 3)  # (B·4, 3, D)
    q, k, _ = blk.attn.qkv(h).reshape(8, 3, 3, 2, 8).permute(2, 0, 3, 1, 4)  # -> (3, B·4, h, 3, d)
    rows = (q @ k.transpose(-1, -2) / math.sqrt(8)).softmax(-1).reshape(2, 4, 2, 3, 3)  # (B, H, h, W, W)
    expected = torch.zeros(2, 2, 12, 12)
    for r in range(4):
        expected[:, :, 3 * r:3 * r + 3, 3 * r:3 * r + 3] = rows[:, r]
    torch.testing.assert_close(layers[0].probs, expected.detach(), atol=1e-6, rtol=1e-5)
    rollout = visualize.attention_rollout(model, x)
    assert rollout.shape == (2, 12, 12)
    torch.testing.assert_close(rollout.sum(-1), torch.ones(2, 12))
    same_row = torch.arange(12)[:, None] // 3 == torch.arange(12)[None] // 3
    assert (rollout[:, ~same_row] == 0).all() and (rollout[:, same_row] > 0).all()  # rows never mix
    assert visualize.rollout_map(layers).shape == (4, 3)
    assert [m.shape for m in visualize.query_maps(layers, (1, 2))] == [(2, 4, 3)] * 2


def test_position_tables(model, tmp_path):
    (title, picture), = visualize.position_tables(model)
    assert title == "row-net position embedding (cosine)" and picture.shape == (4, 4, 4, 4)
    rows = model.pos_embed[0].detach()
    torch.testing.assert_close(picture[1, 2, 3, 0], F.cosine_similarity(rows[1 * 4 + 2], rows[3 * 4 + 0], dim=0))
    torch.testing.assert_close(visualize.position_similarity(model), picture)
    visualize.plot_position_tables(model, tmp_path / "pos.png")
    assert (tmp_path / "pos.png").stat().st_size > 1000


def test_data_config_and_transform(model):
    cfg = vitkit.data_config(model)
    assert cfg == {"input_size": (3, 16, 16), "interpolation": "bilinear", "mean": (0.5, 0.4, 0.3),
                   "std": (0.2, 0.2, 0.2), "crop_pct": 0.875, "crop_mode": "center", "source": "toy"}
    img = Image.fromarray(np.full((40, 30, 3), 128, np.uint8))
    out = vitkit.create_transform(model)(img)
    assert out.shape == (3, 16, 16)
    torch.testing.assert_close(out[:, 0, 0], (128 / 255 - torch.tensor([0.5, 0.4, 0.3])) / 0.2)


# A library that names RowNet's parts otherwise: `embed` for the patch projection, `rows.i` for the blocks, `pos`.
_FOREIGN = [("^embed.", "^patch_embed.proj."), ("^rows.{i}.", "^blocks.{i}."), ("^pos$", "^pos_embed$")]


@pytest.fixture
def rownet_maps():
    """RowNet's key maps for timm's name, registered from this file by its weight_layout (convert/ is not edited)."""
    @convert.register_converter("timm", "RowNet", lambda sd: "embed.weight" in sd)
    def rownet_from_timm(sd, model):
        return convert.rename_keys(sd, convert.pair_rules(_FOREIGN))

    @convert.register_exporter("timm", "RowNet")
    def rownet_to_timm(model):
        return convert.rename_keys(dict(model.state_dict()), convert.pair_rules(_FOREIGN, to_foreign=True)), None

    try:
        yield
    finally:  # keep the conversion tables as the other tests expect them
        convert._CONVERTERS[:] = [c for c in convert._CONVERTERS if c.layout != "RowNet"]
        convert._EXPORTERS.pop(("timm", "RowNet"))


def test_weight_conversion_by_its_layout(model, rownet_maps, tmp_path):
    vitkit.save_checkpoint(model, tmp_path / "ours.safetensors")
    out = tmp_path / "foreign.pth"
    assert main(["convert", str(tmp_path / "ours.safetensors"), "--to", "timm", "--out", str(out)]) == 0
    foreign, _ = read_state_dict(out)
    assert {"embed.weight", "pos", "rows.1.attn.qkv.weight", "head.weight"} <= set(foreign)
    assert not any(k.startswith(("blocks.", "patch_embed.", "pos_embed")) for k in foreign)
    back = vitkit.create_model("rownet_tiny")
    state_dict, source = convert.to_vitkit(foreign, back)
    assert source == "timm"
    back.load_state_dict(state_dict)  # strict: every key mapped back
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(back.eval()(x), model(x))
    with pytest.raises(ConfigError, match="hf has no RowNet model to convert rownet_tiny into; hf covers CvT, "):
        convert.from_vitkit(model, "hf")
