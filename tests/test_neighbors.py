"""Neighbour lists: cell lists and the in-jit dense builder against brute force, for molecules,
periodic, triclinic, mixed-periodicity and very small cells, with unwrapped positions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sciops._errors import DataError
from sciops.models.mlip._neighbors import (
    dense_neighbors,
    neighbor_list,
    neighbor_list_brute,
    pad_graph,
)


def _edges(i, j, s):
    return sorted(zip(np.asarray(i).tolist(), np.asarray(j).tolist(),
                      np.rint(np.asarray(s)).astype(int).tolist(), strict=True), key=str)


def _vectors(pos, cell, i, j, s):
    return pos[j] - pos[i] + np.asarray(s) @ cell


TRICLINIC = np.array([[6.0, 0.0, 0.0], [1.5, 5.5, 0.0], [-1.0, 0.8, 6.2]])


@pytest.mark.parametrize("cell,pbc,cutoff", [
    (np.diag([7.0, 8.0, 9.0]), (True, True, True), 3.0),
    (TRICLINIC, (True, True, True), 2.9),
    (TRICLINIC, (True, True, False), 2.9),
    (np.diag([3.0, 3.5, 4.0]), (True, True, True), 4.2),  # cutoff beyond the cell: many images
    (None, (False, False, False), 2.5),
])
@pytest.mark.parametrize("method", ["cells", "dense"])
def test_host_lists_match_brute_force(cell, pbc, cutoff, method):
    rng = np.random.default_rng(1)
    n = 40
    if cell is None:
        pos = rng.uniform(0, 8, size=(n, 3))
    else:
        # Unwrapped on purpose: some atoms outside the cell by up to two cell vectors.
        pos = (rng.uniform(-1.5, 2.5, size=(n, 3)) * np.array(pbc, float)
               + rng.uniform(0, 1, size=(n, 3)) * ~np.array(pbc)) @ cell
    ref = neighbor_list_brute(pos, cutoff, cell, pbc)
    got = neighbor_list(pos, cutoff, cell, pbc, method=method)
    assert len(ref[0]) > n  # a non-trivial graph
    assert _edges(*got) == _edges(*ref)
    c = np.zeros((3, 3)) if cell is None else cell
    d = np.linalg.norm(_vectors(pos, c, *got), axis=1)
    assert d.max() < cutoff and d.min() > 0


def test_auto_switches_to_cell_lists_for_large_structures():
    # 3000 atoms: far beyond the dense pass's candidate limit, so "auto" takes the cell list;
    # both must give the same edges.
    rng = np.random.default_rng(4)
    cell = np.diag([30.0, 31.0, 32.0])
    pos = rng.uniform(0, 1, size=(3000, 3)) @ cell
    auto = neighbor_list(pos, 2.0, cell, True)
    cells = neighbor_list(pos, 2.0, cell, True, method="cells")
    assert len(auto[0]) > 3000
    assert _edges(*auto) == _edges(*cells)


def test_dense_builder_matches_cell_list():
    rng = np.random.default_rng(2)
    n, pad = 30, 36
    cell = TRICLINIC
    pos = rng.uniform(-0.5, 1.5, size=(n, 3)) @ cell
    ref = neighbor_list(pos, 2.9, cell, True)
    x = np.zeros((pad, 3))
    x[:n] = pos
    mask = np.arange(pad) < n
    graph, count = jax.jit(lambda x, m, c, p: dense_neighbors(x, m, c, p, 2.9, 1200))(
        jnp.asarray(x), jnp.asarray(mask), jnp.asarray(cell), jnp.ones(3, bool))
    em = np.asarray(graph.edge_mask)
    assert int(count) == len(ref[0]) == em.sum()
    got = (np.asarray(graph.centers)[em], np.asarray(graph.neighbors)[em],
           np.asarray(graph.shifts)[em])
    assert _edges(*got) == _edges(*ref)
    # Overflow is reported, not hidden.
    _, count_small = dense_neighbors(jnp.asarray(x), jnp.asarray(mask), jnp.asarray(cell),
                                     jnp.ones(3, bool), 2.9, 10)
    assert int(count_small) == len(ref[0]) > 10


def test_dense_builder_molecule_ignores_images():
    rng = np.random.default_rng(3)
    pos = rng.uniform(0, 5, size=(12, 3))
    ref = neighbor_list(pos, 2.5)
    graph, count = dense_neighbors(jnp.asarray(pos), jnp.ones(12, bool), jnp.zeros((3, 3)),
                                   jnp.zeros(3, bool), 2.5, 200)
    em = np.asarray(graph.edge_mask)
    assert int(count) == len(ref[0])
    assert _edges(np.asarray(graph.centers)[em], np.asarray(graph.neighbors)[em],
                  np.asarray(graph.shifts)[em]) == _edges(*ref)


def test_padding_and_errors():
    g = pad_graph(np.array([0, 1]), np.array([1, 0]), np.zeros((2, 3), int), 5)
    assert np.asarray(g.edge_mask).tolist() == [True, True, False, False, False]
    with pytest.raises(DataError, match="exceed the edge budget"):
        pad_graph(np.arange(6), np.arange(6), np.zeros((6, 3), int), 5)
    with pytest.raises(DataError, match="need a cell"):
        neighbor_list(np.zeros((2, 3)), 2.0, None, True)
