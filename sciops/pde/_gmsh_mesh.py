"""Channel-with-cylinder meshes from gmsh (Geuzaine & Remacle 2009, the `gmsh` wheel on PyPI).

The hand-written Persson–Strang mesher (`_mesh_gen.py`) grades the size only by the distance
to the cylinder; here gmsh's size fields also refine the wake (a box from the cylinder to the
outflow), where the vortex street must be resolved, and its physical groups name the
boundaries the node types come from. Frontal-Delaunay triangulation on one thread, so the same
arguments give the same mesh.
"""

from __future__ import annotations

import numpy as np

__all__ = ["BOUNDARY_GROUPS", "gmsh_cylinder_mesh"]

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
    try:
        import gmsh
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("the cylinder-flow meshes need gmsh: pip install gmsh "
                          "(or sciops[cfd])") from e
    h_wake = h_max if h_wake is None else min(h_wake, h_max)
    gmsh.initialize(argv=[], readConfigFiles=False, interruptible=False)
    try:
        gmsh.option.setNumber("General.Terminal", 0)
        gmsh.option.setNumber("General.NumThreads", 1)
        gmsh.model.add("cylinder")
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
        dist = field.add("Distance")
        field.setNumbers(dist, "CurvesList", arcs)
        field.setNumber(dist, "Sampling", 200)
        ramp = field.add("Threshold")
        field.setNumber(ramp, "InField", dist)
        field.setNumber(ramp, "SizeMin", h_min)
        field.setNumber(ramp, "SizeMax", h_max)
        field.setNumber(ramp, "DistMin", 0.0)
        field.setNumber(ramp, "DistMax", (h_max - h_min) / grading)
        sizes = [ramp]
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
        both = field.add("Min")
        field.setNumbers(both, "FieldsList", sizes)
        field.setAsBackgroundMesh(both)
        for opt in ("MeshSizeExtendFromBoundary", "MeshSizeFromPoints", "MeshSizeFromCurvature"):
            gmsh.option.setNumber(f"Mesh.{opt}", 0)
        gmsh.option.setNumber("Mesh.Algorithm", 6)  # Frontal-Delaunay
        gmsh.model.mesh.generate(2)

        node_tags, xyz, _ = gmsh.model.mesh.getNodes()
        index = np.full(int(node_tags.max()) + 1, -1, np.int64)
        index[node_tags.astype(np.int64)] = np.arange(len(node_tags))
        points = xyz.reshape(-1, 3)[:, :2].copy()
        _, _, elem_nodes = gmsh.model.mesh.getElements(2, surface)
        triangles = index[np.asarray(elem_nodes[0], np.int64).reshape(-1, 3)]
        boundary = {}
        for name in BOUNDARY_GROUPS:
            edges = []
            for curve in gmsh.model.getEntitiesForPhysicalGroup(1, tags[name]):
                _, _, en = gmsh.model.mesh.getElements(1, int(curve))
                edges.append(index[np.asarray(en[0], np.int64).reshape(-1, 2)])
            boundary[name] = np.concatenate(edges)
    finally:
        gmsh.finalize()
    used = np.unique(triangles)
    if used.size != len(points):  # geometry points that no triangle uses (the circle centre)
        remap = np.full(len(points), -1, np.int64)
        remap[used] = np.arange(used.size)
        points, triangles = points[used], remap[triangles]
        boundary = {k: remap[v] for k, v in boundary.items()}
    a, b, c = points[triangles[:, 0]], points[triangles[:, 1]], points[triangles[:, 2]]
    cw = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]) < 0
    triangles[cw] = triangles[cw][:, [0, 2, 1]]
    return points, triangles, boundary
