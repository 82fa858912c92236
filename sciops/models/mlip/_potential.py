"""The TDN interatomic potential: equivariant message passing whose tensor product is injected
(CP-decomposed by default), energy as a sum of atomic energies, conservative forces and stress.

Node features $h_i \\in \\mathbb{R}^{C \\times (L+1)^2}$ carry $C$ channels of the irreps
$0e + 1o + \\dots + L(-1)^L$. One interaction block:

$$m_i = \\frac{1}{\\bar n}\\sum_{(i,j,S)} \\mathrm{TP}\\big(w(r_{ij}) \\odot h_j,\\;
Y(\\hat r_{ij})\\big), \\qquad
h_i \\leftarrow h_i + \\sigma\\big(W^{\\mathrm{msg}}_l m_i + W^{\\mathrm{self}}_l h_i\\big)$$

with $Y$ the spherical harmonics of the edge direction, $w(r) \\in \\mathbb{R}^{C\\times(L+1)}$
an MLP of the Bessel basis times the smooth cutoff envelope (one weight per channel and input degree $l_1$:
TDN's path-weight sharing, so one CP decomposition serves every path), $W_l$ channel mixing per
degree, and $\\sigma$ a gated nonlinearity (SiLU on scalars, sigmoid gates from scalars on
$l \\ge 1$). The energy is $E = \\sum_i s\\,\\phi(h_i^{(0)}) + \\mu_{Z_i}$ with per-species shifts
$\\mu$ and scale $s$ fitted on the training set; forces $F = -\\partial E/\\partial x$ and stress
$\\sigma = V^{-1}\\,\\partial E/\\partial \\varepsilon$ (strain applied to positions and cell)
come from `jax.grad`, so both are exactly conservative.

**Reference:** "Tensor Decomposition Networks for Fast Machine Learning Interatomic Potential
Computations" (2025); Batzner et al., "E(3)-equivariant graph neural networks for data-efficient
and accurate interatomic potentials" (NequIP, 2022).
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from ... import _random
from ...nn import MLP, at_least_float32, remat_block, to_compute
from ...nn._radial import BesselBasis, polynomial_envelope
from ...nn._tensor_product import AbstractTensorProduct, CPTensorProduct, SHMatrixTensorProduct
from ._neighbors import Graph

__all__ = ["EnergyScale", "Interaction", "TDNPotential", "edge_operator", "energy_forces",
           "energy_forces_stress", "sh_irreps"]

N_ELEMENTS = 119  # atomic numbers 0..118 index the species tables (0 is padding)


def sh_irreps(lmax: int) -> str:
    """``0e+1o+2e+...`` up to `lmax`: the irreps of spherical harmonics."""
    return "+".join(f"{d}{'e' if d % 2 == 0 else 'o'}" for d in range(lmax + 1))


def _degree_index(lmax: int) -> np.ndarray:
    return np.repeat(np.arange(lmax + 1), [2 * d + 1 for d in range(lmax + 1)])


class EnergyScale(eqx.Module):
    """Fitted statistics of the training set, frozen (never updated by the optimizer).

    - `shifts`: per-atomic-number energy shift $\\mu_Z$ (eV), least squares on train energies.
    - `scale`: energy scale $s$ (eV), the RMS training force component.
    - `avg_neighbors`: mean number of neighbours per atom within the cutoff, $\\bar n$.
    - `known`: which atomic numbers the training set contains.
    - `stress_trained`: whether the loss fitted stresses (so a calculator can say when it is
      asked for a stress the model never saw). Static metadata, rebuilt with the model.
    """

    shifts: Float[Array, " 119"]
    scale: Float[Array, ""]
    avg_neighbors: Float[Array, ""]
    known: Bool[Array, " 119"]
    stress_trained: bool = eqx.field(static=True, default=False)

    # The training driver never hands these leaves to the optimizer.
    __sciops_frozen__ = True


def edge_operator(tp: AbstractTensorProduct,
                  sh: Float[Array, "edges dim2"]) -> Float[Array, "edges dim1 dim_out"] | None:
    """The product with each edge's harmonics as a matrix, $M_e = \\sum_j T_{ijk} Y_j(\\hat r_e)$,
    so that the message of every channel is $x_{ec} M_e$; `None` for products without a
    matrix form (they are applied edge by edge).

    For the CP product $M_e = A\\,\\mathrm{diag}(B^\\top Y_e)\\,C^\\top$: the same rank-$R$
    tensor, contracted in the cheaper order. With the harmonics shared by all $C$ channels this
    costs $d^2R + Cd^2$ per edge against $2CdR$ for factor-by-factor application (the tensor
    product table in docs/benchmarks.md measures the gap); on CPU it made a 32-atom force call
    several times faster at C = 16-32.
    """
    if isinstance(tp, CPTensorProduct):
        a, b, c = (jax.lax.stop_gradient(m) for m in (tp.A, tp.B, tp.C))
        return jnp.einsum("ir,er,kr->eik", a, sh @ b, c)
    if isinstance(tp, SHMatrixTensorProduct):
        return jnp.einsum("ijk,ej->eik", jax.lax.stop_gradient(tp.T), sh)
    return None


class Interaction(eqx.Module):
    """One equivariant message-passing block (see the module docstring)."""

    radial: MLP
    tp: AbstractTensorProduct
    w_msg: Float[Array, "degrees channels channels"]
    w_self: Float[Array, "degrees channels channels"]
    w_gate: Float[Array, "channels gates"]
    lmax: int = eqx.field(static=True)

    def __init__(self, channels: int, lmax: int, n_basis: int, radial_hidden: int,
                 tensor_product: AbstractTensorProduct, *, key: PRNGKeyArray):
        k1, k2, k3, k4 = jax.random.split(key, 4)
        self.lmax = lmax
        self.radial = MLP(n_basis, channels * (lmax + 1), radial_hidden, 2,
                          activation=jax.nn.silu, key=k1)
        self.tp = tensor_product
        std = 1.0 / np.sqrt(channels)
        self.w_msg = std * _random.normal(k2, (lmax + 1, channels, channels))
        self.w_self = std * _random.normal(k3, (lmax + 1, channels, channels))
        self.w_gate = std * _random.normal(k4, (channels, channels * max(lmax, 1)))

    def _mix(self, w, h):
        return jnp.einsum("ncd,dce->ned", h, w[_degree_index(self.lmax)])

    def __call__(self, h: Float[Array, "atoms channels dim"], sh: Float[Array, "edges dim"],
                 basis: Float[Array, "edges n_basis"], envelope: Float[Array, " edges"],
                 graph: Graph, inv_neighbors: Float[Array, ""]) -> Float[Array, "atoms channels dim"]:
        n, c, _ = h.shape
        residual, h = h, to_compute(h)  # the residual stream stays float32 under bfloat16
        # The envelope multiplies the MLP's output, not only its input: an MLP with biases maps
        # a vanishing basis to a non-zero weight, and the message would then jump to zero when
        # the edge leaves the cutoff (a discontinuous energy, measured as large NVE drift).
        w = (jax.vmap(self.radial)(basis) * envelope[:, None]).reshape(-1, c, self.lmax + 1)
        w = w[:, :, _degree_index(self.lmax)]  # (edges, channels, dim)
        x = h[graph.neighbors] * w
        op = to_compute(edge_operator(self.tp, sh))
        if op is None:
            msg = jax.vmap(self.tp)(x, sh)
        else:
            msg = jnp.einsum("eci,eik->eck", x, op)
        msg = msg * graph.edge_mask[:, None, None]
        m = jax.ops.segment_sum(msg, graph.centers, num_segments=n) * inv_neighbors
        u = self._mix(self.w_msg, m) + self._mix(self.w_self, h)
        s = u[:, :, 0]
        out = [jax.nn.silu(s)[:, :, None]]
        if self.lmax > 0:
            gates = jax.nn.sigmoid(s @ self.w_gate).reshape(n, c, self.lmax)
            out.append(u[:, :, 1:] * gates[:, :, _degree_index(self.lmax)[1:] - 1])
        return residual + jnp.concatenate(out, axis=-1)


class TDNPotential(eqx.Module):
    """The potential: $E(x, Z, \\mathrm{cell})$ of one padded structure.

    **Arguments:**

    - `cutoff`: radial cutoff $r_c$ (Å).
    - `lmax`: largest degree $L$ of features and spherical harmonics.
    - `channels`, `n_layers`, `n_basis`, `radial_hidden`, `readout_hidden`: sizes.
    - `tensor_product`: a factory `(irreps_in1, irreps_in2, irreps_out) -> AbstractTensorProduct`
      (e.g. `functools.partial(CPTensorProduct, rank=28)` or `SHMatrixTensorProduct`).
    - `energy_scale`: the fitted `EnergyScale`.
    - `key`: PRNG key.
    """

    embedding: Float[Array, "119 channels"]
    layers: tuple[Interaction, ...]
    readout: MLP
    basis: BesselBasis
    energy_scale: EnergyScale
    lmax: int = eqx.field(static=True)

    def __init__(self, cutoff: float, lmax: int, channels: int, n_layers: int, n_basis: int,
                 radial_hidden: int, readout_hidden: int,
                 tensor_product: Callable[[str, str, str], AbstractTensorProduct],
                 energy_scale: EnergyScale, *, key: PRNGKeyArray):
        irreps = sh_irreps(lmax)
        tp = tensor_product(irreps, irreps, irreps)  # host work (CP fit / cache) outside jit
        self.lmax = lmax
        # One compiled initialiser instead of dozens of eagerly compiled random draws.
        self.embedding, self.layers, self.readout = eqx.filter_jit(_init_params)(
            channels, lmax, n_layers, n_basis, radial_hidden, readout_hidden, tp, key)
        self.basis = BesselBasis(cutoff, n_basis)
        self.energy_scale = energy_scale

    @property
    def cutoff(self) -> float:
        return self.basis.cutoff

    def atomic_energies(self, positions: Float[Array, "atoms 3"], species: Int[Array, " atoms"],
                        mask: Bool[Array, " atoms"], cell: Float[Array, "3 3"],
                        graph: Graph) -> Float[Array, " atoms"]:
        """Per-atom energies (eV), zero on padding. `species` are atomic numbers."""
        import e3nn_jax as e3nn

        stats = jax.lax.stop_gradient(self.energy_scale)
        vec = positions[graph.neighbors] - positions[graph.centers] + graph.shifts @ cell
        # Padded edges have zero length: give them a harmless unit vector so that neither the
        # values nor the gradients (normalisation, 1/r) produce NaNs; they are masked anyway.
        em = graph.edge_mask[:, None]
        vec = jnp.where(em, vec, jnp.array([1.0, 0.0, 0.0], vec.dtype))
        r = jnp.sqrt(jnp.sum(vec * vec, axis=-1))
        sh = e3nn.spherical_harmonics(sh_irreps(self.lmax), vec, normalize=True,
                                      normalization="component").array
        basis = jax.vmap(self.basis)(r) * em
        envelope = polynomial_envelope(r / self.basis.cutoff,
                                       self.basis.envelope_exponent) * graph.edge_mask
        n = positions.shape[0]
        # the geometry above and the residual stream h stay float32; inside each interaction
        # a training step's compute dtype applies (a bfloat16 stream and readout put the test
        # energy MAE at 1.9x float32's, docs/memory.md)
        sh, basis, envelope, inv = to_compute((sh, basis, envelope, 1.0 / stats.avg_neighbors))
        h = jnp.zeros((n, self.embedding.shape[1], (self.lmax + 1) ** 2), positions.dtype)
        h = h.at[:, :, 0].set(self.embedding[species])
        for layer in self.layers:  # each layer one block, rematerialised under train.remat
            h = remat_block(layer)(h, sh, basis, envelope, graph, inv)
        e = jax.vmap(self.readout)(at_least_float32(h[:, :, 0]))[:, 0]
        e = stats.scale * e + stats.shifts[species]
        return jnp.where(mask, e, 0.0)

    def __call__(self, positions: Float[Array, "atoms 3"], species: Int[Array, " atoms"],
                 mask: Bool[Array, " atoms"], cell: Float[Array, "3 3"],
                 graph: Graph) -> Float[Array, ""]:
        """The total energy (eV) of one structure."""
        return jnp.sum(self.atomic_energies(positions, species, mask, cell, graph))


def _init_params(channels, lmax, n_layers, n_basis, radial_hidden, readout_hidden, tp, key):
    keys = jax.random.split(key, n_layers + 2)
    embedding = _random.normal(keys[0], (N_ELEMENTS, channels))
    layers = tuple(Interaction(channels, lmax, n_basis, radial_hidden, tp, key=k)
                   for k in keys[1:-1])
    readout = MLP(channels, 1, readout_hidden, 1, activation=jax.nn.silu, key=keys[-1])
    return embedding, layers, readout


def energy_forces(model: TDNPotential, positions: Float[Array, "atoms 3"],
                  species: Int[Array, " atoms"], mask: Bool[Array, " atoms"],
                  cell: Float[Array, "3 3"], graph: Graph):
    """Energy (eV) and forces (eV/Å) of one structure: `energy_forces_stress` without the
    strain derivative, for molecular dynamics that does not need the stress."""
    e, dx = jax.value_and_grad(model)(positions, species, mask, cell, graph)
    return e, -dx * mask[:, None]


def energy_forces_stress(model: TDNPotential, positions: Float[Array, "atoms 3"],
                         species: Int[Array, " atoms"], mask: Bool[Array, " atoms"],
                         cell: Float[Array, "3 3"], graph: Graph):
    """Energy (eV), forces (eV/Å) and stress (eV/Å³, ASE's sign: $V^{-1}\\partial E/\\partial
    \\varepsilon$; zero without a cell) of one structure, by one reverse-mode pass.

    The strain $\\varepsilon$ (symmetrised) deforms positions and cell together,
    $x \\mapsto x(I+\\varepsilon)$, $\\mathrm{cell} \\mapsto \\mathrm{cell}(I+\\varepsilon)$.
    """

    def energy(x, eps):
        strain = jnp.eye(3, dtype=x.dtype) + 0.5 * (eps + eps.T)
        return model(x @ strain, species, mask, cell @ strain, graph)

    e, (dx, deps) = jax.value_and_grad(energy, argnums=(0, 1))(
        positions, jnp.zeros((3, 3), positions.dtype))
    vol = jnp.abs(jnp.linalg.det(cell))
    stress = jnp.where(vol > 1e-12, deps / jnp.where(vol > 1e-12, vol, 1.0), 0.0)
    return e, -dx * mask[:, None], stress
