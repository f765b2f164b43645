#!/usr/bin/env python3
"""Side-by-side table of `stepwise bench engine --json` and chain.py results, with ratios and
the targets of issue 2. Usage: report.py DIR (holding stepwise.json, langgraph.json, cold.json
and optionally stepwise-full.json, as compare.sh writes them). Also writes DIR/summary.json."""

import json
import os
import re
import sys


def load(d, name):
    p = os.path.join(d, name)
    return json.load(open(p)) if os.path.exists(p) else None


def linear(sw):
    """{N: per-step µs} of a stepwise report."""
    out = {}
    for c in sw["cases"]:
        m = re.match(r"linear (\d+) steps", c["name"])
        if m:
            out[m.group(1)] = c["per_unit_us"]
    return out


def case(sw, pattern):
    return next((c for c in sw["cases"] if re.search(pattern, c["name"])), None)


def mark(ok):
    return "ok " if ok else "MISS"


def main():
    d = sys.argv[1]
    sw, swf, lg, cold = (load(d, f) for f in ("stepwise.json", "stepwise-full.json", "langgraph.json", "cold.json"))
    sw_lin = linear(sw)
    swf_lin = linear(swf) if swf else {}
    lg_ps = lg["per_step_us"]
    sizes = [n for n in sw_lin if n in lg_ps["sqlite_normal"]]
    p = print
    p(f"\nstepwise vs LangGraph {lg['langgraph']} (checkpoint-sqlite {lg['langgraph_checkpoint_sqlite']}, "
      f"Python {lg['python']}), same machine, one run")
    p(f"bare SQLite commit here: {sw['sqlite_commit_us']:.1f} µs (WAL, synchronous=NORMAL)")
    m = load(d, "machine.json")
    if m:
        busy = max(m["load_before"], m["load_after"]) > m["cores"]
        p(f"load average {m['load_before']} before, {m['load_after']} after, on {m['cores']} cores"
          + ("  ← busy machine: every figure is inflated, compare ratios only" if busy else ""))
    p()
    p("per-step overhead, linear chain of N no-op steps, µs/step (median)")
    p(f"{'':34}" + "".join(f"{'N=' + n:>11}" for n in sizes))
    rows = [("stepwise, journaled (NORMAL)", sw_lin)]
    if swf_lin:
        rows.append(("stepwise, journaled (FULL)", swf_lin))
    rows += [
        ("LangGraph, no checkpointer", lg_ps["no_checkpointer"]),
        ("LangGraph, SqliteSaver default", lg_ps["sqlite_default"]),
        ("LangGraph, SqliteSaver NORMAL", lg_ps["sqlite_normal"]),
        ("LangGraph, SqliteSaver NORMAL+sync", lg_ps["sqlite_normal_sync"]),
    ]
    for name, v in rows:
        p(f"{name:34}" + "".join(f"{v[n]:>11.1f}" for n in sizes))
    p("\nratios (LangGraph µs/step ÷ stepwise µs/step, NORMAL unless said)")
    ratio_rows = [
        ("no checkpointer (target > 1)", "no_checkpointer", sw_lin, 1.0),
        ("SqliteSaver NORMAL (target ≥ 15)", "sqlite_normal", sw_lin, 15.0),
        ("SqliteSaver NORMAL+sync", "sqlite_normal_sync", sw_lin, None),
        ("SqliteSaver default ÷ stepwise FULL", "sqlite_default", swf_lin, None),
    ]
    summary = {"per_step_us": {"stepwise": sw_lin, "stepwise_full": swf_lin, **lg_ps}, "ratios": {}, "targets": {}}
    for label, key, base, target in ratio_rows:
        if not base:
            continue
        r = {n: lg_ps[key][n] / base[n] for n in sizes}
        summary["ratios"][key] = r
        flag = "" if target is None else "  " + mark(all(x > target if target == 1.0 else x >= target for x in r.values()))
        p(f"{label:34}" + "".join(f"{r[n]:>10.1f}×" for n in sizes) + flag)

    conc = case(sw, r"concurrent")
    sw_rps, lg_rps = conc["per_second"], lg["concurrent"]["runs_per_s"]
    p(f"\n{conc['units']} concurrent 10-step runs: stepwise {sw_rps:.0f} runs/s, LangGraph AsyncSqliteSaver "
      f"{lg_rps:.1f} runs/s → {sw_rps / lg_rps:.1f}×   {mark(sw_rps >= 700)} (target ≥ 700 runs/s)")
    for pat, unit in ((r"fan-out", "branch"), (r"for_each", "iteration")):
        c = case(sw, pat)
        if c:
            p(f"stepwise {c['name']}: {c['per_unit_us']:.1f} µs per {unit} ({c['per_second']:.0f}/s)")
    p("\nstorage per step (bytes, after a WAL checkpoint)")
    sw_b = {str(n): b for n, b in sw["journal_bytes_per_step"]}
    lg_b = lg["bytes_per_step"]
    bs = [n for n in sw_b if n in lg_b]
    p(f"{'':34}" + "".join(f"{'N=' + n:>11}" for n in bs))
    p(f"{'stepwise journal':34}" + "".join(f"{sw_b[n]:>11.0f}" for n in bs))
    p(f"{'LangGraph SqliteSaver':34}" + "".join(f"{lg_b[n]:>11.0f}" for n in bs))
    if "1000" in lg_b:
        p(f"LangGraph total for one 1000-step run: {lg_b['1000'] * 1000 / 1e6:.1f} MB; "
          f"stepwise: {sw_b.get('1000', 0) * 1000 / 1e6:.2f} MB")
    p(f"\ncold start (median, {cold['tool']}): stepwise --version {cold['stepwise_version_ms']:.2f} ms   "
      f"{mark(cold['stepwise_version_ms'] <= 10)} (target ≤ 10 ms)")
    p(f"python -c pass {cold['python_ms']:.0f} ms; python -c 'import langgraph.graph' "
      f"{cold['langgraph_import_ms']:.0f} ms (import alone in-process: {lg['import_ms']:.0f} ms) → "
      f"{cold['langgraph_import_ms'] / cold['stepwise_version_ms']:.0f}×")
    p(f"stepwise bench peak RSS: {sw['peak_rss_mb']:.1f} MiB")
    worst = max(sw_lin.values())
    p(f"\nstepwise ≤ 50 µs per journaled step (NORMAL): worst {worst:.1f} µs   {mark(worst <= 50)}")
    summary["targets"] = {
        "per_step_le_50us": worst <= 50,
        "runs_per_s_ge_700": sw_rps >= 700,
        "cold_start_le_10ms": cold["stepwise_version_ms"] <= 10,
        "ge_15x_sqlite_normal": all(v >= 15 for v in summary["ratios"]["sqlite_normal"].values()),
        "below_no_checkpointer": all(v > 1 for v in summary["ratios"]["no_checkpointer"].values()),
    }
    summary.update(concurrent={"stepwise": sw_rps, "langgraph": lg_rps}, bytes_per_step={"stepwise": sw_b, "langgraph": lg_b},
                   cold=cold, machine=m)
    json.dump(summary, open(os.path.join(d, "summary.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
