"""Graph utilities: K-hop and dilated edge sets against shortest paths, encodings by definition."""

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import shortest_path

from sciops.nn._graph import (
    Neighbourhood,
    adjacency,
    dilated_pairs,
    global_pairs,
    head_edge_sets,
    khop_pairs,
    laplacian_eigenvectors,
    mesh_edges,
    pad_axis,
    random_pairs,
    random_walk_encoding,
    round_up,
)


def _mesh(seed=0, n=60):
    from scipy.spatial import Delaunay
    pts = np.random.default_rng(seed).random((n, 2))
    return Delaunay(pts).simplices, n


def _pairs_set(s, r):
    return set(zip(s.tolist(), r.tolist(), strict=False))


def test_mesh_edges_are_the_triangle_sides():
    cells = np.array([[0, 1, 2], [1, 3, 2]])
    s, r = mesh_edges(cells, 4)
    expect = {(0, 1), (1, 2), (0, 2), (1, 3), (2, 3)}
    expect |= {(b, a) for a, b in expect}
    assert _pairs_set(s, r) == expect


def test_khop_and_dilated_match_shortest_path_distances():
    cells, n = _mesh()
    adj = adjacency(*mesh_edges(cells, n), n)
    dist = shortest_path(adj, unweighted=True)
    for hops in (1, 2, 3):
        s, r = khop_pairs(adj, hops)
        ii, jj = np.nonzero((dist >= 1) & (dist <= hops))
        assert _pairs_set(s, r) == _pairs_set(jj, ii)
    for hops, d in ((2, 2), (1, 3), (3, 2)):
        s, r = dilated_pairs(adj, hops, d)
        ok = np.isin(dist, [m * d for m in range(1, hops + 1)])
        ii, jj = np.nonzero(ok)
        assert _pairs_set(s, r) == _pairs_set(jj, ii)
    # reference by matrix powers: (A + I)^2 > 0 is the 2-hop closure
    s, r = khop_pairs(adj, 2)
    ai = (adj.astype(int) + sp.identity(n, dtype=int))
    ref = ((ai @ ai) > 0).astype(int) - sp.identity(n, dtype=int)
    rr, ss = sp.csr_matrix(ref).nonzero()
    assert _pairs_set(s, r) == _pairs_set(ss, rr)


def test_head_edge_sets_masks_and_globals():
    cells, n = _mesh(1, 30)
    adj = adjacency(*mesh_edges(cells, n), n)
    heads = (Neighbourhood(1), Neighbourhood(2, global_nodes=True), Neighbourhood(0, random=3))
    s, r, mask = head_edge_sets(adj, heads, n_global=2, first_global=32, seed=0)
    assert len(set(zip(s.tolist(), r.tolist(), strict=False))) == len(s)  # no duplicate pairs
    dist = shortest_path(adj, unweighted=True)
    h0 = _pairs_set(s[mask[:, 0]], r[mask[:, 0]])
    ii, jj = np.nonzero(dist <= 1)
    assert h0 == _pairs_set(jj, ii) | {(32, 32), (33, 33)}
    h1 = _pairs_set(s[mask[:, 1]], r[mask[:, 1]])
    for g in (32, 33):
        assert all((i, g) in h1 and (g, i) in h1 for i in range(n))
    # the random head: self loops, 3 random senders per node, global self loops
    assert mask[:, 2].sum() <= n + 3 * n + 2 and mask[:, 2].sum() >= n + n + 2


def test_random_pairs_never_self_and_cover_the_range():
    s, r = random_pairs(50, 40, np.random.default_rng(0))
    assert np.all(s != r) and s.min() == 0 and s.max() == 49
    # uniform over the other nodes: every count is near 40 (chi-square style bound)
    counts = np.bincount(s, minlength=50)
    assert counts.std() < 3 * np.sqrt(40)


def test_global_pairs_count():
    s, r = global_pairs(10, 12, 2)
    assert len(s) == 2 * 2 * 10 + 4


def test_laplacian_eigenvectors_satisfy_eigen_equation():
    cells, n = _mesh(2, 80)
    adj = adjacency(*mesh_edges(cells, n), n)
    for normalized in (True, False):
        w, v = laplacian_eigenvectors(adj, 6, normalized=normalized)
        a = adj.astype(float).toarray()
        deg = a.sum(1)
        lap = (np.eye(n) - a / np.sqrt(np.outer(deg, deg))) if normalized else np.diag(deg) - a
        np.testing.assert_allclose(lap @ v, v * w, atol=1e-10)
        np.testing.assert_allclose(v.T @ v, np.eye(6), atol=1e-10)
        assert np.all(np.diff(w) >= -1e-12) and w[0] > 1e-8  # trivial mode skipped
    # the path graph: combinatorial Laplacian eigenvalues 2 - 2 cos(pi k / n)
    m = 12
    path = adjacency(np.arange(m - 1), np.arange(1, m), m)
    w, _ = laplacian_eigenvectors(path, 4, normalized=False)
    np.testing.assert_allclose(w, 2 - 2 * np.cos(np.pi * np.arange(1, 5) / m), atol=1e-12)


def test_laplacian_sparse_path_agrees_with_dense():
    m = 50  # 2500 nodes > the dense threshold: the shift-invert path is used
    idx = np.arange(m * m).reshape(m, m)
    s = np.concatenate([idx[:, :-1].ravel(), idx[:-1, :].ravel()])
    r = np.concatenate([idx[:, 1:].ravel(), idx[1:, :].ravel()])
    adj = adjacency(s, r, m * m)
    w, v = laplacian_eigenvectors(adj, 3, normalized=False)
    # grid eigenvalues: (2 - 2cos(pi a/m)) + (2 - 2cos(pi b/m)); smallest non-zero: a=1,b=0 (x2), a=b=1
    lam = lambda a, b: 4 - 2 * np.cos(np.pi * a / m) - 2 * np.cos(np.pi * b / m)  # noqa: E731
    np.testing.assert_allclose(w, [lam(1, 0), lam(1, 0), lam(1, 1)], rtol=1e-8)
    lap = sp.diags(np.asarray(adj.sum(1)).ravel().astype(float)) - adj.astype(float)
    np.testing.assert_allclose(lap @ v, v * w, atol=1e-8)


def test_random_walk_encoding_matches_matrix_powers():
    cells, n = _mesh(3, 25)
    adj = adjacency(*mesh_edges(cells, n), n)
    a = adj.astype(float).toarray()
    p = a / a.sum(1, keepdims=True)
    enc = random_walk_encoding(adj, 4)
    np.testing.assert_allclose(enc[:, 0], 0.0)  # no self loops: cannot return in one step
    for m in range(4):
        np.testing.assert_allclose(enc[:, m], np.diag(np.linalg.matrix_power(p, m + 1)), atol=1e-12)


def test_padding_helpers():
    assert round_up(1000, 256) == 1024 and round_up(1024, 256) == 1024
    x = pad_axis(np.ones((3, 2)), 5, axis=0, fill=-1)
    assert x.shape == (5, 2) and x[3:].min() == -1
    import pytest
    with pytest.raises(ValueError, match="exceeds"):
        pad_axis(np.ones(4), 3)
