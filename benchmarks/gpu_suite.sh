#!/usr/bin/env bash
# Every side-by-side comparison at GPU sizes, one JSON (see benchmarks/gpu_suite.py).
# Usage: bash benchmarks/gpu_suite.sh [--smoke] [--json gpu_suite.json]
set -euo pipefail
exec python "$(dirname "$0")/gpu_suite.py" "$@"
