"""ReducedAttention: identity reducers give plain attention; strided reducers shrink K/V (or Q and the grid)."""

import pytest
import torch
from torch import nn

from vitkit.layers import Attention, ReducedAttention


def _explicit(q, k, v, scale, bias=None):
    """softmax(q·kᵀ·scale + bias)·v written out, independent of SDPA."""
    a = (q @ k.transpose(-2, -1)) * scale
    if bias is not None:
        a = a + bias
    return a.softmax(-1) @ v


def _tokens_to_map(t, grid):
    return t.transpose(1, 2).reshape(t.shape[0], t.shape[2], *grid)


def _map_to_tokens(m):
    return m.flatten(2).transpose(1, 2)


class _Recorder(nn.Module):
    """Token-wise identity that records the shape it sees (used as k_norm to observe K's length)."""

    def __init__(self):
        super().__init__()
        self.shape = None

    def forward(self, x):
        self.shape = tuple(x.shape)
        return x


@pytest.mark.parametrize("prefix", [0, 1])
def test_identity_reducers_equal_plain_attention(prefix):
    dim, heads, grid = 24, 3, (4, 5)
    ref = Attention(dim, heads).eval()
    ra = ReducedAttention(dim, dim, heads, reduce_first=False, num_prefix_tokens=prefix).eval()
    ra.load_state_dict(ref.state_dict())  # same key names: qkv, proj
    x = torch.randn(2, prefix + 20, dim)
    out, new_grid = ra(x, grid)
    assert new_grid == grid
    torch.testing.assert_close(out, ref(x), atol=1e-6, rtol=0)


def test_identity_reducers_reduce_first_equal_plain_attention():
    dim, heads, grid = 24, 3, (4, 5)
    ref = Attention(dim, heads).eval()
    ra = ReducedAttention(dim, dim, heads, reduce_first=True, num_prefix_tokens=1).eval()
    wq, wk, wv = ref.qkv.weight.chunk(3)
    bq, bk, bv = ref.qkv.bias.chunk(3)
    with torch.no_grad():
        for lin, w, b in ((ra.proj_q, wq, bq), (ra.proj_k, wk, bk), (ra.proj_v, wv, bv)):
            lin.weight.copy_(w)
            lin.bias.copy_(b)
        ra.proj.load_state_dict(ref.proj.state_dict())
    x = torch.randn(2, 21, dim)
    torch.testing.assert_close(ra(x, grid)[0], ref(x), atol=1e-6, rtol=0)


def test_stride2_kv_reducer_reduce_first_matches_explicit_cvt():
    """CvT order: depthwise stride-2 conv on the dim-wide map, cls bypassing it, then the linears."""
    dim, heads, grid, P = 16, 2, (6, 6), 1
    conv = lambda s: nn.Conv2d(dim, dim, 3, s, 1, groups=dim, bias=False)
    rec = _Recorder()
    ra = ReducedAttention(dim, dim, heads, q_reducer=conv(1), k_reducer=conv(2), v_reducer=conv(2),
                          reduce_first=True, num_prefix_tokens=P, scale=dim ** -0.5, k_norm=rec).eval()
    x = torch.randn(2, P + 36, dim)
    out, new_grid = ra(x, grid)
    assert new_grid == grid and out.shape == (2, P + 36, dim)
    assert rec.shape == (2, heads, P + 9, dim // heads)  # K: 6×6 -> 3×3 map, plus the cls token

    cls, m = x[:, :P], _tokens_to_map(x[:, P:], grid)
    q, k, v = (torch.cat([cls, _map_to_tokens(r(m))], 1) for r in (ra.q_reducer, ra.k_reducer, ra.v_reducer))
    split = lambda t: t.reshape(2, t.shape[1], heads, -1).transpose(1, 2)
    q, k, v = split(ra.proj_q(q)), split(ra.proj_k(k)), split(ra.proj_v(v))
    o = _explicit(q, k, v, dim ** -0.5).transpose(1, 2).reshape(2, -1, dim)
    torch.testing.assert_close(out, ra.proj(o), atol=1e-5, rtol=0)


def test_stride2_q_pool_per_head_reduces_grid_3d():
    """MViT order: fused qkv, heads split, then 3-D pooling per head; Q's stride sets the output grid."""
    dim, dim_out, heads, grid, P = 8, 16, 2, (3, 4, 6), 1
    ra = ReducedAttention(dim, dim_out, heads, q_reducer=nn.MaxPool3d(3, (1, 2, 2), 1),
                          k_reducer=nn.MaxPool3d(3, (1, 2, 2), 1), v_reducer=nn.AvgPool3d(3, (1, 2, 2), 1),
                          num_prefix_tokens=P, q_norm=nn.LayerNorm(dim_out // heads),
                          residual_pooling=True).eval()
    x = torch.randn(2, P + 72, dim)
    out, new_grid = ra(x, grid)
    assert new_grid == (3, 2, 3)
    assert out.shape == (2, P + 18, dim_out)

    B, d = 2, dim_out // heads
    q, k, v = ra.qkv(x).reshape(B, P + 72, 3, heads, d).permute(2, 0, 3, 1, 4)

    def pool(t, r):
        m = _tokens_to_map(t[:, :, P:].reshape(B * heads, 72, d), grid)
        return torch.cat([t[:, :, :P], _map_to_tokens(r(m)).reshape(B, heads, -1, d)], 2)

    q, k, v = ra.q_norm(pool(q, ra.q_reducer)), pool(k, ra.k_reducer), pool(v, ra.v_reducer)
    o = _explicit(q, k, v, d ** -0.5) + q  # residual pooling, class token included (timm semantics)
    torch.testing.assert_close(out, ra.proj(o.transpose(1, 2).reshape(B, -1, dim_out)), atol=1e-5, rtol=0)


def test_residual_pooling_without_prefix_leaves_cls_out():
    dim, heads, grid = 8, 2, (4, 4)
    kw = {"num_prefix_tokens": 1, "residual_pooling": True, "q_reducer": nn.AvgPool2d(2)}
    a = ReducedAttention(dim, dim, heads, **kw).eval()
    b = ReducedAttention(dim, dim, heads, residual_with_prefix=False, **kw).eval()
    c = ReducedAttention(dim, dim, heads, num_prefix_tokens=1, q_reducer=nn.AvgPool2d(2)).eval()
    b.load_state_dict(a.state_dict())
    c.load_state_dict(a.state_dict())
    x = torch.randn(2, 17, dim)
    ya, yb, yc = a(x, grid)[0], b(x, grid)[0], c(x, grid)[0]
    torch.testing.assert_close(yb[:, :1], yc[:, :1])      # cls row: no residual
    torch.testing.assert_close(yb[:, 1:], ya[:, 1:])      # patch rows: residual as with prefix
    assert not torch.allclose(ya[:, :1], yc[:, :1])


def test_rel_pos_bias_is_added_with_grids():
    """The bias reaches the logits both ways: as extra q/k channels with gradients, as SDPA's mask without."""
    seen = {}

    class Bias(nn.Module):  # masks the cls key: one feature, the keys' "is prefix" flag times -1e9 / scale
        def forward(self, q, q_grid, k_grid, scale):
            seen.update(q=tuple(q.shape), q_grid=q_grid, k_grid=k_grid)
            return torch.full((*q.shape[:3], 1), -1e9 / scale), torch.tensor([[1.0]] + [[0.0]] * 4)

        def bias(self, q, q_grid, k_grid):
            q_rel, k_rel = self(q, q_grid, k_grid, 1.0)
            return q_rel @ k_rel.T

    ra = ReducedAttention(8, 8, 2, k_reducer=nn.AvgPool2d(2), v_reducer=nn.AvgPool2d(2), num_prefix_tokens=1,
                          rel_pos=Bias()).eval()
    plain = ReducedAttention(8, 8, 2, k_reducer=nn.AvgPool2d(2), v_reducer=nn.AvgPool2d(2), num_prefix_tokens=1).eval()
    plain.load_state_dict(ra.state_dict())
    x = torch.randn(1, 17, 8)
    with torch.no_grad():
        masked = ra(x, (4, 4))[0]
    assert seen == {"q": (1, 2, 17, 4), "q_grid": (4, 4), "k_grid": (2, 2)}
    torch.testing.assert_close(ra(x.requires_grad_(), (4, 4))[0], masked)  # the training form, same result
    assert not torch.allclose(masked, plain(x, (4, 4))[0], atol=1e-4)  # masking the cls key changed the result


def test_attention_dropout_only_in_training():
    ra = ReducedAttention(8, 8, 2, attn_drop=0.5, k_reducer=nn.AvgPool2d(2), v_reducer=nn.AvgPool2d(2))
    x = torch.randn(2, 16, 8)
    ra.eval()
    torch.testing.assert_close(ra(x, (4, 4))[0], ra(x, (4, 4))[0])
    ra.train()
    assert not torch.allclose(ra(x, (4, 4))[0], ra(x, (4, 4))[0])
