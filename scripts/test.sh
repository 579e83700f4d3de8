#!/usr/bin/env bash
# Run the test suite, tier by tier.
#
#   scripts/test.sh                    every tier
#   scripts/test.sh TIER [PYTEST ARGS] one tier: lint, unit, api, security, compat, other, pg
#
# Tiers:
#   lint    ruff check, ruff format --check, mypy (configuration in pyproject.toml)
#   unit    tests/unit                        parallel (xdist)
#   api     tests/api, SQLite                 parallel
#   security tests/security (audit findings, cross-project, fuzzing), SQLite  parallel
#   compat  tests/compat (openstack CLI/SDK)  parallel, one file per worker
#   other   everything else under tests/      serial (root, namespaces, OVS...)
#   pg      tests/api + tests/security + tests marked postgres, against a throwaway PostgreSQL
#           (scripts/pg-test.sh)              parallel
#
# Environment: NEUTRINO_TEST_JOBS (xdist workers, default 2; 0 = no xdist).
# A tier without tests passes.  The last line is the total over all tiers.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PY=${NEUTRINO_VENV:-$ROOT/.venv}/bin/python
if [ ! -x "$PY" ]; then
    echo "test.sh: no venv at $PY: run make install" >&2
    exit 1
fi
JOBS=${NEUTRINO_TEST_JOBS:-2}
REPORTS=$(mktemp -d "${TMPDIR:-/tmp}/neutrino-test.XXXXXX")
trap 'rm -rf "$REPORTS"' EXIT

has_tests() {  # DIR...: any test file there?
    local d
    for d in "$@"; do
        [ -d "$d" ] && [ -n "$(find "$d" -name 'test_*.py' -print -quit)" ] && return 0
    done
    return 1
}

xdist() {  # MODE: the xdist arguments
    if [ "$JOBS" -gt 0 ] 2>/dev/null; then echo "-n $JOBS --dist $1"; fi
}

RESULTS=()
FAILED=0

# run_tier NAME WRAPPER... -- PYTEST ARGS...
run_tier() {
    local name=$1; shift
    local wrapper=()
    while [ "$1" != "--" ]; do wrapper+=("$1"); shift; done
    shift
    echo
    echo "=============== tier: $name ==============="
    local t0 rc=0
    t0=$(date +%s)
    "${wrapper[@]}" "$PY" -m pytest -p xdist --durations=5 \
        --junitxml="$REPORTS/$name.xml" "$@" || rc=$?
    [ $rc -eq 5 ] && rc=0   # no tests collected (or all deselected)
    local secs=$(( $(date +%s) - t0 ))
    if [ $rc -eq 0 ]; then
        RESULTS+=("$(printf '%-7s ok      %4ss' "$name" "$secs")")
    else
        RESULTS+=("$(printf '%-7s FAILED  %4ss (pytest exit %s)' "$name" "$secs" "$rc")")
        FAILED=1
    fi
}

# run_lint: the linters, as one tier (no pytest; a finding fails the tier).
run_lint() {
    echo
    echo "=============== tier: lint ==============="
    local t0 rc=0 bin
    t0=$(date +%s)
    bin=$(dirname "$PY")
    "$bin/ruff" check neutrino tests bench scripts || rc=1
    "$bin/ruff" format --check neutrino tests bench scripts || rc=1
    "$bin/mypy" || rc=1
    local secs=$(( $(date +%s) - t0 ))
    if [ $rc -eq 0 ]; then
        RESULTS+=("$(printf '%-7s ok      %4ss' lint "$secs")")
    else
        RESULTS+=("$(printf '%-7s FAILED  %4ss (a linter found something)' lint "$secs")")
        FAILED=1
    fi
}

tier() {
    local name=$1; shift
    case $name in
        lint)
            run_lint ;;
        unit)
            has_tests tests/unit && run_tier unit -- tests/unit $(xdist load) "$@" ;;
        api)
            has_tests tests/api && run_tier api -- tests/api $(xdist load) "$@" ;;
        security)
            has_tests tests/security && run_tier security -- tests/security $(xdist load) "$@" ;;
        compat)
            has_tests tests/compat && run_tier compat -- tests/compat $(xdist loadfile) "$@" ;;
        other)
            local others
            others=$(find tests -name 'test_*.py' -not -path 'tests/unit/*' -not -path 'tests/api/*' \
                     -not -path 'tests/compat/*' -not -path 'tests/security/*' -print -quit)
            [ -n "$others" ] && run_tier other -- tests --ignore=tests/unit --ignore=tests/api \
                --ignore=tests/compat --ignore=tests/security "$@" ;;
        pg)
            run_tier pg bash "$ROOT/scripts/pg-test.sh" -- tests --pg-pass $(xdist load) "$@" ;;
        *)
            echo "test.sh: unknown tier $name (lint, unit, api, security, compat, other, pg)" >&2
            exit 2 ;;
    esac
    return 0
}

T0=$(date +%s)
if [ $# -gt 0 ]; then
    tier "$@"
else
    for t in lint unit api security compat other pg; do tier "$t"; done
fi

echo
echo "=============== summary ==============="
for r in "${RESULTS[@]}"; do echo "$r"; done
echo "total time $(( $(date +%s) - T0 ))s"
# One plain closing line over every tier.
"$PY" - "$REPORTS" <<'PYEOF'
import glob, sys, xml.etree.ElementTree as ET
n = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
for path in glob.glob(sys.argv[1] + "/*.xml"):
    for suite in ET.parse(path).getroot().iter("testsuite"):
        for k in n:
            n[k] += int(suite.get(k, 0))
failed = n["failures"] + n["errors"]
passed = n["tests"] - failed - n["skipped"]
print(f"total: {passed} passed, {failed} failed, {n['skipped']} skipped")
PYEOF
exit $FAILED
