"""Geometry masks: shapes on node grids (areas, boundary conventions) and user-mask checks."""

import numpy as np
import pytest

from sciops._errors import DataError
from sciops.pde._geometry import (
    SHAPES,
    Cross,
    Disk,
    LShape,
    PlateWithHoles,
    Square,
    Triangle,
    as_mask,
    grid_mask,
    node_grid,
)


@pytest.mark.parametrize("name, area", [
    ("square", 1.0), ("disk", np.pi * 0.45**2), ("triangle", 0.5 * 0.9 * 0.9),
    ("l_shape", 0.75), ("cross", 1 - 4 * 0.3**2),
    ("plate_holes", 1 - np.pi * (0.12**2 + 0.15**2))])
def test_mask_area_converges(name, area):
    # The fraction of grid nodes inside the shape tends to its area.
    n = 401
    mask = grid_mask(SHAPES[name], n)
    frac = mask.sum() / (n - 1) ** 2
    assert abs(frac - area) < 0.01, (name, frac, area)


def test_boundary_nodes_excluded_and_layout():
    # Nodes on boundary-aligned edges are Dirichlet nodes; layout is [y, x].
    n = 9
    x, y = node_grid(n)
    assert x[0, 1] == 0.125 and y[1, 0] == 0.125
    m = grid_mask(LShape(), n)
    assert not m[:, 0].any() and not m[0].any()
    assert not m[4, 5:].any() and m[4, 1:4].all()      # y=0.5: inside only for x<0.5
    assert m[3, 1:8].all() and not m[5:, 4:].any()
    assert grid_mask(Square(), n).sum() == (n - 2) ** 2


def test_triangle_orientation_and_shapes_contain():
    tri = Triangle(((0.1, 0.1), (0.9, 0.1), (0.1, 0.9)))
    flipped = Triangle(((0.1, 0.1), (0.1, 0.9), (0.9, 0.1)))
    m1, m2 = grid_mask(tri, 33), grid_mask(flipped, 33)
    np.testing.assert_array_equal(m1, m2)
    assert tri.contains(0.2, 0.2) and not tri.contains(0.8, 0.8)
    assert Disk().contains(0.5, 0.5) and not Disk().contains(0.02, 0.02)
    assert Cross().contains(0.5, 0.05) and not Cross().contains(0.1, 0.1)
    assert not PlateWithHoles().contains(0.3, 0.3) and PlateWithHoles().contains(0.9, 0.1)


def test_as_mask_checks_shape_and_values():
    m = as_mask(np.ones((1, 4, 5)), (4, 5))
    assert m.dtype == bool and m.shape == (4, 5)
    with pytest.raises(DataError, match=r"geom: mask shape \(4, 4\).*\(4, 5\)"):
        as_mask(np.ones((4, 4)), (4, 5), key="geom")
    with pytest.raises(DataError, match="only 0 and 1"):
        as_mask(np.full((4, 5), 0.5), (4, 5))
