"""Compressed convolutions: equivalence with the dense kernel they stand for, parameter counts by
hand, FLOP formulas against the operations the layer actually traces, bad input."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sciops._errors import ConfigError
from sciops.nn import (
    CPConv,
    DepthwiseSeparableConv,
    FullConv,
    SeparableSumConv,
    Tucker2Conv,
)

FORMS = [
    (CPConv, {"rank": 4}),
    (SeparableSumConv, {"rank": 2}),
    (Tucker2Conv, {"rank": 3}),
    (DepthwiseSeparableConv, {"rank": 2}),
    (FullConv, {}),
]

# Layers applied in one compiled program: op by op, every convolution, einsum and bias of a
# factored layer is dispatched (and compiled) separately.
_apply = eqx.filter_jit(lambda layers, x: [layer(x) for layer in layers])
_full_kernel = eqx.filter_jit(lambda layer: layer.full_kernel())


def test_cp_from_factors_reproduces_the_full_kernel(getkey):
    """A rank-R CP conv equals the dense conv whose kernel is built from the same factors."""
    c_i, c_o, r, ks = 6, 5, 7, (5, 3)
    first = jax.random.normal(getkey(), (r, c_i))
    filters = tuple(jax.random.normal(getkey(), (r, k)) for k in ks)
    last = jax.random.normal(getkey(), (c_o, r))
    # The kernel built by hand, independently of the layer's own full_kernel.
    w = np.einsum("or,ri,ra,rb->oiab", last, first, filters[0], filters[1])
    x = jax.random.normal(getkey(), (c_i, 17, 13))
    dense = FullConv(c_i, c_o, ks, weight=jnp.asarray(w), key=getkey())
    cp = CPConv.from_factors(first, filters, last)
    y_cp, y_dense = _apply((cp, dense), x)
    scale = float(jnp.abs(y_dense).max())
    np.testing.assert_allclose(y_cp, y_dense, atol=1e-5 * scale)
    np.testing.assert_allclose(_full_kernel(cp), w, rtol=1e-5, atol=1e-5)


def test_cp_at_full_rank_represents_any_kernel(getkey):
    """Any kernel has CP rank at most C_i*k1*k2 (one unit factor per (i, a, b)); at that rank
    the CP conv reproduces a random dense kernel's outputs exactly."""
    c_i, c_o, ks = 3, 4, (3, 3)
    w = jax.random.normal(getkey(), (c_o, c_i, *ks))
    idx = np.array(np.unravel_index(np.arange(c_i * 9), (c_i, *ks))).T  # rows (i, a, b)
    r = len(idx)
    first = np.zeros((r, c_i), np.float32)
    fa = np.zeros((r, 3), np.float32)
    fb = np.zeros((r, 3), np.float32)
    first[np.arange(r), idx[:, 0]] = 1
    fa[np.arange(r), idx[:, 1]] = 1
    fb[np.arange(r), idx[:, 2]] = 1
    last = np.asarray(w)[:, idx[:, 0], idx[:, 1], idx[:, 2]]
    cp = CPConv.from_factors(jnp.asarray(first), (jnp.asarray(fa), jnp.asarray(fb)),
                             jnp.asarray(last))
    x = jax.random.normal(getkey(), (c_i, 11, 9))
    dense = FullConv(c_i, c_o, ks, weight=w, key=getkey())
    np.testing.assert_allclose(*_apply((cp, dense), x), atol=1e-5)


@pytest.mark.parametrize("cls,kw", FORMS)
@pytest.mark.parametrize("ks", [(3, 5), (3, 3, 5)])
def test_factored_execution_equals_its_dense_kernel(cls, kw, ks, getkey):
    """Each form, run factored, equals a dense conv with its materialised kernel (2-D and 3-D);
    the bias is part of both."""
    c_i, c_o = 4, 6
    layer = cls(c_i, c_o, ks, key=getkey(), **kw)
    bias = jax.random.normal(getkey(), (c_o,))
    layer = eqx.tree_at(lambda m: m.bias, layer, bias)
    spatial = (9, 8) if len(ks) == 2 else (7, 6, 8)
    x = jax.random.normal(getkey(), (c_i, *spatial))
    dense = eqx.tree_at(lambda m: m.bias, FullConv(c_i, c_o, ks, weight=_full_kernel(layer),
                                                    key=getkey()), bias)
    np.testing.assert_allclose(*_apply((layer, dense), x), atol=2e-5)


def _hand_count(cls, c_i, c_o, ks, r):
    s, k = sum(ks), math.prod(ks)
    return {
        FullConv: c_o * c_i * k + c_o,
        CPConv: r * c_i + r * s + c_o * r + c_o,
        SeparableSumConv: c_o * c_i * r * s + c_o,
        Tucker2Conv: r * c_i + r * r * k + c_o * r + c_o,
        DepthwiseSeparableConv: c_i * r * k + c_o * c_i * r + c_o,
    }[cls]


@pytest.mark.parametrize("cls", [FullConv, CPConv, SeparableSumConv, Tucker2Conv,
                                 DepthwiseSeparableConv])
def test_n_params_by_hand(cls, getkey):
    # 32 -> 32 channels, 5x5, rank 8: full 25,632; CP 8*(32+10+32)+32 = 624.
    for ks in [(5, 5), (3, 3, 3)]:
        kw = {} if cls is FullConv else {"rank": 8}
        layer = cls(32, 32, ks, key=getkey(), **kw)
        assert layer.n_params == _hand_count(cls, 32, 32, ks, 8)
    assert FullConv(32, 32, (5, 5), key=getkey()).n_params == 25_632
    assert CPConv(32, 32, (5, 5), 8, key=getkey()).n_params == 624


def _traced_flops(fn, x) -> int:
    """FLOPs implied by the traced operations: 2 per multiply-add of each convolution and matrix
    product, 1 per element of each addition (the bias)."""
    jaxpr = jax.make_jaxpr(fn)(x).jaxpr
    total = 0

    def walk(jp):
        nonlocal total
        for eqn in jp.eqns:
            name = eqn.primitive.name
            out = eqn.outvars[0].aval
            if name == "conv_general_dilated":
                rhs = eqn.invars[1].aval
                total += 2 * math.prod(out.shape) * math.prod(rhs.shape[1:])
            elif name == "dot_general":
                (lc, _), _ = eqn.params["dimension_numbers"]
                lhs = eqn.invars[0].aval
                total += 2 * math.prod(out.shape) * math.prod(lhs.shape[d] for d in lc)
            elif name in ("add", "add_any"):
                total += math.prod(out.shape)
            elif name in ("mul", "sub", "div"):
                raise AssertionError(f"unexpected arithmetic {name}")
            if "jaxpr" in eqn.params:  # jnp functions are jitted: walk their inner jaxpr
                walk(eqn.params["jaxpr"].jaxpr)
            elif name in ("pjit", "jit", "custom_jvp_call", "custom_vjp_call"):
                raise AssertionError(f"unhandled nested {name}")

    walk(jaxpr)
    return total


@pytest.mark.parametrize("cls,kw", FORMS)
@pytest.mark.parametrize("ks,spatial", [((5, 3), (16, 12)), ((3, 3, 5), (6, 8, 10))])
def test_flops_formula_matches_the_traced_ops(cls, kw, ks, spatial, getkey):
    layer = cls(6, 10, ks, key=getkey(), **kw)
    x = jnp.ones((6, *spatial))
    assert layer.flops(spatial) == _traced_flops(layer, x)


def test_compression_ratios_at_5x5():
    """The ratios the wave simulator relies on (32 channels, 5x5): CP rank 8 is 41x smaller than
    the dense kernel, and does 41x fewer FLOPs."""
    key = jax.random.key(0)
    full = FullConv(32, 32, (5, 5), key=key)
    cp = CPConv(32, 32, (5, 5), 8, key=key)
    assert full.n_params / cp.n_params == pytest.approx(25_632 / 624)
    assert full.flops((64, 64)) / cp.flops((64, 64)) == pytest.approx(
        (2 * 25_600 + 32) / (2 * 8 * 74 + 32))


def test_init_variance_matches_the_dense_default(getkey):
    """Every form's equivalent kernel has entry variance ~1/(3 C_i K), like the dense init
    (averaged over 8 draws: entries of a low-rank kernel share factors, so one draw is noisy)."""
    c_i, ks = 32, (5, 5)
    target = 1.0 / (3 * c_i * 25)
    for cls, kw in FORMS:
        var = np.mean([float(jnp.mean(_full_kernel(cls(c_i, 32, ks, key=getkey(), **kw)) ** 2))
                       for _ in range(8)])
        assert var == pytest.approx(target, rel=0.25), cls.__name__


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "4"])
def test_rank_must_be_a_positive_integer(bad, getkey):
    for cls in (CPConv, SeparableSumConv, Tucker2Conv, DepthwiseSeparableConv):
        if isinstance(bad, int):  # the layer's own check (bool is an int to Python)
            with pytest.raises(ConfigError, match="rank: expected a positive integer"):
                cls(4, 4, (3, 3), bad, key=getkey())
        else:
            # not an int: the layer's own check, or first the suite's runtime type check
            # (jaxtyping + beartype) of the `rank: int` annotation; both name the argument
            with pytest.raises((ConfigError, TypeError), match="rank"):
                cls(4, 4, (3, 3), bad, key=getkey())


def test_bad_kernel_and_weight_shapes(getkey):
    with pytest.raises(ConfigError, match="kernel_size"):
        FullConv(4, 4, (3, 0), key=getkey())
    with pytest.raises(ConfigError, match="kernel_size"):
        SeparableSumConv(4, 4, (3,), 2, key=getkey())
    with pytest.raises(ConfigError, match=r"weight: expected shape \(4, 4, 3, 3\)"):
        FullConv(4, 4, (3, 3), weight=jnp.zeros((4, 4, 3)), key=getkey())
