"""Users' own grid files: MATLAB v5 and v7.3, PDEBench HDF5 (both layouts), npz, npy and
neuraloperator's .pt, each written here in its foreign layout; key mapping, selections,
subsampling, format detection from content, and one-line errors naming file and key."""

import pathlib

import h5py
import numpy as np
import pytest
import scipy.io

from sciops import DataError
from sciops.data import (
    GridView,
    MatlabArray,
    detect_format,
    read_dataset,
    read_hdf5,
    read_npz,
    write_hdf5,
)

ROOT = pathlib.Path(__file__).parents[1]


def write_mat73(path, variables):
    """A .mat file the way MATLAB's ``save -v7.3`` writes it: a 512-byte userblock with the
    MATLAB header text, then HDF5 with each variable's axes reversed (column-major storage)
    and its class in the ``MATLAB_class`` attribute; '#refs#' holds cell/string storage."""
    with h5py.File(path, "w", userblock_size=512, libver="earliest") as f:
        for name, value in variables.items():
            value = np.asarray(value)
            if value.dtype.kind == "U":  # a char array: uint16 codes, class 'char'
                ds = f.create_dataset(name, data=np.array([[ord(c)] for c in str(value)],
                                                          np.uint16))
                ds.attrs["MATLAB_class"] = np.bytes_("char")
                continue
            ds = f.create_dataset(name, data=value.T, chunks=True, compression="gzip")
            ds.attrs["MATLAB_class"] = np.bytes_({"float64": "double", "float32": "single",
                                                  "uint8": "uint8"}[value.dtype.name])
        f.create_group("#refs#").create_dataset("a", data=np.zeros(2))
    header = (b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Dec  7 06:00:00 2026 "
              b"HDF5 schema 1.00 .").ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM"
    with open(path, "r+b") as f:
        f.write(header)


@pytest.fixture
def darcy_like():
    rng = np.random.default_rng(0)
    coeff = np.where(rng.normal(size=(6, 21, 21)) > 0, 12.0, 3.0)
    sol = rng.normal(size=(6, 21, 21))
    return coeff, sol


def test_mat5_key_mapping_and_subsample_as_the_fno_loader(tmp_path, darcy_like):
    coeff, sol = darcy_like
    path = tmp_path / "piececonst.dat"  # the suffix says nothing: detection reads the bytes
    scipy.io.savemat(path, {"coeff": coeff, "sol": sol, "note": "r421"})
    assert detect_format(path) == "mat5"
    ds = read_dataset(path, keys={"x": "coeff", "y": "sol"}, subsample=5)
    assert len(ds) == 6 and ds.shape("x") == (1, 5, 5) and ds.dtype("y") == np.float32
    # the FNO paper's MatReader: x = coeff[:, ::r, ::r][:, :s, :s] with s = (421 - 1)/r + 1
    np.testing.assert_array_equal(ds.take([3, 0])["x"][:, 0], coeff[[3, 0], ::5, ::5])
    np.testing.assert_allclose(ds.take([5])["y"][0, 0], sol[5, ::5, ::5], rtol=1e-7)
    assert ds.attrs["source_format"] == "mat5" and ds.attrs["keys"] == {"x": "coeff", "y": "sol"}
    with pytest.raises(DataError, match=r"piececonst\.dat: no key 'a' \(data\.keys\.x\); keys "
                                        r"present: coeff, note, sol"):
        read_dataset(path, keys={"x": "a", "y": "sol"})
    with pytest.raises(DataError, match=r"piececonst\.dat: variable 'note' is a MATLAB <U4 array"):
        read_dataset(path, keys={"x": "note"})


def test_mat73_written_as_matlab_does_reads_in_matlab_axis_order(tmp_path):
    rng = np.random.default_rng(1)
    a = rng.normal(size=(5, 8, 8))
    u = rng.normal(size=(5, 8, 8, 6))  # the FNO paper's ns_*.mat: (N, x, y, T)
    path = tmp_path / "ns_V1e-3_N5_T6.mat"
    write_mat73(path, {"a": a, "u": u, "t": np.arange(6.0)[None], "title": "ns"})
    assert detect_format(path) == "mat73"
    ds = read_dataset(path, keys={"x": "u[t=0:3]", "y": "u[t=3:6]"}, subsample=2)
    assert ds.shape("x") == (3, 4, 4) and ds.shape("y") == (3, 4, 4)
    # time moves to the channel axis: x[i, c] = u[i, ::2, ::2, c]
    got = ds.take([4, 2])
    np.testing.assert_allclose(got["x"], np.moveaxis(u[[4, 2], ::2, ::2, 0:3], -1, 1), rtol=1e-6)
    np.testing.assert_allclose(got["y"], np.moveaxis(u[[4, 2], ::2, ::2, 3:6], -1, 1), rtol=1e-6)
    # the variables themselves keep MATLAB's order (and lazy reads touch only what is asked)
    from sciops.data import read_mat

    var = read_mat(path)["u"]
    assert isinstance(var, MatlabArray) and var.shape == (5, 8, 8, 6)
    np.testing.assert_array_equal(var[1:3, :, 2, -1], u[1:3, :, 2, -1])
    np.testing.assert_allclose(read_dataset(path, keys={"x": "a"}).take([1])["x"][0, 0], a[1],
                               rtol=1e-6)
    with pytest.raises(DataError, match=r"variable 'title' is of MATLAB class char"):
        read_dataset(path, keys={"x": "title"})
    with pytest.raises(DataError, match=r"keys have different numbers of samples \('a': 5, "
                                        r"'t': 1, 'u': 5\); choose the keys with data\.keys"):
        read_dataset(path)
    with pytest.raises(DataError, match=r"key 'u' \(data\.layout: 'x y'\): layout 'x y' names 2 "
                                        r"axes but the samples have 3"):
        read_dataset(path, keys={"x": "u"}, layout={"x": "x y"})
    with pytest.raises(DataError, match=r"key 'u': the selection on axis 't' of 6 entries is empty"):
        read_dataset(path, keys={"x": "u[t=7:9]"})


def test_pdebench_single_tensor_and_per_seed_groups(tmp_path):
    rng = np.random.default_rng(2)
    tensor = rng.normal(size=(4, 11, 32)).astype(np.float32)  # 1-D advection: (N, T, X)
    one = tmp_path / "1D_Advection_Sols_beta0.1.hdf5"
    with h5py.File(one, "w") as f:
        f["tensor"] = tensor
        f["x-coordinate"] = (np.arange(32) + 0.5) / 32
        f["t-coordinate"] = np.linspace(0, 2, 12)
    assert detect_format(one) == "hdf5"
    ds = read_dataset(one, format="pdebench", keys={"x": "tensor[t=0]", "y": "tensor[t=-1]"},
                      subsample=4)
    assert ds.shape("x") == (1, 8)
    np.testing.assert_array_equal(ds.take([2])["y"][0, 0], tensor[2, -1, ::4])
    # per-seed groups (2-D diffusion-reaction): 0000/data of shape (T, X, Y, C)
    groups = tmp_path / "2D_diff-react_NA_NA.h5"
    data = rng.normal(size=(3, 5, 8, 8, 2)).astype(np.float32)
    with h5py.File(groups, "w") as f:
        for i in range(3):
            g = f.create_group(f"{i:04d}")
            g["data"] = data[i]
            g["grid/x"] = np.linspace(-1, 1, 8)
            g["grid/t"] = np.linspace(0, 5, 5)
    ds = read_dataset(groups, keys={"x": "data[t=0]", "y": "data[t=1:3, c=1]"})
    assert len(ds) == 3 and ds.shape("x") == (2, 8, 8) and ds.shape("y") == (2, 8, 8)
    got = ds.take([2, 0])
    np.testing.assert_array_equal(got["x"], np.moveaxis(data[[2, 0], 0], -1, 1))
    np.testing.assert_array_equal(got["y"], data[[2, 0], 1:3, :, :, 1])
    with pytest.raises(DataError, match=r"no key 'tensor' \(data\.keys\.x\); keys present: data"):
        read_dataset(groups, keys={"x": "tensor"})


def test_npz_stored_members_are_memory_mapped_and_bad_values_name_the_sample(tmp_path):
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(10, 2, 12, 12)), rng.normal(size=(10, 12, 12))
    np.savez(tmp_path / "mine.npz", x=x, y=y)
    arrays = read_npz(tmp_path / "mine.npz")
    assert isinstance(arrays["x"], np.memmap)
    np.testing.assert_array_equal(arrays["y"][7], y[7])
    ds = read_dataset(tmp_path / "mine.npz", layout={"x": "c x y"}, subsample=[3, 2])
    assert ds.shape("x") == (2, 4, 6) and ds.shape("y") == (1, 4, 6)
    np.testing.assert_allclose(ds.take([9])["x"][0], x[9, :, ::3, ::2], rtol=1e-6)
    y[6, 3, 4] = np.nan
    np.savez_compressed(tmp_path / "bad.npz", x=x, y=y)
    with pytest.raises(DataError, match=r"bad\.npz: key 'y': non-finite value \(NaN or inf\) "
                                        r"in sample 6"):
        read_dataset(tmp_path / "bad.npz")  # compressed: read whole, checked at once
    np.savez(tmp_path / "bad_lazy.npz", y=y)
    ds = read_dataset(tmp_path / "bad_lazy.npz")
    ds.take([0, 1, 2])  # fine until the bad sample is read
    with pytest.raises(DataError, match=r"bad_lazy\.npz: key 'y': non-finite .* sample 6"):
        ds.take([5, 6])
    np.save(tmp_path / "u.npy", x)
    assert read_dataset(tmp_path / "u.npy", layout={"u": "c x y"}).shape("u") == (2, 12, 12)


def test_sciops_files_pass_through_and_take_the_same_options(tmp_path):
    u = np.random.default_rng(4).normal(size=(4, 3, 9, 9)).astype(np.float32)
    path = tmp_path / "own.h5"
    write_hdf5(path, {"u": u}, field_attrs={"u": {"layout": "samples channels x0 x1"}})
    assert detect_format(path) == "sciops"
    plain = read_dataset(path)
    assert plain.arrays["u"].__class__.__name__ == "Dataset"  # h5py's, untouched
    ds = read_dataset(path, keys={"x": "u[c=0:2]"}, subsample=4)
    np.testing.assert_array_equal(ds.take([1])["x"][0], u[1, 0:2, ::4, ::4])
    assert read_hdf5(path).shape("u") == (3, 9, 9)


def test_torch_dict_through_the_weights_only_loader(tmp_path):
    torch = pytest.importorskip("torch")
    x = torch.rand(6, 16, 16)
    y = torch.rand(6, 16, 16)
    torch.save({"x": x, "y": y}, tmp_path / "darcy_train_16.pt")
    assert detect_format(tmp_path / "darcy_train_16.pt") == "pt"
    ds = read_dataset(tmp_path / "darcy_train_16.pt", subsample=2)
    np.testing.assert_array_equal(ds.take([4])["y"][0, 0], y[4, ::2, ::2].numpy())

    class Payload:  # an arbitrary pickled object: the weights-only loader must refuse it
        def __reduce__(self):
            return (print, ("ran",))

    torch.save({"x": x, "evil": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(DataError, match=r"evil\.pt: torch's weights-only loader refused"):
        read_dataset(tmp_path / "evil.pt")


def test_unknown_bytes_and_view_arguments_are_one_line_errors(tmp_path):
    (tmp_path / "junk.bin").write_bytes(b"\x00\x01garbage" * 10)
    with pytest.raises(DataError, match=r"junk\.bin: cannot tell the format .* set data\.format"):
        read_dataset(tmp_path / "junk.bin")
    with pytest.raises(DataError, match=r"data\.format: unknown format 'matlab5'"):
        read_dataset(tmp_path / "junk.bin", format="matlab5")
    base = np.zeros((2, 4, 4, 3))
    with pytest.raises(DataError, match=r"f: x=1 would drop spatial axis 'x'"):
        GridView(base, ("x", "y", "t"), {"x": 1}, where="f")
    with pytest.raises(DataError, match=r"f: selection names axis 'c', not in the layout"):
        GridView(base, ("x", "y", "t"), {"c": 0}, where="f")
    with pytest.raises(DataError, match=r"data\.subsample \[2\]: need one positive factor or "
                                        r"one per spatial axis \(2\)"):
        GridView(base, ("x", "y", "t"), {}, [2], where="f")


def test_cli_reports_a_missing_key_in_one_line(tmp_path, darcy_like, capsys):
    from sciops.cli import main

    coeff, sol = darcy_like
    scipy.io.savemat(tmp_path / "d.mat", {"coeff": coeff, "sol": sol})
    code = main(["fit", str(ROOT / "configs/darcy.yaml"), f"data.path={tmp_path / 'd.mat'}",
                 "data.keys.x=coef", "data.keys.y=sol", "train.mesh.data=1",
                 "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert "d.mat: no key 'coef' (data.keys.x); keys present: coeff, sol" in err[0]


def test_fit_darcy_config_on_an_fno_paper_mat_file(tmp_path, capsys):
    """docs/data.md's command, on a small file in the layout of piececonst_r421_N1024_smooth1.mat
    (here 41² instead of 421², so subsample 5 gives 9² instead of 85²)."""
    import json

    import yaml

    from sciops.cli import main

    rng = np.random.default_rng(5)
    coeff = np.where(rng.normal(size=(24, 41, 41)) > 0, 12.0, 3.0)
    xs = np.linspace(0, 1, 41)
    bubble = np.outer(xs * (1 - xs), xs * (1 - xs))
    sol = bubble[None] / coeff.mean(axis=(1, 2))[:, None, None]  # vanishes on the boundary
    path = tmp_path / "piececonst_r41_N24_smooth1.mat"
    scipy.io.savemat(path, {"coeff": coeff, "sol": sol})
    out = tmp_path / "run"
    argv = ["fit", str(ROOT / "configs/darcy.yaml"), f"data.path={path}", "data.keys.x=coeff",
            "data.keys.y=sol", "data.subsample=5", "data.n_train=16", "data.n_test=8",
            "model.n_modes=[4,4]", "model.hidden_channels=8", "model.lifting_channels=8",
            "model.projection_channels=8", "model.n_layers=2", "train.steps=4",
            "train.batch_size=4", "train.eval_batch_size=4", "train.eval_every=0",
            "train.checkpoint_every=0", "train.optimizer.warmup_steps=0", "train.plots=false", "--no-progress",
            "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "test: " in printed
    saved = yaml.safe_load((out / "config.yaml").read_text())["data"]
    assert saved["keys"] == {"x": "coeff", "y": "sol"} and saved["subsample"] == 5
    final = json.loads((out / "final_metrics.json").read_text())["test"]
    assert np.isfinite(final["l2"]) and 0 < final["l2"] < 10
    # evaluate reads the .mat back through the run's config: the same test metric
    assert main(["evaluate", str(out), "--json", "--no-plots"]) == 0
    again = json.loads(capsys.readouterr().out)["test"]
    assert again["l2"] == pytest.approx(final["l2"], rel=1e-5)
    assert not (tmp_path / "data").exists()  # nothing generated: data.generate does not apply
