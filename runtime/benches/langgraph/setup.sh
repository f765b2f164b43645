#!/usr/bin/env bash
# Creates (or reuses) the Python venv that the LangGraph side of the engine benchmark runs in.
# Idempotent: a second run only checks that the packages import.
# Usage: runtime/benches/langgraph/setup.sh   → prints the venv's python path on stdout.
set -euo pipefail

CACHE="${STEPWISE_CACHE:-$HOME/.cache/stepwise}"
VENV="$CACHE/venv-langgraph"
PY="${PYTHON:-python3}"
PACKAGES=(langgraph langgraph-checkpoint-sqlite aiosqlite)

mkdir -p "$CACHE"
if [[ ! -x "$VENV/bin/python" ]]; then
    echo "creating venv $VENV" >&2
    "$PY" -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import langgraph.graph, langgraph.checkpoint.sqlite, langgraph.checkpoint.sqlite.aio, aiosqlite' 2>/dev/null; then
    echo "installing ${PACKAGES[*]} into $VENV" >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PACKAGES[@]}" >&2
    "$VENV/bin/python" -c 'import langgraph.graph, langgraph.checkpoint.sqlite, langgraph.checkpoint.sqlite.aio, aiosqlite'
fi
echo "$VENV/bin/python"
