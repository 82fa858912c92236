"""MeshGraphNet against PhysicsNeMo's MeshGraphNet, and edge-list attention against
torch-geometric's `TransformerConv`, on the same mesh, in one run.

**MeshGraphNet.** Both sides build the paper's architecture (Pfaff et al. 2021): node and edge
encoders, 15 message-passing steps with residual edge and node updates and LayerNorm, latent
128, MLPs with two hidden layers, a node decoder; sum aggregation. The parameter counts are
printed and must agree. One training step = forward, mean-squared error on the node outputs,
backward, Adam update (lr 1e-4). Inference = forward only (no gradient).

**Attention.** sciops' `EdgeAttention` (Q, K, V and output projections, heads concatenated) and
`TransformerConv(C, C // H, heads=H, root_weight=False)` followed by a `Linear(C, C)` output
projection: the same parameters and the same arithmetic (scaled dot-product scores on the
edges, a softmax over each node's incoming edges, a weighted sum of values). Forward+backward
of the sum of squares of the output.

The mesh is a Delaunay triangulation of seeded random points in a 2:1 rectangle (both
directions of every triangle edge), node features 8 channels (as a 2-D velocity, pressure and a
one-hot node type would give), edge features 3 (relative position and its length).

Timing: both sides in one process, alternating in rounds (sciops round r, then the peer's round
r), so that both see the same machine load; each round times `--steps` calls after warm-up and
blocks on its result (`block_until_ready` / the loss `.item()`); the median over rounds is
reported. Both sides use the same cores (`--threads`, default 2 = the whole machine, as each
does by default). Peak memory of a step is measured in a fresh subprocess per side: for sciops,
XLA's buffer assignment of the compiled step (temporaries plus outputs, exact: XLA keeps its
buffers between calls, so the resident set would not show them); for the torch peer, the largest
growth of the resident set during three calls after warm-up, sampled every 0.2 ms by a thread,
with glibc told to map every block of 64 KiB or more afresh and return it at free (so that
memory reused from the heap shows too). The two methods differ; the torch figure is a sampled
lower bound of its peak.

PhysicsNeMo 2.2 imports `timm` (which needs torchvision) for its DiT and Swin layers only; the
torchvision build that matches the pinned CPU torch cannot be installed beside it, so this
script registers placeholder `timm` modules before importing PhysicsNeMo. MeshGraphNet uses
none of them (the placeholders raise if anything instantiates them). Its message aggregation
calls `torch_scatter.scatter`, whose compiled wheels are not on PyPI: the script gives it
torch-geometric's `scatter` (native torch scatter-reduce) under that name.

Run: ``python benchmarks/peers_graph.py [--nodes 2000] [--threads 2] [--json out.json]``
(extra `bench`; PhysicsNeMo and torch-geometric installed beside the pinned CPU torch:
``pip install --no-deps nvidia-physicsnemo torch-geometric`` plus their pure-Python needs).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time
import types

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _pinning import pin_threads  # noqa: E402


def _stub_timm() -> None:
    import torch

    class _Unavailable(torch.nn.Module):
        def __init__(self, *args, **kwargs):
            raise RuntimeError("timm is a placeholder in this benchmark (see the docstring)")

    modules = {
        "timm": {}, "timm.models": {},
        "timm.layers": {"RmsNorm": _Unavailable, "to_2tuple": lambda x: (x, x)},
        "timm.layers.attention": {"Attention": _Unavailable},
        "timm.models.swin_transformer": {"SwinTransformerStage": _Unavailable},
    }
    for name, attrs in modules.items():
        if name not in sys.modules:
            module = types.ModuleType(name)
            module.__dict__.update(attrs)
            sys.modules[name] = module


def _pyg_scatter_for_physicsnemo() -> None:
    """PhysicsNeMo's PyG backend aggregates messages with `torch_scatter.scatter`, whose compiled
    wheels exist only on PyG's own index (not reachable here; a source build of it takes longer
    than the benchmark). torch-geometric ships the same function on native torch scatter-reduce
    (`torch_geometric.utils.scatter`, what PyG itself uses without torch_scatter): register it as
    `torch_scatter` and tell PhysicsNeMo's version probe that it is present."""
    if "torch_scatter" not in sys.modules:
        from torch_geometric.utils import scatter

        module = types.ModuleType("torch_scatter")
        module.scatter = lambda src, index, dim=0, dim_size=None, reduce="sum": scatter(
            src, index, dim=dim, dim_size=dim_size, reduce=reduce)
        sys.modules["torch_scatter"] = module
    import physicsnemo.core.version_check as version_check

    installed = version_check.get_installed_version
    version_check.get_installed_version = (
        lambda name: "2.1.2" if name == "torch_scatter" else installed(name))


def make_mesh(n_nodes: int, seed: int = 0):
    """Delaunay mesh of `n_nodes` seeded random points in [0, 2] x [0, 1]: positions, and the
    directed edge list (senders, receivers) with both directions of every triangle edge."""
    import numpy as np
    from scipy.spatial import Delaunay

    rng = np.random.default_rng(seed)
    pos = rng.uniform((0.0, 0.0), (2.0, 1.0), size=(n_nodes, 2))
    tri = Delaunay(pos).simplices
    pairs = np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [2, 0]]])
    pairs = np.unique(np.sort(pairs, axis=1), axis=0)
    senders = np.concatenate([pairs[:, 0], pairs[:, 1]]).astype(np.int32)
    receivers = np.concatenate([pairs[:, 1], pairs[:, 0]]).astype(np.int32)
    return pos.astype(np.float32), senders, receivers


def graph_inputs(n_nodes: int, seed: int = 0):
    import numpy as np

    pos, s, r = make_mesh(n_nodes, seed)
    rng = np.random.default_rng(seed + 1)
    rel = pos[s] - pos[r]
    efeat = np.concatenate([rel, np.linalg.norm(rel, axis=1, keepdims=True)], 1).astype(np.float32)
    x = rng.standard_normal((n_nodes, 8)).astype(np.float32)
    y = rng.standard_normal((n_nodes, 3)).astype(np.float32)
    return x, efeat, s, r, y


# ---------------------------------------------------------------- the sides of each comparison

def sciops_mgn(x, efeat, s, r, y, latent, steps, lr, seed):
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import optax

    from sciops.models.meshformer import MeshGraphNet

    model = MeshGraphNet(x.shape[1], efeat.shape[1], y.shape[1], latent, steps, 2,
                         key=jax.random.key(seed))
    mask = jnp.ones(len(s), bool)
    x, efeat, s, r, y = map(jnp.asarray, (x, efeat, s, r, y))
    opt = optax.adam(lr)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    state = {"p": params, "o": opt.init(params)}

    def loss(p):
        return jnp.mean((eqx.combine(p, static)(x, efeat, s, r, mask) - y) ** 2)

    @jax.jit
    def step(p, o):
        value, g = jax.value_and_grad(loss)(p)
        u, o = opt.update(g, o, p)
        return optax.apply_updates(p, u), o, value

    @jax.jit
    def infer(p):
        return eqx.combine(p, static)(x, efeat, s, r, mask)

    def train():
        state["p"], state["o"], v = step(state["p"], state["o"])
        v.block_until_ready()

    train.xla_bytes = lambda: _xla_bytes(step, state["p"], state["o"])

    def forward():
        infer(state["p"]).block_until_ready()

    n = sum(a.size for a in jax.tree.leaves(params))
    return train, forward, n


def physicsnemo_mgn(x, efeat, s, r, y, latent, steps, lr, seed, device="cpu"):
    import torch

    _stub_timm()
    _pyg_scatter_for_physicsnemo()
    from physicsnemo.models.meshgraphnet import MeshGraphNet as PNMeshGraphNet
    from torch_geometric.data import Data

    torch.manual_seed(seed)
    model = PNMeshGraphNet(x.shape[1], efeat.shape[1], y.shape[1], processor_size=steps,
                           hidden_dim_processor=latent, hidden_dim_node_encoder=latent,
                           hidden_dim_edge_encoder=latent, hidden_dim_node_decoder=latent,
                           num_layers_node_processor=2, num_layers_edge_processor=2,
                           num_layers_node_encoder=2, num_layers_edge_encoder=2,
                           num_layers_node_decoder=2, aggregation="sum").to(device)
    graph = Data(edge_index=torch.from_numpy(np.stack([s, r]).astype("int64")),
                 num_nodes=x.shape[0]).to(device)
    x, efeat, y = (torch.from_numpy(a).to(device) for a in (x, efeat, y))
    opt = torch.optim.Adam(model.parameters(), lr=lr)

    def train():
        opt.zero_grad()
        value = torch.mean((model(x, efeat, graph) - y) ** 2)
        value.backward()
        opt.step()
        value.item()

    def forward():
        with torch.no_grad():
            model(x, efeat, graph).sum().item()

    n = sum(p.numel() for p in model.parameters())
    return train, forward, n


def sciops_attention(x, s, r, heads, seed):
    import jax
    import jax.numpy as jnp

    from sciops.nn import EdgeAttention

    layer = EdgeAttention(x.shape[1], heads, key=jax.random.key(seed))
    x, s, r = map(jnp.asarray, (x, s, r))
    mask = jnp.ones((len(s), heads), bool)
    grad = jax.jit(jax.grad(lambda m, x: jnp.sum(m(x, s, r, mask) ** 2), argnums=(0, 1)))

    def run():
        jax.block_until_ready(grad(layer, x))

    run.xla_bytes = lambda: _xla_bytes(grad, layer, x)

    n = sum(a.size for a in jax.tree.leaves(layer))
    return run, n


def pyg_attention(x, s, r, heads, seed, device="cpu"):
    import torch
    from torch_geometric.nn import TransformerConv

    torch.manual_seed(seed)
    c = x.shape[1]
    conv = TransformerConv(c, c // heads, heads=heads, concat=True, root_weight=False).to(device)
    out = torch.nn.Linear(c, c).to(device)
    edge_index = torch.from_numpy(np.stack([s, r]).astype("int64")).to(device)
    x = torch.from_numpy(x).to(device).requires_grad_(True)

    def run():
        x.grad = None
        for p in list(conv.parameters()) + list(out.parameters()):
            p.grad = None
        torch.sum(out(conv(x, edge_index)) ** 2).backward()
        x.grad.sum().item()

    n = sum(p.numel() for p in list(conv.parameters()) + list(out.parameters()))
    return run, n


def _rounds(pairs: dict[str, tuple], rounds: int, steps: int, warmup: int) -> dict:
    """Median seconds per call of each named pair (a, b) of callables, alternating a and b."""
    times = {name: ([], []) for name in pairs}
    for fa, fb in pairs.values():
        for _ in range(warmup):
            fa()
            fb()
    for _ in range(rounds):
        for name, fns in pairs.items():
            for side, fn in enumerate(fns):
                t = time.perf_counter()
                for _ in range(steps):
                    fn()
                times[name][side].append((time.perf_counter() - t) / steps)
    return {name: (float(np.median(a)), float(np.median(b))) for name, (a, b) in times.items()}


def _peak_memory(kind: str, side: str, args) -> float:
    """MiB the peak RSS grows by during `steps` calls of one side, in a fresh process."""
    cmd = [sys.executable, __file__, "--memory-probe", f"{kind}:{side}", "--nodes",
           str(args.nodes), "--attention-nodes", str(args.attention_nodes),
           "--threads", str(args.threads), "--heads", str(args.heads),
           "--channels", str(args.channels)]
    # Every block of 64 KiB or more from mmap and returned at free, on both sides: memory that
    # a step reuses from the heap would otherwise not show as growth of the resident set.
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0")
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    return float(out.stdout.strip().splitlines()[-1])


def _xla_bytes(fn, *args) -> int:
    """Temporaries plus outputs of the compiled step: what XLA allocates to run it once."""
    stats = fn.lower(*args).compile().memory_analysis()
    return int(stats.temp_size_in_bytes + stats.output_size_in_bytes)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _memory_probe(spec: str, args) -> None:
    """Print the MiB one call of a side needs. sciops: XLA's buffer assignment of the compiled
    step (temporaries plus outputs; XLA keeps its buffers between calls, so the resident set
    does not show them). The torch side: the largest growth of the resident set during three
    calls after warm-up, sampled every 0.2 ms by a thread."""
    import threading

    kind, side = spec.split(":")
    if kind == "mgn":
        x, efeat, s, r, y = graph_inputs(args.nodes)
        make = sciops_mgn if side == "sciops" else physicsnemo_mgn
        fn = make(x, efeat, s, r, y, 128, 15, 1e-4, 0)[0]
    else:
        x, _, s, r, _ = graph_inputs(args.attention_nodes)
        x = np.random.default_rng(2).standard_normal((len(x), args.channels)).astype(np.float32)
        make = sciops_attention if side == "sciops" else pyg_attention
        fn = make(x, s, r, args.heads, 0)[0]
    if side == "sciops":
        print(fn.xla_bytes() / 2**20)
        return
    fn()
    fn()
    base = _rss_bytes()
    peak, done = [base], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _rss_bytes())
            time.sleep(2e-4)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    for _ in range(3):
        fn()
    done.set()
    thread.join()
    print((peak[0] - base) / 2**20)


def main(nodes: int = 2000, attention_nodes: int = 8000, channels: int = 128, heads: int = 4,
         threads: int = 2, rounds: int = 5, steps: int = 3, warmup: int = 2,
         memory: bool = True, json_path: str | None = None, args=None) -> dict:
    import jax
    import torch

    torch.set_num_threads(threads)
    x, efeat, s, r, y = graph_inputs(nodes)
    j_train, j_fwd, n_j = sciops_mgn(x, efeat, s, r, y, 128, 15, 1e-4, 0)
    t_train, t_fwd, n_t = physicsnemo_mgn(x, efeat, s, r, y, 128, 15, 1e-4, 0)
    xa, _, sa, ra, _ = graph_inputs(attention_nodes)
    xa = np.random.default_rng(2).standard_normal((len(xa), channels)).astype(np.float32)
    j_att, na_j = sciops_attention(xa, sa, ra, heads, 0)
    t_att, na_t = pyg_attention(xa, sa, ra, heads, 0)
    med = _rounds({"mgn_train_step": (j_train, t_train), "mgn_inference": (j_fwd, t_fwd),
                   "attention_fwd_bwd": (j_att, t_att)}, rounds, steps, warmup)
    result = {
        "mesh": {"nodes": nodes, "edges": int(len(s))},
        "attention_mesh": {"nodes": attention_nodes, "edges": int(len(sa)), "channels": channels,
                           "heads": heads},
        "parameters": {"mgn": {"sciops": int(n_j), "physicsnemo": int(n_t)},
                       "attention": {"sciops": int(na_j), "torch_geometric": int(na_t)}},
        "seconds": {k: {"sciops": a, "peer": b, "speedup": b / a} for k, (a, b) in med.items()},
        "threads": threads, "rounds": rounds, "steps_per_round": steps,
        "loadavg_end": os.getloadavg(),
        "versions": {"jax": jax.__version__, "torch": torch.__version__},
    }
    if memory and args is not None:
        result["peak_mib"] = {
            "mgn_train_step": {"sciops": _peak_memory("mgn", "sciops", args),
                               "physicsnemo": _peak_memory("mgn", "torch", args)},
            "attention_fwd_bwd": {"sciops": _peak_memory("attention", "sciops", args),
                                  "torch_geometric": _peak_memory("attention", "torch", args)},
        }
    _print(result)
    if json_path:
        pathlib.Path(json_path).write_text(json.dumps(result, indent=1))
    return result


def _print(res: dict) -> None:
    print(f"mesh {res['mesh']['nodes']} nodes / {res['mesh']['edges']} directed edges; "
          f"attention mesh {res['attention_mesh']['nodes']} nodes / "
          f"{res['attention_mesh']['edges']} edges, C={res['attention_mesh']['channels']}, "
          f"H={res['attention_mesh']['heads']}")
    print(f"parameters: MGN sciops {res['parameters']['mgn']['sciops']:,} / PhysicsNeMo "
          f"{res['parameters']['mgn']['physicsnemo']:,}; attention sciops "
          f"{res['parameters']['attention']['sciops']:,} / TransformerConv+Linear "
          f"{res['parameters']['attention']['torch_geometric']:,}")
    print(f"{'':24s} {'sciops (ms)':>12s} {'peer (ms)':>12s} {'peer/sciops':>12s}")
    for name, d in res["seconds"].items():
        print(f"{name:24s} {1e3 * d['sciops']:12.1f} {1e3 * d['peer']:12.1f} {d['speedup']:12.2f}")
    for name, d in res.get("peak_mib", {}).items():
        (a_name, a), (b_name, b) = d.items()
        print(f"peak RSS growth, {name}: {a_name} {a:.0f} MiB, {b_name} {b:.0f} MiB "
              f"(ratio {a / b if b else float('nan'):.2f})")
    print(f"{res['threads']} thread(s) each; {res['rounds']} rounds x {res['steps_per_round']} "
          f"calls, medians; load average at the end {res['loadavg_end']}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nodes", type=int, default=2000)
    p.add_argument("--attention-nodes", type=int, default=8000)
    p.add_argument("--channels", type=int, default=128)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--no-memory", action="store_true")
    p.add_argument("--json", default=None)
    p.add_argument("--memory-probe", default=None, help=argparse.SUPPRESS)
    a = p.parse_args()
    pin_threads(a.threads)
    if a.memory_probe:
        import torch

        torch.set_num_threads(a.threads)
        _memory_probe(a.memory_probe, a)
    else:
        main(nodes=a.nodes, attention_nodes=a.attention_nodes, channels=a.channels,
             heads=a.heads, threads=a.threads, rounds=a.rounds, steps=a.steps,
             memory=not a.no_memory, json_path=a.json, args=a)
