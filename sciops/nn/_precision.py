"""Memory levers that a training step turns on while it is traced: the compute dtype of the
layers and the rematerialisation of model blocks.

A training step (`sciops.train.make_step`) traces the family's loss inside
``with use_memory_policy(MemoryPolicy(...)):``. The models read the active policy at trace time
through three functions, so the compiled program changes and nothing else does:

- `to_compute(x)`: a model casts its (normalised) inputs to the compute dtype on entry, after
  its float32 normalisers; with the parameters cast by the step, every matrix product then runs
  in that dtype. Outputs meet float32 statistics and targets downstream, so type promotion
  brings the loss and its reduction back to float32 without further casts.
- `at_least_float32(x)`: the numerically sensitive pieces upcast around themselves (Fourier
  transforms, `jnp.fft` having no bfloat16; softmax and normalisation statistics; geometry).
- `remat_block(fn)`: a model wraps each of its block calls; with a remat policy active the block
  becomes `equinox.filter_checkpoint` with that `jax.checkpoint_policies` policy, so the backward
  pass recomputes the block's insides instead of storing them.

Outside a step (evaluation, rollouts, a model called by hand) no policy is active: float32,
no rematerialisation. The policy is a trace-time context like `jax.set_mesh`; it is never a
global setting and it does not outlive the `with` block.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import io
import re
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import equinox as eqx
import jax
import jax.ad_checkpoint
import jax.custom_batching
import jax.numpy as jnp

__all__ = ["MemoryPolicy", "REMAT_POLICIES", "active_memory_policy", "at_least_float32",
           "cast_floating", "remat_block", "saved_activation_bytes", "to_compute",
           "use_memory_policy"]

REMAT_POLICIES = ("nothing_saveable", "dots_saveable", "dots_with_no_batch_dims_saveable",
                  "checkpoint_dots", "checkpoint_dots_with_no_batch_dims", "everything_saveable")
"""The `jax.checkpoint_policies` that take no arguments: what `train.remat_policy` may name
(``nothing_saveable``, the default, keeps only each block's inputs)."""

_F = TypeVar("_F", bound=Callable[..., Any])


@dataclasses.dataclass(frozen=True)
class MemoryPolicy:
    """What a traced training step asks of the model's layers.

    **Fields:**

    - `compute_dtype`: the dtype of the layers' arithmetic (``"bfloat16"``), or `None` to keep
      the parameters' own dtype (float32).
    - `remat_policy`: the name of a `jax.checkpoint_policies` policy (one of `REMAT_POLICIES`)
      applied to every block call, or `None` for no rematerialisation.
    """

    compute_dtype: str | None = None
    remat_policy: str | None = None

    def __post_init__(self):
        if self.remat_policy is not None and self.remat_policy not in REMAT_POLICIES:
            raise ValueError(f"remat_policy: expected one of {', '.join(REMAT_POLICIES)}, got "
                             f"{self.remat_policy!r}")
        if self.compute_dtype is not None:
            if not jnp.issubdtype(jnp.dtype(self.compute_dtype), jnp.floating):
                raise ValueError(f"compute_dtype: expected a floating dtype name, got "
                                 f"{self.compute_dtype!r}")


_ACTIVE: contextvars.ContextVar[MemoryPolicy | None] = contextvars.ContextVar(
    "sciops_memory_policy", default=None)
_DEFAULT = MemoryPolicy()


@contextlib.contextmanager
def use_memory_policy(policy: MemoryPolicy) -> Iterator[MemoryPolicy]:
    """Make `policy` the active one while tracing the body of the `with` block."""
    token = _ACTIVE.set(policy)
    try:
        yield policy
    finally:
        _ACTIVE.reset(token)


def active_memory_policy() -> MemoryPolicy:
    """The policy of the enclosing `use_memory_policy` (the default: float32, no remat)."""
    policy = _ACTIVE.get()
    return _DEFAULT if policy is None else policy


def cast_floating(tree: Any, dtype) -> Any:
    """Every floating-point array leaf of `tree` cast to `dtype` (others unchanged); the
    identity for `dtype=None`. Differentiable: the gradient comes back in the leaf's dtype."""
    if dtype is None:
        return tree
    return jax.tree.map(
        lambda x: x.astype(dtype) if eqx.is_array(x) and jnp.issubdtype(x.dtype, jnp.floating)
        else x, tree)


def to_compute(tree: Any) -> Any:
    """`tree`'s floating arrays in the active compute dtype (unchanged without one)."""
    return cast_floating(tree, active_memory_policy().compute_dtype)


def at_least_float32(x: jax.Array) -> jax.Array:
    """`x` promoted to at least float32 (float64 stays float64): for the pieces that must not
    run in bfloat16 (transforms, softmax, statistics, geometry)."""
    return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def remat_block(fn: _F) -> _F:
    """`fn`, rematerialised with the active policy's `remat_policy` (unchanged without one).

    Wrap the call of one model block, ``h = remat_block(block)(h, ...)``: the backward pass
    then keeps only what the policy saves (with ``nothing_saveable``: the block's inputs) and
    recomputes the rest when the block's cotangent arrives. `fn` and the arguments may be any
    pytrees (modules included): their arrays are traced and differentiated (the floating ones),
    everything else passes through unchanged, as in `equinox.filter_checkpoint`.

    Why not `jax.checkpoint` alone: its recomputation depends only on the block's inputs, and
    its optimization barrier is expanded early in XLA's CPU pipeline, so common-subexpression
    elimination merges the recomputation back into the forward pass (measured: a chain of 8
    checkpointed tanh blocks used 1.4× the temporary memory of the plain chain on CPU). Here
    the backward pass of the `jax.checkpoint`-ed block runs inside a `lax.cond` whose predicate
    depends on the cotangent and is always true, so it can be neither merged nor scheduled
    before the cotangent exists (the same chain: 0.65× the plain one; under `jax.vmap` the
    conditional stays one conditional, see `_after_cotangent`).
    """
    name = active_memory_policy().remat_policy
    if name is None:
        return fn
    policy = getattr(jax.checkpoint_policies, name)

    def wrapped(*args, **kwargs):
        dynamic, static = eqx.partition((fn, args, kwargs), eqx.is_array)
        diff, other = eqx.partition(dynamic, eqx.is_inexact_array)

        def call(diff, other):
            f, a, k = eqx.combine(diff, other, static)
            return f(*a, **k)

        return _recompute_after_cotangent(call, policy)(diff, other)

    return wrapped  # type: ignore[return-value]


def _always_true(ct: Any) -> jax.Array:
    """True, computed from the cotangent's bits so that XLA cannot fold it to a constant."""
    leaf = jnp.ravel(jax.tree.leaves(ct)[0])[0].astype(jnp.float32)
    return (jax.lax.bitcast_convert_type(leaf, jnp.uint32) | jnp.uint32(1)) != 0


def _zeros_like_output(fn: Callable, *args: Any) -> Any:
    return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(fn, *args))


def _after_cotangent(apply: Callable, vjp: Any, ct: Any) -> Any:
    """``apply(vjp, ct)`` inside a conditional on `ct` (always taken).

    Under `jax.vmap` (the families' losses map their models over the batch) a conditional
    with a batched predicate would become a `select` of both branches, undoing the point;
    the batching rule therefore maps `apply` inside ONE conditional whose predicate reads
    the whole batched cotangent.
    """

    @jax.custom_batching.custom_vmap
    def run(vjp, ct):
        return jax.lax.cond(_always_true(ct), apply, functools.partial(_zeros_like_output, apply),
                            vjp, ct)

    @run.def_vmap
    def _batched(axis_size, in_batched, vjp, ct):
        del axis_size
        axes = jax.tree.map(lambda b: 0 if b else None, tuple(in_batched))
        mapped = jax.vmap(apply, in_axes=axes)
        out = jax.lax.cond(_always_true(ct), mapped,
                           functools.partial(_zeros_like_output, mapped), vjp, ct)
        return out, jax.tree.map(lambda _: True, out)

    return run(vjp, ct)


def _recompute_after_cotangent(call: Callable, policy: Callable[..., bool]) -> Callable:
    """`call(diff, other)`, differentiable in `diff`, whose backward pass recomputes what
    `policy` did not save, inside a conditional on the cotangent (see `remat_block`)."""
    checkpointed = jax.checkpoint(call, policy=policy)

    @jax.custom_vjp
    def run(diff, other):
        return call(diff, other)

    def fwd(diff, other):
        out, vjp = jax.vjp(lambda d: checkpointed(d, other), diff)
        return out, vjp

    def bwd(vjp, ct):
        return _after_cotangent(lambda v, c: v(c)[0], vjp, ct), None

    run.defvjp(fwd, bwd)
    return run


_RESIDUAL = re.compile(r"^([a-z]+)(\d*)\[([\d,]*)\] (.*)$")


def saved_activation_bytes(fn: Callable, *args: Any) -> int:
    """The bytes that the forward pass of `fn` saves for its backward pass (the residuals of
    ``jax.vjp(fn, *args)``), not counting the arguments themselves: the activation memory
    that bfloat16 compute and rematerialisation act on, independent of the backend.

    Read from `jax.ad_checkpoint.print_saved_residuals` (one line per residual), the public
    form of JAX's residual listing. `fn` must return a scalar.
    """
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        jax.ad_checkpoint.print_saved_residuals(fn, *args)
    total = 0
    for line in out.getvalue().splitlines():
        m = _RESIDUAL.match(line.strip())
        if m is None or m.group(4).startswith("from the argument"):
            continue
        kind, bits, shape = m.group(1), m.group(2), m.group(3)
        size = int(bits) // 8 if bits else (1 if kind == "bool" else 4)
        for n in filter(None, shape.split(",")):
            size *= int(n)
        total += size
    return total
