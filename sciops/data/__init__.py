"""sciops.data: fields, meshes and atoms, their storage (HDF5, XDMF/VTU, extxyz), datasets.

The bottom layer: imports nothing else from sciops (except the shared `_errors`, `_types`).
"""

from ._atoms import Atoms as Atoms
from ._atoms import atoms_arrays as atoms_arrays
from ._atoms import atoms_at as atoms_at
from ._atoms import read_atoms_dataset as read_atoms_dataset
from ._atoms import write_atoms_dataset as write_atoms_dataset
from ._atoms_readers import read_atoms_file as read_atoms_file
from ._atoms_readers import unit_factor as unit_factor
from ._convert import convert_file as convert_file
from ._convert import sha256_of as sha256_of
from ._dataset import Dataset as Dataset
from ._dataset import MappedArray as MappedArray
from ._dataset import shard_batch as shard_batch
from ._dataset import sharded_batches as sharded_batches
from ._extxyz import read_extxyz as read_extxyz
from ._extxyz import read_structures as read_structures
from ._extxyz import write_extxyz as write_extxyz
from ._formats import detect_format as detect_format
from ._grid import GridField as GridField
from ._grid import as_grid as as_grid
from ._grid import grid_attrs as grid_attrs
from ._grid import grid_field as grid_field
from ._grid import read_grid_dataset as read_grid_dataset
from ._grid import write_grid_dataset as write_grid_dataset
from ._gridview import GridView as GridView
from ._hdf5 import SCHEMA_VERSION as SCHEMA_VERSION
from ._hdf5 import HDF5Writer as HDF5Writer
from ._hdf5 import open_hdf5_writer as open_hdf5_writer
from ._hdf5 import read_hdf5 as read_hdf5
from ._hdf5 import write_hdf5 as write_hdf5
from ._matlab import MatlabArray as MatlabArray
from ._matlab import read_mat as read_mat
from ._mesh import CELL_NODES as CELL_NODES
from ._mesh import MeshField as MeshField
from ._mesh import mesh_field as mesh_field
from ._mesh import read_mesh_dataset as read_mesh_dataset
from ._mesh import write_mesh_dataset as write_mesh_dataset
from ._mesh_import import import_mesh_data as import_mesh_data
from ._mesh_import import read_graphphysics_h5 as read_graphphysics_h5
from ._mesh_import import read_meshgraphnets as read_meshgraphnets
from ._meshio import read_vtu as read_vtu
from ._meshio import read_xdmf as read_xdmf
from ._meshio import write_vtu as write_vtu
from ._meshio import write_xdmf as write_xdmf
from ._normalize import Normalizer as Normalizer
from ._normalize import fit_normalizer as fit_normalizer
from ._pdebench import GroupStack as GroupStack
from ._pdebench import read_foreign_hdf5 as read_foreign_hdf5
from ._readers import read_dataset as read_dataset
from ._readers import read_npz as read_npz
from ._readers import read_torch as read_torch
from ._split import split as split
