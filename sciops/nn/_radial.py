"""Radial basis for interatomic distances: sine (spherical Bessel $j_0$) functions times a smooth
polynomial cutoff envelope.

$$e_n(r) = \\sqrt{\\frac{2}{r_c}}\\,\\frac{\\sin(n\\pi r / r_c)}{r}\\; u(r / r_c), \\qquad
u(d) = 1 - \\frac{(p+1)(p+2)}{2} d^p + p(p+2) d^{p+1} - \\frac{p(p+1)}{2} d^{p+2}$$

for $d < 1$ and $u = 0$ beyond. The envelope and its first two derivatives vanish at $r_c$, so
energies, forces and their derivatives are continuous when an atom crosses the cutoff (needed for
energy-conserving MD).

**Reference:** Gasteiger, Groß, Günnemann, "Directional Message Passing for Molecular Graphs"
(DimeNet, ICLR 2020), eqs. (7)–(8).
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

__all__ = ["BesselBasis", "polynomial_envelope"]


def polynomial_envelope(d: Float[Array, "..."], p: int = 6) -> Float[Array, "..."]:
    """The DimeNet envelope $u(d)$ above, zero for $d \\ge 1$ (and for negative `d` clamped to 0)."""
    d = jnp.clip(d, 0.0, 1.0)
    u = (1.0 - (p + 1) * (p + 2) / 2 * d**p + p * (p + 2) * d ** (p + 1)
         - p * (p + 1) / 2 * d ** (p + 2))
    return jnp.where(d < 1.0, u, 0.0)


class BesselBasis(eqx.Module):
    """$r \\mapsto (e_1(r), \\dots, e_N(r))$ with the envelope applied (see the module docstring).

    **Arguments:**

    - `cutoff`: $r_c$ in Å.
    - `n_basis`: number of functions $N$.
    - `envelope_exponent`: $p$ of the envelope (DimeNet uses 5–6; 6 gives a $C^2$ cutoff).
    """

    cutoff: float = eqx.field(static=True)
    n_basis: int = eqx.field(static=True)
    envelope_exponent: int = eqx.field(static=True)

    def __init__(self, cutoff: float, n_basis: int = 8, envelope_exponent: int = 6):
        if not cutoff > 0:
            raise ValueError(f"BesselBasis: cutoff must be positive, got {cutoff}")
        if n_basis < 1:
            raise ValueError(f"BesselBasis: n_basis must be >= 1, got {n_basis}")
        self.cutoff = float(cutoff)
        self.n_basis = int(n_basis)
        self.envelope_exponent = int(envelope_exponent)

    def __call__(self, r: Float[Array, ""]) -> Float[Array, " n_basis"]:
        """The basis at one distance `r` > 0 (callers keep padded edges away from r = 0)."""
        n = jnp.arange(1, self.n_basis + 1, dtype=r.dtype)
        # sin(n pi r / rc) / r is finite at r -> 0, but its autodiff is not; the caller masks
        # zero-length (padded) edges before calling, so r > 0 here.
        b = jnp.sqrt(2.0 / self.cutoff) * jnp.sin(n * jnp.pi * r / self.cutoff) / r
        return b * polynomial_envelope(r / self.cutoff, self.envelope_exponent)
