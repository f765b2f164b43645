#!/usr/bin/env python3
"""LangGraph side of `stepwise bench engine`: the same linear chain of no-op steps, measured here.

Cases (each node increments a counter in the graph state):
  (a) no checkpointer;
  (b) SqliteSaver on a file with its default setup (WAL, SQLite's default synchronous=FULL);
  (c) SqliteSaver with WAL and synchronous=NORMAL (stepwise's default durability), with
      LangGraph's default durability="async" and with durability="sync" (each checkpoint written
      before the next step starts, as stepwise does);
  (d) 100 concurrent runs of a 10-step chain with AsyncSqliteSaver at synchronous=NORMAL;
  (e) SQLite bytes written per step by one run of 10, 100 and 1000 steps;
  (f) `import langgraph.graph` time in a fresh interpreter.

Per-step figures are the median wall time of repeated `invoke` calls divided by N (the graph is
compiled once, outside the timing, as stepwise loads its plan once). Prints one JSON object on
stdout and a table on stderr.

Usage: python chain.py [--quick] [--reps R] [--dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from typing import TypedDict

import aiosqlite
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import END, START, StateGraph


class State(TypedDict):
    count: int


def bump(state: State) -> dict:
    return {"count": state["count"] + 1}


async def abump(state: State) -> dict:
    return {"count": state["count"] + 1}


def chain(n: int, asynchronous: bool = False) -> StateGraph:
    g = StateGraph(State)
    prev = START
    for i in range(n):
        name = f"s{i}"
        g.add_node(name, abump if asynchronous else bump)
        g.add_edge(prev, name)
        prev = name
    g.add_edge(prev, END)
    return g


def config(n: int) -> dict:
    # Each node is one super-step; the default recursion_limit (25) stops longer chains.
    return {"configurable": {"thread_id": uuid.uuid4().hex}, "recursion_limit": n + 10}


def connect(path: str, synchronous: str | None) -> sqlite3.Connection:
    conn = sqlite3.connect(path, check_same_thread=False)
    if synchronous is not None:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={synchronous}")
    return conn


def time_invokes(graph, n: int, reps: int, **kw) -> list[float]:
    times = []
    for _ in range(reps + 1):  # the first run is a warm-up
        t = time.perf_counter()
        out = graph.invoke({"count": 0}, config(n), **kw)
        times.append(time.perf_counter() - t)
        if out["count"] != n:
            raise SystemExit(f"chain of {n} returned count={out['count']}")
    return times[1:]


def per_step_us(times: list[float], n: int) -> float:
    return statistics.median(times) * 1e6 / n


def linear_case(workdir: str, label: str, sizes: list[int], reps: int, synchronous, durability=None) -> dict:
    res = {}
    for n in sizes:
        r = reps if n < 1000 else max(3, (reps + 1) // 2)
        kw = {} if durability is None else {"durability": durability}
        if synchronous is False:
            graph = chain(n).compile()
            res[str(n)] = per_step_us(time_invokes(graph, n, r), n)
        else:
            res[str(n)] = checkpointed(workdir, label, n, r, synchronous, kw)
        print(f"  {label:<28} N={n:<5} {res[str(n)]:>10.1f} µs/step", file=sys.stderr)
    return res


def checkpointed(workdir: str, label: str, n: int, reps: int, synchronous, kw: dict) -> float:
    path = os.path.join(workdir, f"{label}-{n}.sqlite")
    conn = connect(path, synchronous)
    try:
        graph = chain(n).compile(checkpointer=SqliteSaver(conn))
        return per_step_us(time_invokes(graph, n, reps, **kw), n)
    finally:
        conn.close()


async def concurrent_case(workdir: str, runs: int, steps: int, reps: int) -> dict:
    path = os.path.join(workdir, "concurrent.sqlite")
    conn = await aiosqlite.connect(path)
    try:
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA synchronous=NORMAL")
        saver = AsyncSqliteSaver(conn)
        await saver.setup()
        graph = chain(steps, asynchronous=True).compile(checkpointer=saver)
        times = []
        for i in range(reps + 1):
            t = time.perf_counter()
            outs = await asyncio.gather(*(graph.ainvoke({"count": 0}, config(steps)) for _ in range(runs)))
            times.append(time.perf_counter() - t)
            if any(o["count"] != steps for o in outs):
                raise SystemExit("a concurrent run returned a wrong count")
        m = statistics.median(times[1:])
        return {"runs": runs, "steps": steps, "median_s": m, "runs_per_s": runs / m}
    finally:
        await conn.close()


def file_bytes(path: str) -> int:
    return sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))


def bytes_per_step(workdir: str, n: int) -> float:
    path = os.path.join(workdir, f"size-{n}.sqlite")
    conn = connect(path, "NORMAL")
    try:
        saver = SqliteSaver(conn)
        saver.setup()
        conn.commit()
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        before = file_bytes(path)
        chain(n).compile(checkpointer=saver).invoke({"count": 0}, config(n))
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return (file_bytes(path) - before) / n
    finally:
        conn.close()


def import_ms(reps: int) -> float:
    code = "import time; t = time.perf_counter(); import langgraph.graph; print(time.perf_counter() - t)"
    times = []
    for _ in range(reps):
        out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
        times.append(float(out.stdout) * 1e3)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="N = 10, 100 only; 20 concurrent runs")
    ap.add_argument("--reps", type=int, default=7, help="repetitions per case (median reported)")
    ap.add_argument("--dir", help="directory for the SQLite files [default: a temporary directory]")
    a = ap.parse_args()
    sizes = [10, 100] if a.quick else [10, 100, 1000]
    with tempfile.TemporaryDirectory(dir=a.dir) as workdir:
        print("LangGraph linear chains…", file=sys.stderr)
        cases = {
            "no_checkpointer": linear_case(workdir, "no_checkpointer", sizes, a.reps, False),
            "sqlite_default": linear_case(workdir, "sqlite_default", sizes, a.reps, None),
            "sqlite_normal": linear_case(workdir, "sqlite_normal", sizes, a.reps, "NORMAL"),
            "sqlite_normal_sync": linear_case(workdir, "sqlite_normal_sync", sizes, a.reps, "NORMAL", "sync"),
        }
        runs = 20 if a.quick else 100
        print(f"LangGraph {runs} concurrent 10-step runs (AsyncSqliteSaver)…", file=sys.stderr)
        conc = asyncio.run(concurrent_case(workdir, runs, 10, max(3, (a.reps + 1) // 2)))
        print("LangGraph checkpoint bytes per step…", file=sys.stderr)
        sizes_out = {str(n): bytes_per_step(workdir, n) for n in sizes}
    imp = import_ms(5)
    from importlib.metadata import version

    report = {
        "langgraph": version("langgraph"),
        "langgraph_checkpoint_sqlite": version("langgraph-checkpoint-sqlite"),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "reps": a.reps,
        "per_step_us": cases,
        "concurrent": conc,
        "bytes_per_step": sizes_out,
        "import_ms": imp,
    }
    print(json.dumps(report))
    w = sys.stderr.write
    w(f"\nLangGraph {report['langgraph']} (Python {report['python']}, SQLite {report['sqlite']})\n")
    w(f"{'case':<28}" + "".join(f"{'N=' + n:>12}" for n in map(str, sizes)) + "   µs/step\n")
    for k, v in cases.items():
        w(f"{k:<28}" + "".join(f"{v[str(n)]:>12.1f}" for n in sizes) + "\n")
    w(f"{conc['runs']} concurrent 10-step runs: {conc['runs_per_s']:.1f} runs/s\n")
    w("checkpoint bytes per step: " + ", ".join(f"N={n}: {b:.0f}" for n, b in sizes_out.items()) + "\n")
    w(f"import langgraph.graph: {imp:.0f} ms\n")


if __name__ == "__main__":
    main()
