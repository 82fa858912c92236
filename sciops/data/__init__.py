"""sciops.data: fields, meshes and atoms, their storage (HDF5, XDMF/VTU, extxyz), datasets.

The bottom layer: imports nothing else from sciops (except the shared `_errors`, `_types`).
"""

from ._dataset import Dataset as Dataset
from ._dataset import shard_batch as shard_batch
from ._hdf5 import read_hdf5 as read_hdf5
from ._hdf5 import write_hdf5 as write_hdf5
