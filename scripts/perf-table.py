#!/usr/bin/env python3
"""Prints the harness's JSON (target/bench/compare.json, relay.json, or the
files named) as the Markdown table docs/PERFORMANCE.md shows."""
import json
import sys

paths = sys.argv[1:] or ["target/bench/compare.json", "target/bench/relay.json"]
print("| measure | umbilical (floor rows: the floor) | baseline | ratio | p90 (ours / baseline) |")
print("| --- | --- | --- | --- | --- |")
for path in paths:
    for r in json.load(open(path))["rows"]:
        unit = (" " + r["unit"]) if r["unit"] else ""
        ours, base = r["umbilical"], r["baseline"]
        if r["sense"] == "rate":
            ratio = f"{ours / base:.2f}x throughput"
        elif r["sense"] == "time":
            ratio = f"{ours / base:.2f}x time"
        else:
            ratio = "" if base == 0 else f"{ours / base:.2f}"
        p90 = "" if r["p90"] is None else f"{r['p90'][0]:.1f} / {r['p90'][1]:.1f}{unit}"
        name = f"{r['group']}: {r['name']}".replace("|", "\\|")
        print(f"| {name} | {ours:.2f}{unit} | {r['baseline_name']} {base:.2f}{unit} | {ratio} | {p90} |")
