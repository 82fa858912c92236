#!/usr/bin/env bash
# Run the default test suite N times, each in another random order (pytest-randomly: files,
# classes and tests shuffled, random/numpy global seeds reset per test), and tally the
# failures per test. A test that fails in some runs only is a bug to find (shared files,
# ports, timing, order), never one to retry.
#
# Usage: benchmarks/suite_repeat.sh [N=5] [extra pytest arguments...]
#   e.g. benchmarks/suite_repeat.sh 5
#        benchmarks/suite_repeat.sh 3 tests/test_data.py -n0
# Needs the dev extra (pip install -e ".[dev]"), which brings pytest-randomly; the project's
# pytest options turn it off (-p no:randomly) and this script turns it on (-p randomly).
# Prints one line per run (seed, exit status, seconds, load average) and the tally; the JUnit
# XML and the log of every run stay in the folder it names. Exit status: 0 if every run passed.
set -uo pipefail
cd "$(dirname "$0")/.."

runs=${1:-5}
shift || true
if ! python -c "import pytest_randomly" 2>/dev/null; then
  echo "suite_repeat.sh: needs pytest-randomly (pip install -e '.[dev]')" >&2
  exit 2
fi
out=$(mktemp -d "${TMPDIR:-/tmp}/suite-repeat-XXXXXX")
echo "suite_repeat.sh: $runs runs, logs in $out"
echo "machine: $(nproc) cores; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
failed_runs=0
for i in $(seq 1 "$runs"); do
  seed=$(python -c "import random; print(random.randrange(2**31))")
  start=$(date +%s)
  pytest -p randomly --randomly-seed="$seed" --junitxml="$out/run$i.xml" "$@" \
    >"$out/run$i.log" 2>&1
  status=$?
  [ "$status" -ne 0 ] && failed_runs=$((failed_runs + 1))
  echo "run $i: seed $seed, exit $status, $(( $(date +%s) - start )) s," \
       "load average $(cut -d' ' -f1-3 /proc/loadavg), $(tail -n 1 "$out/run$i.log")"
done

python - "$out" "$runs" <<'EOF'
import collections
import pathlib
import sys
import xml.etree.ElementTree as ET

folder, runs = pathlib.Path(sys.argv[1]), int(sys.argv[2])
failures = collections.Counter()
for xml in sorted(folder.glob("run*.xml")):
    for case in ET.parse(xml).iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            failures[f"{case.get('classname')}::{case.get('name')}"] += 1
print(f"\ntally over {runs} runs: {len(failures)} test(s) failed at least once")
for name, count in failures.most_common():
    print(f"  {count}/{runs}  {name}")
EOF
[ "$failed_runs" -eq 0 ]
