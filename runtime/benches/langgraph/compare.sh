#!/usr/bin/env bash
# stepwise vs LangGraph, measured back to back on this machine.
#
#   runtime/benches/langgraph/compare.sh [--quick] [--with-full]
#
# 1. builds `stepwise` in release;
# 2. `stepwise bench engine --json` (SQLite WAL, synchronous=NORMAL);
#    with --with-full also `--durability full` (fsync per commit), to set beside LangGraph's
#    default SqliteSaver setup (which is synchronous=FULL);
# 3. chain.py (the same linear chains in LangGraph, see its docstring);
# 4. cold start: `stepwise --version` vs `python -c 'import langgraph.graph'` (hyperfine when
#    installed, else a loop of runs and the median);
# then prints a side-by-side table with ratios and the acceptance targets of issue 2.
# The raw JSON of every part is kept in $OUT (default: $STEPWISE_CACHE/bench-compare).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
CACHE="${STEPWISE_CACHE:-$HOME/.cache/stepwise}"
OUT="${OUT:-$CACHE/bench-compare}"
QUICK=()
WITH_FULL=0
for a in "$@"; do
    case "$a" in
        --quick) QUICK=(--quick) ;;
        --with-full) WITH_FULL=1 ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "compare.sh: unknown option $a (try --help)" >&2; exit 2 ;;
    esac
done
mkdir -p "$OUT"

PY="$("$HERE/setup.sh")"

echo "== building stepwise (release)" >&2
(cd "$ROOT" && cargo build --release -p stepwise-runtime >&2)
TARGET_DIR="$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
SW="$TARGET_DIR/release/stepwise"
[[ -x "$SW" ]] || { echo "compare.sh: $SW was not built" >&2; exit 1; }

# Other work on the machine inflates every figure: keep the load beside the numbers.
LOAD_BEFORE="$(cut -d' ' -f1 /proc/loadavg)"

echo "== stepwise bench engine (synchronous=NORMAL)" >&2
"$SW" bench engine --json "${QUICK[@]}" > "$OUT/stepwise.json"
if [[ $WITH_FULL == 1 ]]; then
    echo "== stepwise bench engine (synchronous=FULL)" >&2
    "$SW" bench engine --json --durability full "${QUICK[@]}" > "$OUT/stepwise-full.json"
else
    rm -f "$OUT/stepwise-full.json"
fi

echo "== LangGraph chain.py" >&2
"$PY" "$HERE/chain.py" "${QUICK[@]}" > "$OUT/langgraph.json"

echo "== cold start" >&2
IMPORT="import langgraph.graph"
if command -v hyperfine > /dev/null; then
    hyperfine -N --warmup 5 --runs 50 --export-json "$OUT/cold-stepwise.json" "$SW --version" > /dev/null 2>&1
    hyperfine -N --warmup 1 --runs 10 --export-json "$OUT/cold-python.json" "$PY -c pass" > /dev/null 2>&1
    hyperfine -N --warmup 1 --runs 10 --export-json "$OUT/cold-langgraph.json" "$PY -c '$IMPORT'" > /dev/null 2>&1
    "$PY" - "$OUT" > "$OUT/cold.json" <<'EOF'
import json, sys
out = sys.argv[1]
med = lambda f: json.load(open(f"{out}/cold-{f}.json"))["results"][0]["median"] * 1e3
print(json.dumps({"tool": "hyperfine", "stepwise_version_ms": med("stepwise"),
                  "python_ms": med("python"), "langgraph_import_ms": med("langgraph")}))
EOF
else
    "$PY" - "$SW" "$PY" "$IMPORT" > "$OUT/cold.json" <<'EOF'
import json, statistics, subprocess, sys, time
sw, py, imp = sys.argv[1:4]
def med(cmd, n):
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        ts.append((time.perf_counter() - t) * 1e3)
    return statistics.median(ts)
print(json.dumps({"tool": "loop", "stepwise_version_ms": med([sw, "--version"], 50),
                  "python_ms": med([py, "-c", "pass"], 10), "langgraph_import_ms": med([py, "-c", imp], 10)}))
EOF
fi

printf '{"load_before": %s, "load_after": %s, "cores": %s}\n' \
    "$LOAD_BEFORE" "$(cut -d' ' -f1 /proc/loadavg)" "$(nproc)" > "$OUT/machine.json"

"$PY" "$HERE/report.py" "$OUT"
