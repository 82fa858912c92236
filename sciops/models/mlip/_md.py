"""Molecular dynamics at compiled speed: velocity Verlet (NVE) or BAOAB Langevin (NVT) for a
trained potential, the whole loop inside one `jax.lax.scan`, neighbour lists rebuilt inside it.

The edge list is built with a skin: all pairs closer than $r_c + s$ (`dense_neighbors`, 27
images). The potential's envelope vanishes with its derivative at $r_c$, so edges between $r_c$
and $r_c + s$ contribute exactly zero and the list stays valid until some atom has moved $s/2$
from where it was at the last build; each step checks that and rebuilds under `lax.cond`. The
edge budget is fixed (one compilation); an overflow is recorded and raised after the chunk.

Units are ASE's: Å, eV, amu; time in ASE units (`ase.units.fs` per femtosecond), so velocities
and temperatures match ASE's `VelocityVerlet` / `Langevin`.

BAOAB: half kick, half drift, Ornstein–Uhlenbeck step $v \\leftarrow e^{-\\gamma \\Delta t} v +
\\sqrt{(1-e^{-2\\gamma\\Delta t}) k_B T / m}\\,\\xi$, half drift, half kick (Leimkuhler &
Matthews, "Rational construction of stochastic numerical methods for molecular sampling", 2013).
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from ..._errors import ConfigError, DataError
from ._family import MLIPConfig, check_structure
from ._neighbors import Graph, cell_heights, dense_neighbors, neighbor_list
from ._potential import TDNPotential, energy_forces

__all__ = ["MDResult", "MDState", "run_md"]

_KB = 8.617333262e-5  # Boltzmann constant, eV/K (CODATA 2018, as ase.units.kB)


class MDState(NamedTuple):
    """The integrator's state: positions (unwrapped, Å), velocities (Å per ASE time unit),
    forces (eV/Å), potential energy (eV), positions at the last neighbour build, the edges,
    rebuild and overflow counters, and the PRNG key (Langevin)."""

    positions: Float[Array, "atoms 3"]
    velocities: Float[Array, "atoms 3"]
    forces: Float[Array, "atoms 3"]
    energy: Float[Array, ""]
    reference: Float[Array, "atoms 3"]
    centers: Int[Array, " edges"]
    neighbors: Int[Array, " edges"]
    shifts: Float[Array, "edges 3"]
    edge_mask: Bool[Array, " edges"]
    rebuilds: Int[Array, ""]
    overflow: Bool[Array, ""]
    key: PRNGKeyArray


class MDResult(NamedTuple):
    """Recorded every `record_every` steps: `positions` (frames, atoms, 3) Å, `velocities`,
    `potential` and `kinetic` energies (eV), `temperature` (K); `rebuilds` the number of
    neighbour-list builds; `final` the last `MDState`."""

    positions: np.ndarray
    velocities: np.ndarray
    potential: np.ndarray
    kinetic: np.ndarray
    temperature: np.ndarray
    rebuilds: int
    final: MDState


def run_md(model: TDNPotential, config: MLIPConfig, positions, species, masses, cell=None,
           pbc=(False, False, False), *, velocities=None, n_steps: int, dt_fs: float = 1.0,
           thermostat: str = "nve", temperature_K: float = 300.0,
           friction_per_fs: float = 0.01, skin: float = 1.0, max_neighbors: int | None = None,
           record_every: int = 10, chunk_frames: int = 100,
           key: PRNGKeyArray | None = None) -> MDResult:
    """Run `n_steps` of MD on one structure, compiled (see the module docstring).

    **Arguments:**

    - `model`, `config`: the trained potential and its `MLIPConfig` (cutoff, min distance).
    - `positions` (atoms, 3) Å, `species` (atoms,) atomic numbers, `masses` (atoms,) amu,
      `cell` (3, 3) Å as rows or None, `pbc` three booleans.
    - `velocities`: initial velocities (Å/ASE time unit; ASE's `atoms.get_velocities()`), or
      None for Maxwell–Boltzmann at `temperature_K` (centre-of-mass motion removed).
    - `n_steps`, `dt_fs`: number of steps and time step (fs).
    - `thermostat`: ``nve`` (velocity Verlet) or ``langevin`` (BAOAB at `temperature_K` with
      `friction_per_fs`).
    - `skin`: neighbour-list skin (Å); `max_neighbors`: edge budget per atom within
      $r_c + s$ (default: the initial structure's edge count within $r_c + s$ plus 25 % and
      four per atom).
    - `record_every`: frame interval; `chunk_frames`: frames per compiled call (one compilation
      serves every chunk); `key`: PRNG key (initial velocities, Langevin noise).

    **Raises:** `DataError` for a structure the model cannot evaluate (`check_structure`) or an
    edge-budget overflow; `ConfigError` for bad arguments.
    """
    if thermostat not in ("nve", "langevin"):
        raise ConfigError(f"md thermostat: expected 'nve' or 'langevin', got {thermostat!r}")
    if n_steps < 1 or record_every < 1 or chunk_frames < 1 or not dt_fs > 0 or not skin >= 0:
        raise ConfigError(f"md: need n_steps >= 1, record_every >= 1, chunk_frames >= 1, "
                          f"dt_fs > 0, skin >= 0; got {n_steps}, {record_every}, {chunk_frames}, "
                          f"{dt_fs}, {skin}")
    from ase import units

    dtype = np.dtype(model.embedding.dtype)
    pos = np.asarray(positions, np.float64)
    z = np.asarray(species, np.int32)
    m = np.asarray(masses, np.float64)
    pbc = np.broadcast_to(np.asarray(pbc, bool), (3,))
    cell_np = np.zeros((3, 3)) if cell is None else np.asarray(cell, np.float64)
    check_structure(config, pos, z, cell_np if pbc.any() else None, pbc, where="md structure",
                    known=np.asarray(model.energy_scale.known))
    n = len(z)
    cut = config.cutoff + skin
    if pbc.any() and (cell_heights(cell_np)[pbc] <= cut).any():
        raise DataError(f"md structure: a periodic cell height {cell_heights(cell_np).min():.3g} "
                        f"Å is not above cutoff + skin = {cut} Å (the compiled neighbour search "
                        f"looks at the 27 nearest images); use a larger cell or a smaller skin")
    if max_neighbors is None:
        # Room for density fluctuations over the run: the edges within cutoff + skin now, plus
        # a quarter, plus four per atom; an overflow is still detected and raised.
        count = len(neighbor_list(pos, cut, cell_np if pbc.any() else None, pbc)[0])
        budget = int(1.25 * count) + 4 * n
    else:
        budget = n * max_neighbors
    key = jax.random.key(0) if key is None else key
    key, kv = jax.random.split(key)
    if velocities is None:
        v = np.asarray(jax.random.normal(kv, (n, 3), jnp.float64 if dtype == np.float64
                                         else jnp.float32), np.float64)
        v *= np.sqrt(_KB * temperature_K / m)[:, None]
        v -= (m[:, None] * v).sum(0) / m.sum()
    else:
        v = np.asarray(velocities, np.float64)
    dt = dt_fs * units.fs
    gamma = friction_per_fs / units.fs
    x0, v0, cell_j, m_j = (jnp.asarray(a, dtype) for a in (pos, v, cell_np, m))
    z_j, pbc_j = jnp.asarray(z), jnp.asarray(pbc)
    consts = (jnp.asarray(dt, dtype), jnp.asarray(gamma, dtype),
              jnp.asarray(_KB * temperature_K, dtype))
    static = dict(cutoff=float(config.cutoff), cut=float(cut), budget=int(budget),
                  langevin=thermostat == "langevin")
    state = _initial(model, x0, v0, z_j, cell_j, pbc_j, key, cut=float(cut), budget=int(budget))
    # Frames run in chunks of one compiled length, so a long run (or a second run of the same
    # system) reuses one compilation; the overflow flag is checked after every chunk.
    n_frames, rest = divmod(n_steps, record_every)
    plan = [(record_every, min(chunk_frames, n_frames - k))
            for k in range(0, n_frames, chunk_frames)] + ([(rest, 1)] if rest else [])
    frames = []
    for every, count in plan:
        state, out = _run_frames(model, state, z_j, cell_j, pbc_j, m_j, *consts, every=every,
                                 n_frames=count, **static)
        frames.append(out)
        if bool(state.overflow):
            raise DataError(f"md: more than {budget} edges within cutoff + skin = "
                            f"{cut} Å during the run; give a larger max_neighbors (per atom)")
    x, vel, epot = (np.concatenate([np.asarray(f[i], np.float64) for f in frames])
                    for i in range(3))
    ekin = 0.5 * np.einsum("fad,a->f", vel**2, m)
    dof = 3 * n - (3 if thermostat == "nve" else 0)
    return MDResult(x, vel, epot, ekin, 2 * ekin / (max(dof, 1) * _KB), int(state.rebuilds),
                    state)


def _forces(model, x, z, cell, graph):
    return energy_forces(model, x, z, jnp.ones(x.shape[0], bool), cell, graph)


@eqx.filter_jit
def _initial(model, x, v, z, cell, pbc, key, *, cut: float, budget: int):
    graph, count = dense_neighbors(x, jnp.ones(x.shape[0], bool), cell, pbc, cut, budget)
    e, f = _forces(model, x, z, cell, graph)
    return MDState(x, v, f, e, x, *graph, jnp.asarray(1), count > budget, key)


def _step(model, state, z, cell, pbc, masses, dt, gamma, kt, *, cutoff, cut, budget, langevin):
    half_skin2 = (0.5 * (cut - cutoff)) ** 2
    inv_m = (1.0 / masses)[:, None]
    v = state.velocities + 0.5 * dt * state.forces * inv_m
    if langevin:
        key, k = jax.random.split(state.key)
        x = state.positions + 0.5 * dt * v
        c1 = jnp.exp(-gamma * dt)
        noise = jax.random.normal(k, v.shape, v.dtype)
        v = c1 * v + jnp.sqrt((1 - c1**2) * kt * inv_m) * noise
        x = x + 0.5 * dt * v
    else:
        key = state.key
        x = state.positions + dt * v
    moved = jnp.max(jnp.sum((x - state.reference) ** 2, axis=-1))

    def rebuild(_):
        g, count = dense_neighbors(x, jnp.ones(x.shape[0], bool), cell, pbc, cut, budget)
        return (*g, x, state.rebuilds + 1, state.overflow | (count > budget))

    def keep(_):
        return (state.centers, state.neighbors, state.shifts, state.edge_mask,
                state.reference, state.rebuilds, state.overflow)

    ci, nj, sh, em, ref, nb, ov = jax.lax.cond(moved > half_skin2, rebuild, keep, None)
    e, f = _forces(model, x, z, cell, Graph(ci, nj, sh, em))
    v = v + 0.5 * dt * f * inv_m
    return MDState(x, v, f, e, ref, ci, nj, sh, em, nb, ov, key)


@eqx.filter_jit
def _run_frames(model, state, z, cell, pbc, masses, dt, gamma, kt, *, every: int, n_frames: int,
                cutoff: float, cut: float, budget: int, langevin: bool):
    """`n_frames` frames of `every` steps, compiled once per (model structure, shapes, options);
    the outer scan records positions, velocities and potential energy after each frame."""
    kw = dict(cutoff=cutoff, cut=cut, budget=budget, langevin=langevin)

    def inner(s, _):
        return _step(model, s, z, cell, pbc, masses, dt, gamma, kt, **kw), None

    def outer(s, _):
        s, _ = jax.lax.scan(inner, s, None, length=every)
        return s, (s.positions, s.velocities, s.energy)

    return jax.lax.scan(outer, state, None, length=n_frames)
