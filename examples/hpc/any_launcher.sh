#!/bin/bash
# Any other launcher (a hand-written ssh loop, Kubernetes, PBS without MPI): pass the
# coordinator (host:port of process 0), the number of processes and this process's index.
#   COORD=node0:12345 NPROC=2 PID=0 bash examples/hpc/any_launcher.sh   # on node0
#   COORD=node0:12345 NPROC=2 PID=1 bash examples/hpc/any_launcher.sh   # on node1
# Further arguments go to `sciops fit` as they are: overrides (train.steps=500) and options
# (--cpu-devices 2). tests/test_hpc_scripts.py runs this script with 2 local CPU processes x 2
# devices.
set -euo pipefail
exec sciops fit "${CONFIG:-configs/darcy.yaml}" --distributed explicit \
     --coordinator "$COORD" --num-processes "$NPROC" --process-id "$PID" \
     --timeout "${TIMEOUT:-300}" --out "${RUN_DIR:-runs/darcy-explicit}" --no-progress "$@"
