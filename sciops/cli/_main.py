"""`sciops fit | evaluate | rollout | md | generate | convert | bench | info`: a thin shell over the Python API.

Every verb calls a `main`-style function that notebooks and batch scripts call too. A
user-facing error (`SciopsError`: bad config key, missing file, shape mismatch, NaN loss) prints
one line ``error: ...`` and exits with status 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import sys
from collections.abc import Sequence

from .._errors import ConfigError, SciopsError

__all__ = ["main", "build_parser"]


def _init_distributed(args) -> None:
    """Join a multi-process run before anything touches a JAX device."""
    if args.distributed is None and args.cpu_devices is None:
        return
    import jax

    if args.distributed is None:
        jax.config.update("jax_num_cpu_devices", args.cpu_devices)
        return
    from ..train import initialize

    ids = None if args.local_device_ids is None else [int(i) for i in
                                                      args.local_device_ids.split(",")]
    initialize(args.distributed, coordinator=args.coordinator, num_processes=args.num_processes,
               process_id=args.process_id, local_device_ids=ids, cpu_devices=args.cpu_devices,
               timeout_s=args.timeout, coordinator_bind=args.coordinator_bind)


def _cmd_fit(args) -> int:
    from ..train import fit, free_run_directory, is_primary, load_config

    if args.keys:  # before any device is touched
        print(_config_keys(load_config(args.config, args.overrides)))
        return 0
    _init_distributed(args)
    config = load_config(args.config, args.overrides)
    if args.no_progress:
        config = dataclasses.replace(config, train=dataclasses.replace(config.train,
                                                                       progress=False))
    out = args.out
    if out is None and not args.resume:
        # a fresh run never overwrites one: a taken runs/<name> moves it to runs/<name>-1, ...,
        # said before anything else (fit itself only ever uses the folder it is given)
        default, out = pathlib.Path("runs") / config.name, free_run_directory(config.name)
        if out != default and is_primary():
            print(f"{default} already holds a run: this run goes to {out} (--resume continues "
                  f"{default}; --out DIR or name=NAME choose the folder)", flush=True)
    result = fit(config, out=out, resume=args.resume)
    if not is_primary():
        return 0
    print(f"run folder: {result.run_dir}")
    units = _run_units(result.run_dir, config.family, config.model)
    for name, metrics in result.metrics.items():
        print(f"{name}: " + ", ".join(_metric(k, v, units) for k, v in metrics.items()
                                      if "/" not in k))
    _print_next_steps(config, result.run_dir)
    return 0


def _config_keys(config) -> str:
    """`sciops fit CONFIG --keys`: every key of the run's config, from the config dataclasses'
    field docs (the same text as the API reference): allowed values, unit, value, default."""
    from .._config import from_dict
    from ..models import family
    from ..pde import problem
    from ..train import DataConfig, OptimizerConfig, TrainConfig
    from ._help import keys_help

    sections = [("data", "data", DataConfig, config.data)]
    if config.data.generate is not None:
        gen = dict(config.data.generate)
        prob = problem(str(gen.pop("problem")))
        sections.append((f"data.generate (problem: {prob.name})", "data.generate", prob.config,
                         from_dict(prob.config, gen, "data.generate")))
    sections += [(f"model (family: {config.family})", "model", family(config.family).config,
                  config.model),
                 ("train", "train", TrainConfig, config.train),
                 ("train.optimizer", "train.optimizer", OptimizerConfig, config.train.optimizer)]
    return (f"name: {config.name!r}; seed: {config.seed}. Every key below can be set in the "
            "YAML or on the command line as section.key=value (allowed values; unit; value in "
            "this config, with the default where it differs).\n\n" + keys_help(sections))


def _print_next_steps(config, run_dir: pathlib.Path) -> None:
    """What a user does with a finished run: evaluate it, roll it out, look at its curves."""
    from ..models import family

    lines = [f"sciops evaluate {run_dir}   # metrics and figures again (--data FILE: other data)"]
    if family(config.family).rollout is not None:
        lines.append(f"sciops rollout {run_dir} --data FILE   # roll the simulator out")
    if "tensorboard" in config.train.trackers:
        lines.append(f"tensorboard --logdir {run_dir.parent}   # curves, figures, "
                     "hyper-parameters (pip install tensorboard)")
    print("next:\n" + "\n".join(f"  {x}" for x in lines))


def _run_units(run_dir, family_name: str, model_config=None) -> dict[str, str]:
    """The unit of each metric of a run: the family's record first, then the data's fields.

    A metric named ``..._<field>`` (``rmse_1step_velocity``) takes the unit the run's data
    file gives that field, and a rollout error (``rmse_rollout20``) the unit of the model's
    state fields when they share one.
    """
    from ..data import read_hdf5
    from ..models import family
    from ..train._run import SAMPLE_FILE

    units = dict(family(family_name).units)
    try:
        sample = read_hdf5(pathlib.Path(run_dir) / SAMPLE_FILE)
        attrs = {k: a.get("units") for k, a in sample.field_attrs.items()}
        sample.close()
    except (SciopsError, OSError):
        return units
    fields = {k: str(u) for k, u in attrs.items() if u not in (None, "")}
    state = {fields.get(f) for f in getattr(model_config, "state_fields", ()) or ()}
    return {**{f"__field__{k}": u for k, u in fields.items()},
            **({"__state__": state.pop()} if len(state) == 1 and None not in state else {}),
            **units}


def _metric(name: str, value: float, units: dict) -> str:
    """``name = value unit``; a metric the family calls a fraction (unit ``1``: a relative
    error) also as a percentage; an error in a dimensionless field's units says so."""
    unit = units.get(name)
    if unit in ("1", "fraction"):
        return f"{name} = {value:.4g} ({100 * value:.4g} %)"
    if unit is None:
        unit = next((u for k, u in units.items() if k.startswith("__field__")
                     and name.endswith("_" + k[len("__field__"):])), None)
    if unit is None and "rollout" in name and name.startswith(("rmse", "mae")):
        unit = units.get("__state__")
    if unit == "1":
        return f"{name} = {value:.4g} (dimensionless)"
    return f"{name} = {value:.4g}" + (f" {unit}" if unit else "")


def _cmd_evaluate(args) -> int:
    from ..eval import evaluate_run

    results = evaluate_run(args.run_dir, data=args.data, plots=not args.no_plots,
                           progress=not args.no_progress)
    if args.json:
        print(json.dumps(results))
    else:
        import yaml

        from ..train import config_from_dict

        cfg = config_from_dict(yaml.safe_load((pathlib.Path(args.run_dir) / "config.yaml")
                                              .read_text()))
        units = _run_units(args.run_dir, cfg.family, cfg.model)
        for name, metrics in results.items():
            print(f"{name}: " + ", ".join(_metric(k, v, units) for k, v in metrics.items()))
    return 0


def _parse_problem_options(prob, options: Sequence[str]):
    """`--key value` / `--key=value` pairs → the problem's config dataclass (YAML values)."""
    import yaml

    from .._config import from_dict

    raw, i = {}, 0
    while i < len(options):
        opt = options[i]
        if not opt.startswith("--"):
            raise ConfigError(f"generate {prob.name}: unexpected argument {opt!r} "
                              "(options are --key value)")
        name, eq, value = opt[2:].partition("=")
        if not eq:
            if i + 1 >= len(options):
                raise ConfigError(f"generate {prob.name}: option --{name} needs a value")
            value = options[i + 1]
            i += 1
        i += 1
        try:
            raw[name.replace("-", "_")] = yaml.safe_load(value)
        except yaml.YAMLError:
            raw[name.replace("-", "_")] = value
    return from_dict(prob.config, raw, f"generate {prob.name}")


def _problem_help(prob) -> str:
    """`sciops generate PROBLEM --help`: the problem's options from its config's field docs."""
    from ._help import options_help, summary

    return "\n".join([
        f"usage: sciops generate {prob.name} [--out FILE] [--no-progress] [--key value ...]", "",
        summary(prob.config), "",
        "  --out FILE  the HDF5 file to write (default data/<problem>.h5)",
        "  --no-progress  no progress bar", "",
        "problem options (allowed values; unit; default):",
        options_help(prob.config)])


def _problems_help() -> str:
    """`sciops generate --help`: every problem with the first line of its config's docstring."""
    from ..pde import problem, problem_names
    from ._help import summary

    names = problem_names()
    width = max(map(len, names))
    lines = ["usage: sciops generate PROBLEM [--out FILE] [--no-progress] [--key value ...]", "",
             "Make a data set with a reference solver. Problems:", ""]
    lines += [f"  {n:<{width}}  {summary(problem(n).config)}" for n in names]
    lines += ["", "sciops generate PROBLEM --help lists the problem's options, their allowed "
              "values, units and defaults."]
    return "\n".join(lines)


def _cmd_generate(args) -> int:
    from ..pde import problem

    if args.problem in (None, "-h", "--help"):
        asked = args.problem is not None or "-h" in args.options or "--help" in args.options
        print(_problems_help(), file=sys.stdout if asked else sys.stderr)
        if not asked:
            print("error: generate: name a problem (listed above)", file=sys.stderr)
        return 0 if asked else 2
    prob = problem(args.problem)
    if "-h" in args.options or "--help" in args.options:
        print(_problem_help(prob))
        return 0
    config = _parse_problem_options(prob, args.options)
    out = pathlib.Path(args.out or f"data/{prob.name}.h5")
    if out.is_dir():  # before the solve, not after it
        raise ConfigError(f"generate --out: {out} is a folder; name the .h5 file to write")
    prob.generate(config, out, progress=not args.no_progress)
    print(f"wrote {out}")
    return 0


def _pairs(items: Sequence[str] | None, flag: str) -> dict[str, str]:
    """``["x=coeff", "y=sol"]`` → ``{"x": "coeff", "y": "sol"}`` (ConfigError naming the flag)."""
    out = {}
    for item in items or []:
        name, eq, value = item.partition("=")
        if not eq or not name.strip():
            raise ConfigError(f"convert {flag} {item!r}: expected NAME=VALUE")
        out[name.strip()] = value.strip()
    return out


def _cmd_convert(args) -> int:
    from ..data import convert_file, parse_field_map, read_hdf5

    try:
        subsample = [int(r) for r in args.subsample.split(",")]
    except ValueError:
        raise ConfigError(f"convert --subsample {args.subsample!r}: expected an int or a "
                          "comma-separated list of ints") from None
    out = convert_file(args.source, args.out, format=args.format,
                       keys=_pairs(args.key, "--key"), layout=_pairs(args.layout, "--layout"),
                       subsample=subsample[0] if len(subsample) == 1 else subsample,
                       units=_pairs(args.units, "--units"), meta=args.meta, split=args.split,
                       max_trajectories=args.max_trajectories,
                       fields=parse_field_map(args.field), node_types=args.node_types)
    ds = read_hdf5(out)
    print(f"wrote {out}: {len(ds)} samples; " + ", ".join(
        f"{k} {ds.shape(k)} {ds.dtype(k)}" for k in ds.keys()))
    ds.close()
    return 0


def _cmd_md(args) -> int:
    from ..mlip import md_from_run

    s = md_from_run(args.run_dir, args.structure, out=args.out, steps=args.steps,
                    dt_fs=args.dt_fs, thermostat=args.thermostat,
                    temperature_K=args.temperature, friction_per_fs=args.friction,
                    skin=args.skin, record_every=args.record_every, seed=args.seed)
    line = (f"{s['thermostat']}: {s['atoms']} atoms, {s['steps']} steps ({s['ps']:.4g} ps) in "
            f"{s['wall_s']:.1f} s (compilation included) = {s['atom_steps_per_s']:.4g} "
            f"atom-steps/s; mean T {s['mean_temperature_K']:.1f} K; "
            f"{s['rebuilds']} neighbour-list builds")
    if "max_drift_eV_per_atom" in s:
        line += (f"; total energy drift max {s['max_drift_eV_per_atom']:.3g} eV/atom, slope "
                 f"{s['drift_slope_eV_per_atom_per_ps']:.3g} eV/atom/ps")
    print(line)
    if "trajectory" in s:
        print(f"wrote {s['trajectory']}")
    return 0


def _cmd_rollout(args) -> int:
    from ..train import load_run

    run = load_run(args.run_dir)
    if run.family.rollout is None:
        raise ConfigError(f"{args.run_dir}: family {run.family.name!r} has no rollout (only "
                          "simulator families define Family.rollout)")
    mapping = {}
    if args.field or args.node_types:  # users' own meshes (mesh simulators only)
        import inspect

        if "fields" not in inspect.signature(run.family.rollout).parameters:
            raise ConfigError(f"--field/--node-types: family {run.family.name!r} reads its own "
                              "data layout; these options are for mesh simulators")
        from ..data import parse_field_map, parse_node_types

        mapping = {"fields": parse_field_map(args.field),
                   "node_types": parse_node_types(args.node_types)}
    summary = run.family.rollout(run, args.data, steps=args.steps, start=args.start,
                                 mode=args.mode, boundary=args.boundary, out_dir=args.out,
                                 inflow=args.inflow_speed, animation=not args.no_animation,
                                 progress=not args.no_progress, plots=not args.no_plots,
                                 **mapping)
    if "table" in summary:  # mesh simulators: the model beside its baselines
        print(summary["table"])
        print("wrote " + ", ".join(summary["files"]))
    else:
        print(json.dumps(summary, indent=1, default=str))
    return 0


def _cmd_bench(args) -> int:
    """Run `benchmarks/<name>.py` of a source checkout (the peers come with the `bench` extra)."""
    import runpy

    folder = pathlib.Path(args.dir)
    if args.summary:
        from ._bench_summary import format_table, load_summary

        print(format_table(load_summary(folder / "summary.json")))
        return 0
    available = sorted(p.stem for p in folder.glob("*.py") if not p.stem.startswith("_"))
    if args.name is None:
        print("\n".join(available) if available else f"no benchmarks in {folder}")
        return 0
    if args.name not in available:
        from .._config import closest

        raise ConfigError(f"bench: no benchmark {args.name!r} in {folder}"
                          f"{closest(args.name, available)}; available: {', '.join(available)}")
    sys.argv = [str(folder / f"{args.name}.py"), *args.rest]
    runpy.run_path(str(folder / f"{args.name}.py"), run_name="__main__")
    return 0


def _cmd_info(args) -> int:
    import platform

    import equinox
    import jax
    import optax

    import sciops

    from ..models import family_names
    from ..pde import problem_names

    print(f"sciops {sciops.__version__} (python {platform.python_version()})")
    print(f"jax {jax.__version__}, equinox {equinox.__version__}, optax {optax.__version__}")
    print(f"backend: {jax.default_backend()}; devices: {jax.devices()}")
    print(f"process {jax.process_index()} of {jax.process_count()}")
    print(f"families: {', '.join(family_names())}")
    print(f"problems: {', '.join(problem_names())}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sciops", description="Learned PDE operators and simulators "
                                "in JAX.")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = p.add_subparsers(dest="verb", required=True)

    f = sub.add_parser("fit", help="train a model from a YAML config")
    f.add_argument("config", help="the experiment's YAML file, e.g. configs/darcy.yaml")
    f.add_argument("overrides", nargs="*", help="dotted.key=value overrides of the YAML's keys, "
                   "e.g. train.steps=20 (sciops fit CONFIG --keys lists every key with its "
                   "allowed values, unit and default)")
    f.add_argument("--out", metavar="DIR", help="run folder (default runs/<name>, or the "
                   "first free runs/<name>-1, -2, ... when that holds a run, announced at the "
                   "start); an --out that holds a run is an error unless --resume")
    f.add_argument("--resume", action="store_true", help="continue the run in --out (default "
                   "runs/<name>) from its last checkpoint")
    f.add_argument("--no-progress", action="store_true", help="no progress report (a bar on a "
                   "terminal, lines in logs)")
    f.add_argument("--keys", action="store_true", help="list every key of the config (data, "
                   "data.generate, model, train, train.optimizer) with its allowed values, unit, "
                   "value and default, then exit without training")
    d = f.add_argument_group("multi-process runs (see docs/distributed.md)")
    d.add_argument("--distributed", choices=["auto", "slurm", "mpi", "explicit"],
                   help="join a multi-process run (jax.distributed): one of auto (SLURM or MPI "
                   "if detected, else one process), slurm, mpi, explicit (needs --coordinator, "
                   "--num-processes, --process-id)")
    d.add_argument("--coordinator", metavar="HOST:PORT",
                   help="address of process 0 (explicit); PORT an integer 1-65535")
    d.add_argument("--num-processes", type=int, metavar="N",
                   help="number of processes, an integer >= 1 (explicit)")
    d.add_argument("--process-id", type=int, metavar="I",
                   help="this process's index, an integer 0..N-1 (explicit)")
    d.add_argument("--coordinator-bind", metavar="HOST:PORT",
                   help="where process 0's coordinator listens (default for explicit: the "
                   "--coordinator address itself, e.g. loopback only for 127.0.0.1; "
                   "0.0.0.0:PORT for every interface)")
    d.add_argument("--local-device-ids", metavar="IDS",
                   help="comma-separated integer GPU ids this process drives, e.g. 0,1")
    d.add_argument("--cpu-devices", type=int, metavar="N",
                   help="give this CPU process N virtual devices, an integer >= 1 (tests, laptops)")
    d.add_argument("--timeout", type=int, default=120, metavar="SECONDS",
                   help="seconds (integer >= 1) to wait for the other processes before failing "
                   "(default 120)")
    f.set_defaults(func=_cmd_fit)

    e = sub.add_parser("evaluate", help="metrics of a run on its test sets or on --data files")
    e.add_argument("run_dir", help="a run folder written by sciops fit (runs/<name>)")
    e.add_argument("--data", action="append", metavar="FILE", help="an HDF5 test set with the "
                   "run's fields (repeatable; default: the run's own test sets)")
    e.add_argument("--json", action="store_true", help="print {test_set: {metric: value}} as "
                   "JSON (relative errors are fractions, not %%)")
    e.add_argument("--no-plots", action="store_true", help="do not write the figures")
    e.add_argument("--no-progress", action="store_true", help="no progress report (a bar on a "
                   "terminal, a line per tenth of each test set in logs)")
    e.set_defaults(func=_cmd_evaluate)

    g = sub.add_parser("generate", help="make a data set with a reference solver "
                       "(sciops generate PROBLEM --help lists its --key value options)",
                       add_help=False)
    g.add_argument("problem", nargs="?", help="one of the problems that "
                   "`sciops generate --help` lists")
    g.add_argument("--out", metavar="FILE", help="output HDF5 file (default data/<problem>.h5)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.set_defaults(func=_cmd_generate)

    r = sub.add_parser("rollout", help="roll a trained simulator out on trajectories")
    r.add_argument("run_dir", help="a run folder of a simulator (meshformer, meshgraphnet, "
                   "wavecnn) written by sciops fit")
    r.add_argument("--data", required=True, metavar="PATH",
                   help="trajectories in the run's units: an XDMF series, a PVD file, VTU "
                   "files (folder or quoted glob), a MeshGraphNets folder or a sciops mesh .h5")
    r.add_argument("--steps", type=int, default=None, metavar="N",
                   help="horizon in model steps, an integer >= 1 (default: the truth's length)")
    r.add_argument("--mode", choices=["autoregressive", "teacher-forced"],
                   default="autoregressive", help="autoregressive (feed back predictions) or "
                   "teacher-forced (every step from the true state); default autoregressive")
    r.add_argument("--boundary", choices=["truth", "hold"], default="truth",
                   help="boundary nodes' values: truth (from the file) or hold (the initial "
                   "ones); default truth")
    r.add_argument("--start", type=int, default=1, metavar="FRAME",
                   help="mesh simulators: frame the rollouts start from, an integer >= 0 "
                   "(default 1: linear extrapolation reads the frame before)")
    r.add_argument("--inflow-speed", type=float, default=None, metavar="U",
                   help="mesh simulators: inflow speed U [m/s] for the relative errors "
                   "(default: mean speed of the INFLOW nodes at frame 0)")
    r.add_argument("--field", action="append", metavar="NAME=SOURCE",
                   help="mesh simulators: map the file's fields onto the run's, repeatable: "
                   "velocity=U, velocity=U[0,1] (components), velocity=vx,vy (scalars)")
    r.add_argument("--node-types", metavar="SPEC",
                   help="mesh simulators: node types from field:NAME (an integer point field), "
                   "sets:SET=TYPE,...[;mesh=FILE] (cell sets / gmsh physical groups) or "
                   "boundary:inflow=xmin,outflow=xmax,walls=ymin+ymax (other boundary nodes: "
                   "OBSTACLE); default the file's node_type field")
    r.add_argument("--no-animation", action="store_true",
                   help="no GIF of truth / prediction / error (every simulator)")
    r.add_argument("--no-plots", action="store_true",
                   help="no figures at all (PNGs and GIF): predictions and metrics only")
    r.add_argument("--out", required=True, metavar="DIR",
                   help="output folder (per-step errors, predictions, figures)")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.set_defaults(func=_cmd_rollout)

    m = sub.add_parser("md", help="compiled molecular dynamics of a trained mlip run "
                       "(NVE or Langevin, one lax.scan)")
    m.add_argument("run_dir", help="an mlip run folder written by sciops fit")
    m.add_argument("structure", help="starting structure, any file ASE reads (extxyz, POSCAR, "
                   "cif, ...); its velocities are used if it has any")
    m.add_argument("--steps", type=int, default=1000, metavar="N",
                   help="number of time steps, an integer >= 1 (default 1000)")
    m.add_argument("--dt-fs", type=float, default=1.0, metavar="FS",
                   help="time step [fs] (default 1.0)")
    m.add_argument("--thermostat", choices=["nve", "langevin"], default="nve",
                   help="nve (velocity Verlet) or langevin (BAOAB); default nve")
    m.add_argument("--temperature", type=float, default=300.0, metavar="K",
                   help="initial velocities (when the file has none) and Langevin target [K] "
                   "(default 300)")
    m.add_argument("--friction", type=float, default=0.01, metavar="PER_FS",
                   help="Langevin friction [1/fs] (default 0.01)")
    m.add_argument("--skin", type=float, default=1.0, metavar="ANGSTROM",
                   help="neighbour-list skin [Å] (default 1.0)")
    m.add_argument("--record-every", type=int, default=10, metavar="N",
                   help="time steps between recorded frames, an integer >= 1 (default 10)")
    m.add_argument("--seed", type=int, default=0, metavar="INT",
                   help="PRNG seed of the initial velocities and the Langevin noise, an integer "
                   "(default 0)")
    m.add_argument("--out", metavar="FILE", help="extxyz trajectory to write (positions [Å], "
                   "velocities, potential_energy [eV], time_fs per frame)")
    m.set_defaults(func=_cmd_md)

    b = sub.add_parser("bench", help="run a side-by-side benchmark from benchmarks/ "
                       "(no name: list them)")
    b.add_argument("name", nargs="?", help="a benchmark: benchmarks/NAME.py (no name: list them)")
    b.add_argument("rest", nargs=argparse.REMAINDER, help="arguments passed to the benchmark "
                   "(sciops bench NAME --help shows them)")
    b.add_argument("--dir", default="benchmarks", metavar="DIR",
                   help="the benchmarks folder (default benchmarks)")
    b.add_argument("--summary", action="store_true",
                   help="print the summary of every family against its peer or baseline "
                   "(DIR/summary.json, the table at the top of docs/benchmarks.md) and exit")
    b.set_defaults(func=_cmd_bench)

    c = sub.add_parser("convert", help="write a user's file (.mat, PDEBench, npz, .pt, ASE, "
                       "rMD17, mesh series) as a sciops HDF5 data set with provenance")
    c.add_argument("source", help="the file (or mesh folder) to convert")
    c.add_argument("out", help="the .h5 file to write")
    c.add_argument("--format", default="auto", help="the source format: auto (default: from "
                   "its first bytes), sciops, hdf5, mat5, mat73, npz, npy, pt, ase, rmd17, or mesh "
                   "(also meshgraphnets, graph-physics; a folder or an XDMF/PVD/VTU source is a "
                   "mesh series anyway)")
    c.add_argument("--key", action="append", metavar="FIELD=KEY",
                   help="field name → the file's key, e.g. x=coeff or 'x=u[t=0:10]' (repeatable)")
    c.add_argument("--layout", action="append", metavar="FIELD=AXES",
                   help="axes of one sample, e.g. 'u=x y t' (t time, c channels; repeatable)")
    c.add_argument("--subsample", default="1", help="keep every r-th node per spatial axis "
                   "(an int or one per axis: 5 or 2,4)")
    c.add_argument("--units", action="append", metavar="QUANTITY=UNIT",
                   help="atoms: the file's units, e.g. energy=kcal/mol (repeatable)")
    c.add_argument("--meta", metavar="FILE", help="mesh: the meta JSON of a graph-physics H5 "
                   "file")
    c.add_argument("--split", default="train", metavar="SPLIT", help="mesh: the MeshGraphNets "
                   "split to read, a name such as train, valid or test (default train)")
    c.add_argument("--max-trajectories", type=int, metavar="N", help="mesh: convert only the "
                   "first N trajectories, an integer >= 1 (default all)")
    c.add_argument("--field", action="append", metavar="NAME=SOURCE",
                   help="mesh: field mapping, repeatable: velocity=U, velocity=U[0,1], "
                   "velocity=vx,vy")
    c.add_argument("--node-types", metavar="SPEC",
                   help="mesh: node types from field:NAME, sets:SET=TYPE,...[;mesh=FILE] or "
                   "boundary:inflow=xmin,outflow=xmax,walls=ymin+ymax")
    c.set_defaults(func=_cmd_convert)

    i = sub.add_parser("info", help="versions and devices")
    i.set_defaults(func=_cmd_info)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `sciops` command line with `argv` (default `sys.argv[1:]`); returns the exit status
    (0 success, 2 bad input with one `error:` line on stderr, 130 interrupted)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    from .._malloc import tune_malloc

    tune_malloc()   # before JAX allocates anything (see sciops._malloc)
    parser = build_parser()
    # `generate PROBLEM` takes free-form `--key value` options for the problem's parameters.
    args, unknown = parser.parse_known_args(argv)
    if args.verb == "fit":
        # overrides may also come after options: `fit cfg.yaml --out d train.steps=5`
        late = [u for u in unknown if "=" in u and not u.startswith("-")]
        args.overrides = list(args.overrides) + late
        unknown = [u for u in unknown if u not in late]
    if unknown and args.verb != "generate":
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.verb == "generate":
        args.options = unknown
    try:
        return args.func(args)
    except SciopsError as e:
        if args.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
