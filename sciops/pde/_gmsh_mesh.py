"""Channel-with-cylinder (2-D) and pipe-with-obstacle (3-D) meshes from gmsh (Geuzaine &
Remacle 2009, the `gmsh` wheel on PyPI).

The hand-written Persson–Strang mesher (`_mesh_gen.py`) grades the size only by the distance
to the cylinder; here gmsh's size fields also refine the wake (a box from the cylinder to the
outflow), where the vortex street must be resolved, and its physical groups name the
boundaries the node types come from. Frontal-Delaunay triangulation on one thread, so the same
arguments give the same mesh.
"""

from __future__ import annotations

import numpy as np

__all__ = ["BOUNDARY_GROUPS", "gmsh_cylinder_mesh", "gmsh_pipe_mesh"]

def _start(name: str):
    """gmsh, initialised quietly on one thread (so the same arguments give the same mesh)."""
    try:
        import gmsh
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("the flow meshes need gmsh: pip install gmsh "
                          "(or sciops[cfd])") from e
    gmsh.initialize(argv=[], readConfigFiles=False, interruptible=False)
    gmsh.option.setNumber("General.Terminal", 0)
    gmsh.option.setNumber("General.NumThreads", 1)
    gmsh.model.add(name)
    return gmsh


def _distance_ramp(gmsh, entities: str, tags, h_min: float, h_max: float, grading: float) -> int:
    """A size field: `h_min` on the entities, growing by `grading` per unit distance to `h_max`."""
    field = gmsh.model.mesh.field
    dist = field.add("Distance")
    field.setNumbers(dist, entities, tags)
    field.setNumber(dist, "Sampling", 200)
    ramp = field.add("Threshold")
    field.setNumber(ramp, "InField", dist)
    field.setNumber(ramp, "SizeMin", h_min)
    field.setNumber(ramp, "SizeMax", h_max)
    field.setNumber(ramp, "DistMin", 0.0)
    field.setNumber(ramp, "DistMax", (h_max - h_min) / grading)
    return ramp


def _background(gmsh, sizes: list[int]) -> None:
    """The smallest of the size fields `sizes` sets the mesh size, and nothing else does."""
    field = gmsh.model.mesh.field
    both = field.add("Min")
    field.setNumbers(both, "FieldsList", sizes)
    field.setAsBackgroundMesh(both)
    for opt in ("MeshSizeExtendFromBoundary", "MeshSizeFromPoints", "MeshSizeFromCurvature"):
        gmsh.option.setNumber(f"Mesh.{opt}", 0)


def _extract(gmsh, dim: int, domain, tags: dict[str, int], groups
             ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Points ``(n, dim)``, the cells of the `domain` entities (simplices of dimension `dim`)
    and, per physical group of `groups`, its boundary facets (simplices of dimension dim - 1)."""
    node_tags, xyz, _ = gmsh.model.mesh.getNodes()
    index = np.full(int(node_tags.max()) + 1, -1, np.int64)
    index[node_tags.astype(np.int64)] = np.arange(len(node_tags))
    points = xyz.reshape(-1, 3)[:, :dim].copy()
    cells = []
    for entity in np.atleast_1d(domain):
        _, _, elem_nodes = gmsh.model.mesh.getElements(dim, int(entity))
        cells.append(index[np.asarray(elem_nodes[0], np.int64).reshape(-1, dim + 1)])
    boundary = {}
    for name in groups:
        facets = []
        for entity in gmsh.model.getEntitiesForPhysicalGroup(dim - 1, tags[name]):
            _, _, en = gmsh.model.mesh.getElements(dim - 1, int(entity))
            facets.append(index[np.asarray(en[0], np.int64).reshape(-1, dim)])
        boundary[name] = np.concatenate(facets) if facets else np.zeros((0, dim), np.int64)
    return points, np.concatenate(cells), boundary


def _drop_unused(points, cells, boundary):
    """Remove geometry points that no cell uses (a circle's centre) and renumber."""
    used = np.unique(cells)
    if used.size != len(points):
        remap = np.full(len(points), -1, np.int64)
        remap[used] = np.arange(used.size)
        points, cells = points[used], remap[cells]
        boundary = {k: remap[v] for k, v in boundary.items()}
    return points, cells, boundary


# Physical groups of the boundary curves, in the order in which a node on two of them takes
# the first (channel corners belong to the walls, as in the MeshGraphNets data).
BOUNDARY_GROUPS = ("wall", "inflow", "outflow", "obstacle")


def gmsh_cylinder_mesh(length: float, height: float, cx: float, cy: float, r: float,
                       h_min: float, h_max: float, h_wake: float | None = None,
                       wake_width: float = 5.0, grading: float = 0.3
                       ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Mesh the channel ``[0, length] × [0, height]`` minus the disc of radius `r` at
    `(cx, cy)` with triangles.

    **Arguments:**

    - `h_min`: edge length on the cylinder; it grows away from it by `grading` per unit
      distance up to `h_max`.
    - `h_wake`: edge length (at most) in the wake box ``x ≥ cx``, ``|y - cy| ≤ wake_width r``,
      default `h_max` (no wake refinement).

    **Returns:** `(points (n, 2), triangles (t, 3) counter-clockwise, boundary)` with
    `boundary[group]` the boundary edges ``(m, 2)`` of each physical group in
    `BOUNDARY_GROUPS`.

    **Raises:** `ImportError` with the install line if gmsh is missing.
    """
    gmsh = _start("cylinder")
    h_wake = h_max if h_wake is None else min(h_wake, h_max)
    try:
        geo = gmsh.model.geo
        corners = [geo.addPoint(x, y, 0) for x, y in
                   ((0, 0), (length, 0), (length, height), (0, height))]
        bottom, right, top, left = (geo.addLine(corners[i], corners[(i + 1) % 4])
                                    for i in range(4))
        c = geo.addPoint(cx, cy, 0)
        rim = [geo.addPoint(cx + r * np.cos(a), cy + r * np.sin(a), 0)
               for a in np.arange(4) * np.pi / 2]
        arcs = [geo.addCircleArc(rim[i], c, rim[(i + 1) % 4]) for i in range(4)]
        outer = geo.addCurveLoop([bottom, right, top, left])
        hole = geo.addCurveLoop(arcs)
        surface = geo.addPlaneSurface([outer, hole])
        geo.synchronize()
        groups = {"wall": [bottom, top], "inflow": [left], "outflow": [right], "obstacle": arcs}
        tags = {name: gmsh.model.addPhysicalGroup(1, curves, name=name)
                for name, curves in groups.items()}
        gmsh.model.addPhysicalGroup(2, [surface], name="fluid")

        field = gmsh.model.mesh.field
        sizes = [_distance_ramp(gmsh, "CurvesList", arcs, h_min, h_max, grading)]
        if h_wake < h_max:
            box = field.add("Box")
            field.setNumber(box, "VIn", h_wake)
            field.setNumber(box, "VOut", h_max)
            field.setNumber(box, "XMin", cx)
            field.setNumber(box, "XMax", length)
            field.setNumber(box, "YMin", cy - wake_width * r)
            field.setNumber(box, "YMax", cy + wake_width * r)
            field.setNumber(box, "Thickness", 2 * r)
            sizes.append(box)
        _background(gmsh, sizes)
        gmsh.option.setNumber("Mesh.Algorithm", 6)  # Frontal-Delaunay
        gmsh.model.mesh.generate(2)
        points, triangles, boundary = _extract(gmsh, 2, surface, tags, BOUNDARY_GROUPS)
    finally:
        gmsh.finalize()
    points, triangles, boundary = _drop_unused(points, triangles, boundary)
    a, b, c = points[triangles[:, 0]], points[triangles[:, 1]], points[triangles[:, 2]]
    cw = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]) < 0
    triangles[cw] = triangles[cw][:, [0, 2, 1]]
    return points, triangles, boundary


def gmsh_pipe_mesh(length: float, radius: float, h_max: float,
                   obstacle: tuple[float, float, float, float] | None = None,
                   h_min: float | None = None, grading: float = 0.3
                   ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Mesh the pipe ``0 ≤ x ≤ length``, ``y² + z² ≤ radius²`` with tetrahedra, minus the
    ball `obstacle` = ``(cx, cy, cz, r)`` if given (gmsh's OpenCASCADE kernel: a cylinder
    cut by a sphere; Delaunay on one thread, so the same arguments give the same mesh).

    **Arguments:**

    - `h_max`: element edge length away from the obstacle (everywhere without one).
    - `h_min`: edge length on the obstacle (default `h_max`), growing away from it by
      `grading` per unit distance up to `h_max`.

    **Returns:** `(points (n, 3), tetrahedra (t, 4) positively oriented, boundary)` with
    `boundary[group]` the boundary triangles ``(m, 3)`` of each group in `BOUNDARY_GROUPS`
    (``obstacle`` empty without one; the rims of the inflow and outflow discs lie on the wall).

    **Raises:** `ImportError` with the install line if gmsh is missing; `ValueError` if the
    obstacle does not lie strictly inside the pipe.
    """
    if obstacle is not None:
        cx, cy, cz, r = obstacle
        if not (r > 0 and np.hypot(cy, cz) + r < radius and r < cx < length - r):
            raise ValueError(f"gmsh_pipe_mesh: obstacle {tuple(obstacle)} is not inside the pipe "
                             f"(length {length}, radius {radius})")
    h_min = h_max if h_min is None else min(h_min, h_max)
    gmsh = _start("pipe")
    try:
        occ = gmsh.model.occ
        pipe = occ.addCylinder(0, 0, 0, length, 0, 0, radius)
        if obstacle is not None:
            ball = occ.addSphere(*obstacle)
            occ.cut([(3, pipe)], [(3, ball)])
        occ.synchronize()
        volumes = [t for _, t in gmsh.model.getEntities(3)]
        eps = 1e-6 * max(length, radius)
        groups: dict[str, list[int]] = {name: [] for name in BOUNDARY_GROUPS}
        for _, surf in gmsh.model.getEntities(2):
            x0, _, _, x1, _, _ = gmsh.model.getBoundingBox(2, surf)
            if x1 - x0 < eps:
                groups["inflow" if x0 < eps else "outflow"].append(surf)
            elif obstacle is not None and x0 > cx - r - eps and x1 < cx + r + eps:
                groups["obstacle"].append(surf)
            else:
                groups["wall"].append(surf)
        tags = {name: gmsh.model.addPhysicalGroup(2, s, name=name)
                for name, s in groups.items() if s}
        gmsh.model.addPhysicalGroup(3, volumes, name="fluid")
        if obstacle is not None:
            sizes = [_distance_ramp(gmsh, "SurfacesList", groups["obstacle"], h_min, h_max,
                                    grading)]
        else:
            const = gmsh.model.mesh.field.add("MathEval")
            gmsh.model.mesh.field.setString(const, "F", repr(float(h_max)))
            sizes = [const]
        _background(gmsh, sizes)
        gmsh.option.setNumber("Mesh.Algorithm", 6)  # Frontal-Delaunay on the surfaces
        gmsh.option.setNumber("Mesh.Algorithm3D", 1)  # Delaunay in the volume
        gmsh.model.mesh.generate(3)
        points, tets, boundary = _extract(gmsh, 3, volumes, tags,
                                          [g for g in BOUNDARY_GROUPS if g in tags])
    finally:
        gmsh.finalize()
    boundary.setdefault("obstacle", np.zeros((0, 3), np.int64))
    points, tets, boundary = _drop_unused(points, tets, boundary)
    p = points[tets]
    vol6 = np.einsum("ij,ij->i", np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]), p[:, 3] - p[:, 0])
    tets[vol6 < 0] = tets[vol6 < 0][:, [0, 2, 1, 3]]
    return points, tets, {g: boundary[g] for g in BOUNDARY_GROUPS}
