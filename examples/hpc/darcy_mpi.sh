#!/bin/bash
# The same data-parallel Darcy run under an MPI launcher (Open MPI / MPICH / Intel MPI):
#   mpirun -np 8 bash examples/hpc/darcy_mpi.sh [overrides such as train.steps=500 ...]
# JAX's own probe does not recognise every Open MPI 5 set-up; with mpi4py installed,
# `--distributed mpi` uses it to find the rank, size and coordinator.
set -euo pipefail
exec sciops fit configs/darcy.yaml --distributed mpi --out "${RUN_DIR:-runs/darcy-mpi}" \
     train.mesh.data=-1 --no-progress "$@"
