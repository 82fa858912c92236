"""Finite-element solvers on simplicial meshes (scikit-fem): incompressible Navier–Stokes by
incremental pressure correction on Taylor–Hood P2/P1 (triangles or tetrahedra), and P1
advection–diffusion (triangles).

Navier–Stokes, $\\partial_t u + (u\\cdot\\nabla)u - \\nu\\Delta u + \\nabla p = 0$,
$\\nabla\\cdot u = 0$, one step $t^n \\to t^{n+1}$ (Goda's incremental projection with BDF2 in
time, $\\gamma = 3/2$; the first step is BDF1, $\\gamma = 1$; convection semi-implicit, advected
by the extrapolation $\\tilde u = 2u^n - u^{n-1}$, which keeps the scheme stable at Courant
numbers where explicit convection blew up in our tests):

1. $\\frac{1}{\\Delta t}(\\gamma u^* - 2u^n + \\tfrac12 u^{n-1}) + (\\tilde u\\cdot\\nabla)u^*
   - \\nu\\Delta u^* = -\\nabla p^n$, $u^*$ = Dirichlet data on walls, inflow and obstacle;
2. $\\Delta\\phi = \\frac{\\gamma}{\\Delta t}\\nabla\\cdot u^*$, $\\phi = 0$ on the outflow
   (pinned at one node if there is none);
3. $u^{n+1} = u^* - \\frac{\\Delta t}{\\gamma}\\nabla\\phi$ (L2 projection onto P2),
   $p^{n+1} = p^n + \\phi$.

With $-\\nabla p$ integrated by parts as $\\int p\\,\\nabla\\cdot v$, the outflow condition is the
natural "do-nothing" $\\nu\\partial_n u - p n = 0$. The constant matrices (P2 mass, P1 Laplacian)
are factorised once; each step assembles the convection matrix and factorises the momentum
matrix (sparse LU, shared by the velocity components in componentwise scalar P2 spaces). The
same code runs on tetrahedra (`ElementTetP2`/`ElementTetP1`, three components); the 2-D path is
unchanged operation for operation.

References: Guermond, Minev & Shen, "An overview of projection methods for incompressible flows"
(CMAME 2006); Schäfer & Turek, "Benchmark computations of laminar flow around a cylinder" (1996).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

__all__ = ["AdvectionDiffusionP1", "ProjectionNS"]


class _Condensed:
    """A prefactorised sparse system with Dirichlet rows: solve A x = b, x[D] = g."""

    def __init__(self, a: sp.spmatrix, dirichlet: np.ndarray):
        a = sp.csr_matrix(a)
        n = a.shape[0]
        self.d = np.asarray(dirichlet, dtype=np.int64)
        free = np.ones(n, bool)
        free[self.d] = False
        self.i = np.nonzero(free)[0]
        self.a_id = a[self.i][:, self.d]
        self.lu = spla.splu(sp.csc_matrix(a[self.i][:, self.i]))
        self.n = n

    def solve(self, b: np.ndarray, g: np.ndarray | float = 0.0) -> np.ndarray:
        x = np.zeros(self.n)
        x[self.d] = g
        x[self.i] = self.lu.solve(b[self.i] - self.a_id @ x[self.d])
        return x


def _simplex_spaces(points: np.ndarray, cells: np.ndarray):
    """The scikit-fem mesh and (P2, P1) elements of a triangle ``(t, 3)`` or tetrahedron
    ``(t, 4)`` mesh."""
    from skfem import ElementTetP1, ElementTetP2, ElementTriP1, ElementTriP2, MeshTet, MeshTri

    dim, k = points.shape[1], cells.shape[1]
    if (dim, k) == (2, 3):
        kind, p2, p1 = MeshTri, ElementTriP2, ElementTriP1
    elif (dim, k) == (3, 4):
        kind, p2, p1 = MeshTet, ElementTetP2, ElementTetP1
    else:
        raise ValueError(f"ProjectionNS: need 2-D points with triangles or 3-D points with "
                         f"tetrahedra, got {dim}-D points and cells of {k} nodes")
    mesh = kind(np.ascontiguousarray(points.T, float), np.ascontiguousarray(cells.T))
    return mesh, p2(), p1()


def _dot_grad(a, u):
    """$\\sum_i a_i \\partial_i u$, summed in index order (the 2-D sum as it always was)."""
    out = a[0] * u.grad[0]
    for i in range(1, len(a)):
        out = out + a[i] * u.grad[i]
    return out


class ProjectionNS:
    """Incremental pressure-correction Navier–Stokes on a simplicial mesh (Taylor–Hood P2/P1).

    **Arguments:**

    - `points` ``(n, d)``, `triangles` ``(t, d + 1)``: the mesh, triangles in 2-D or
      tetrahedra in 3-D (vertices are the output nodes).
    - `nu`: kinematic viscosity; `dt`: time step.
    - `velocity_dirichlet(xy) -> bool`: which boundary points carry Dirichlet velocity
      (all boundary points but the open outflow).
    - `pressure_dirichlet(xy) -> bool`: which boundary vertices have $p = 0$ (the outflow);
      if none do, the pressure is pinned at vertex 0 and defined up to a constant.
    """

    def __init__(self, points: np.ndarray, triangles: np.ndarray, nu: float, dt: float,
                 velocity_dirichlet: Callable[[np.ndarray], np.ndarray],
                 pressure_dirichlet: Callable[[np.ndarray], np.ndarray]):
        from skfem import Basis, BilinearForm, asm
        from skfem.helpers import dot, grad

        self.mesh, p2, p1 = _simplex_spaces(np.asarray(points), np.asarray(triangles))
        self.dim = dim = int(points.shape[1])
        self.vb = Basis(self.mesh, p2, intorder=4)
        self.pb = Basis(self.mesh, p1, intorder=4)
        self.nu, self.dt = float(nu), float(dt)

        mass = asm(BilinearForm(lambda u, v, w: u * v), self.vb)
        stiff = asm(BilinearForm(lambda u, v, w: dot(grad(u), grad(v))), self.vb)
        lap_p = asm(BilinearForm(lambda u, v, w: dot(grad(u), grad(v))), self.pb)
        # b_i(p, v) = ∫ p ∂_i v   (rows: velocity test functions, cols: pressure)
        self.b = [asm(BilinearForm(lambda p, v, w, i=i: p * v.grad[i]), self.pb, self.vb)
                  for i in range(dim)]
        # c_i(u, q) = ∫ ∂_i u q   (rows: pressure test, cols: velocity)
        self.c = [asm(BilinearForm(lambda u, q, w, i=i: u.grad[i] * q), self.vb, self.pb)
                  for i in range(dim)]
        # e_i(phi, v) = ∫ ∂_i phi v
        self.e = [asm(BilinearForm(lambda p, v, w, i=i: p.grad[i] * v), self.pb, self.vb)
                  for i in range(dim)]
        self.mass = mass

        xy_v = self.vb.doflocs.T
        bdofs = self.vb.get_dofs().all()
        self.vel_bc = bdofs[np.asarray(velocity_dirichlet(xy_v[bdofs]), bool)]
        self.vel_xy = xy_v[self.vel_bc]
        bp = self.pb.get_dofs().all()
        pd = bp[np.asarray(pressure_dirichlet(self.pb.doflocs.T[bp]), bool)]
        self.pinned = pd.size == 0
        if self.pinned:
            pd = np.array([0])
        self.stiff = stiff
        self.project = _Condensed(mass, self.vel_bc)
        self.poisson = _Condensed(lap_p, pd)
        self.vertex_dofs = self.vb.nodal_dofs[0]
        self.n_vertices = points.shape[0]
        self._u_prev = None
        self.dudt: np.ndarray | None = None  # the time derivative the last step used (d, ndofs)

    @property
    def node_points(self) -> np.ndarray:
        """Coordinates of the velocity unknowns (every P2 node: vertices, then edge midpoints),
        shape ``(ndofs, d)``; the order of `node_values` and of `node_cells`."""
        return self.vb.doflocs.T

    def node_triangles(self) -> np.ndarray:
        """The 4-way refinement of the mesh whose vertices are the P2 nodes, ``(4 t, 3)``,
        counter-clockwise: each triangle (a, b, c) with edge midpoints (m_ab, m_bc, m_ca)
        becomes (a, m_ab, m_ca), (b, m_bc, m_ab), (c, m_ca, m_bc), (m_ab, m_bc, m_ca)."""
        t = self.mesh.t
        mid = self.vb.facet_dofs[0][self.mesh.t2f]  # (3, t): midpoints of edges 01, 12, 02
        a, b, c = (self.vb.nodal_dofs[0][t[i]] for i in range(3))
        m01, m12, m02 = mid
        xy = self.vb.doflocs
        if not np.allclose(xy[:, m01], 0.5 * (xy[:, a] + xy[:, b])):  # skfem's edge order
            raise RuntimeError("ProjectionNS: unexpected P2 edge numbering in scikit-fem")
        tri = np.concatenate([np.stack(s, 1) for s in
                              ((a, m01, m02), (b, m12, m01), (c, m02, m12), (m01, m12, m02))])
        p0, p1, p2 = xy[:, tri[:, 0]], xy[:, tri[:, 1]], xy[:, tri[:, 2]]
        area2 = (p1[0] - p0[0]) * (p2[1] - p0[1]) - (p1[1] - p0[1]) * (p2[0] - p0[0])
        tri[area2 < 0] = tri[area2 < 0][:, [0, 2, 1]]
        return tri

    def pressure_at_nodes(self, p: np.ndarray) -> np.ndarray:
        """P1 pressure ``(n,)`` at every P2 node ``(ndofs,)`` (exact: linear along edges)."""
        out = np.empty(self.vb.N)
        out[self.vb.nodal_dofs[0]] = p
        mid, f = self.midpoint_dofs()
        out[mid] = 0.5 * (p[f[0]] + p[f[1]])
        return out

    def midpoint_dofs(self) -> tuple[np.ndarray, np.ndarray]:
        """The P2 velocity dofs at the edge midpoints ``(edges,)`` and the two vertices of each
        edge ``(2, edges)`` (the mesh's facets in 2-D, its edges in 3-D)."""
        if self.dim == 2:
            return self.vb.facet_dofs[0], self.mesh.facets
        return self.vb.edge_dofs[0], self.mesh.edges

    def node_cells(self) -> np.ndarray:
        """The mesh whose vertices are the P2 nodes: `node_triangles` in 2-D; in 3-D the
        regular refinement of every tetrahedron into eight (Bey 1995, as scikit-fem's
        `MeshTet.refined`), positively oriented, ``(8 t, 4)``."""
        if self.dim == 2:
            return self.node_triangles()
        from scipy.spatial import cKDTree

        fine = self.mesh.refined()
        xyz = self.vb.doflocs.T
        dist, index = cKDTree(xyz).query(fine.p.T)
        if dist.max() > 1e-9 * np.ptp(xyz, axis=0).max():
            raise RuntimeError("ProjectionNS: the refined mesh's vertices are not the P2 nodes")
        tet = index[fine.t.T]
        p = xyz[tet]
        vol6 = np.einsum("ij,ij->i", np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]),
                         p[:, 3] - p[:, 0])
        tet[vol6 < 0] = tet[vol6 < 0][:, [0, 2, 1, 3]]
        return tet

    def node_state(self, velocity: np.ndarray, pressure: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
        """Solver state `(u (d, ndofs), p (n,))` from values at the P2 nodes: velocity
        ``(ndofs, d)``, pressure ``(ndofs,)`` (its vertex values are the unknowns)."""
        return (np.asarray(velocity, float).T.copy(),
                np.asarray(pressure, float)[self.vb.nodal_dofs[0]].copy())

    def force(self, u: np.ndarray, p: np.ndarray, dofs: np.ndarray) -> np.ndarray:
        """Force of the fluid on the body whose boundary carries the velocity dofs `dofs`,
        ``(d,)`` per unit density, by the volume integral of John (2004, "Reference values for
        drag and lift of a two-dimensional time-dependent flow around a cylinder", IJNMF 44):
        $F_i = -\\int \\partial_t u\\cdot v + (u\\cdot\\nabla)u\\cdot v + \\nu\\nabla u:\\nabla v
        - p\\,\\nabla\\cdot v$ with $v = e_i$ on the body and 0 at every other node, which
        converges faster than the line integral of the stress. $\\partial_t u$ is the last
        step's BDF derivative (`self.dudt`)."""
        from skfem import LinearForm, asm

        if self.dudt is None:
            raise RuntimeError("ProjectionNS.force: take a step first")
        names = [f"u{i}" for i in range(self.dim)]
        w = {c: self.vb.interpolate(u[i]) for i, c in enumerate(names)}
        conv = [asm(LinearForm(lambda v, w, c=c: _dot_grad([w[k] for k in names], w[c]) * v),
                    self.vb, **w) for c in names]
        out = np.empty(self.dim)
        for i in range(self.dim):
            r = (self.mass @ self.dudt[i] + conv[i] + self.nu * (self.stiff @ u[i])
                 - self.b[i] @ p)
            out[i] = -r[dofs].sum()
        return out

    def advance(self, u: np.ndarray, p: np.ndarray, t: float, n_steps: int,
                bc: Callable[[np.ndarray, float], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """`n_steps` steps from time `t`, starting afresh (the first step BDF1, the others BDF2
        with history inside the call): the result depends on `(u, p)` only, so a record saved
        every `n_steps` steps determines the next record exactly."""
        self.reset()
        for j in range(n_steps):
            u, p = self.step(u, p, t + (j + 1) * self.dt, bc)
        return u, p

    def vertex_values(self, u: np.ndarray) -> np.ndarray:
        """P2 velocity dof vector(s) ``(d, ndofs)`` → values at the mesh vertices ``(n, d)``."""
        return u[:, self.vertex_dofs].T

    def interpolate(self, f: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """Nodal interpolation of ``f(xy) -> (m, d)`` into the P2 velocity dofs ``(d, ndofs)``."""
        return np.asarray(f(self.vb.doflocs.T), float).T.copy()

    def _momentum_matrix(self, adv: np.ndarray, gamma: float) -> sp.csr_matrix:
        from skfem import BilinearForm, asm

        a = [np.asarray(self.vb.interpolate(adv[i])) for i in range(self.dim)]
        conv = asm(BilinearForm(lambda u, v, w: _dot_grad(a, u) * v), self.vb)
        return gamma * self.mass / self.dt + self.nu * self.stiff + conv

    def step(self, u: np.ndarray, p: np.ndarray, t_next: float,
             bc: Callable[[np.ndarray, float], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Advance ``(u (d, ndofs), p (n,))`` by one step to time `t_next`.

        `bc(xy, t) -> (m, d)` gives the Dirichlet velocity at the Dirichlet points.
        """
        if self._u_prev is None:  # first step: BDF1, advect with u^n
            gamma, adv, hist = 1.0, u, u
        else:  # BDF2, advect with the extrapolation 2u^n - u^{n-1}
            gamma, adv, hist = 1.5, 2 * u - self._u_prev, 2 * u - 0.5 * self._u_prev
        self._u_prev = u
        system = _Condensed(self._momentum_matrix(adv, gamma), self.vel_bc)
        g = np.asarray(bc(self.vel_xy, t_next), float)
        ustar = np.stack([
            system.solve(self.mass @ hist[i] / self.dt + self.b[i] @ p, g[:, i])
            for i in range(self.dim)])
        div = self.c[0] @ ustar[0]
        for i in range(1, self.dim):
            div = div + self.c[i] @ ustar[i]
        # -∫∇φ·∇q = (γ/Δt) ∫ div u* q
        phi = -self.poisson.solve(gamma * div / self.dt, 0.0)
        unew = np.stack([self.project.solve(self.mass @ ustar[i] - self.dt / gamma * (self.e[i] @ phi),
                                            g[:, i]) for i in range(self.dim)])
        self.dudt = (gamma * unew - hist) / self.dt
        return unew, p + phi

    def reset(self):
        """Forget the previous step (the next step is first-order)."""
        self._u_prev = None


class AdvectionDiffusionP1:
    """$\\partial_t c + a\\cdot\\nabla c = D\\Delta c$ with Dirichlet data on the boundary,
    P1 elements in space and Crank–Nicolson in time (second order in both).

    **Arguments:** `points`, `triangles`; `velocity(xy) -> (n, 2)` a steady velocity field;
    `diffusivity`; `dt`.
    """

    def __init__(self, points: np.ndarray, triangles: np.ndarray,
                 velocity: Callable[[np.ndarray], np.ndarray], diffusivity: float, dt: float):
        from skfem import Basis, BilinearForm, ElementTriP1, MeshTri, asm
        from skfem.helpers import dot, grad

        self.mesh = MeshTri(np.ascontiguousarray(points.T, float), np.ascontiguousarray(triangles.T))
        self.basis = Basis(self.mesh, ElementTriP1(), intorder=4)
        xq = np.asarray(self.basis.global_coordinates())  # (2, elements, quad points)
        aq = np.asarray(velocity(xq.reshape(2, -1).T)).T.reshape(xq.shape)
        mass = asm(BilinearForm(lambda u, v, w: u * v), self.basis)
        stiff = asm(BilinearForm(lambda u, v, w: dot(grad(u), grad(v))), self.basis)
        adv = asm(BilinearForm(lambda u, v, w: (aq[0] * u.grad[0] + aq[1] * u.grad[1]) * v),
                  self.basis)
        op = diffusivity * stiff + adv
        self.lhs_matrix = mass / dt + 0.5 * op
        self.rhs_matrix = mass / dt - 0.5 * op
        self.boundary = self.basis.get_dofs().all()
        self.system = _Condensed(self.lhs_matrix, self.boundary)
        self.points = points

    def step(self, c: np.ndarray, boundary_values: np.ndarray) -> np.ndarray:
        """One Crank–Nicolson step; `boundary_values` at `self.boundary` nodes at the new time."""
        return self.system.solve(self.rhs_matrix @ c, boundary_values)
