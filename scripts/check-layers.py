#!/usr/bin/env python3
"""The library's layers, checked against its real imports.

docs/ARCHITECTURE.md holds the layer list in a fenced block that starts
with `layers (top first)`: one line per layer, its modules after the colon.
Every module of crates/umbilical/src must be listed; a module may import
(`crate::NAME`, in a `use` or a path) only modules of its own layer or the
layers below; and the modules of one layer must not import each other in a
cycle. Exits 1 with each violation named.
"""
import pathlib
import re
import sys

root = pathlib.Path(__file__).resolve().parent.parent
src = root / "crates/umbilical/src"
doc = (root / "docs/ARCHITECTURE.md").read_text()

block = re.search(r"```text\nlayers \(top first\)\n(.*?)```", doc, re.S)
if not block:
    sys.exit("check-layers: docs/ARCHITECTURE.md has no ```text block starting with 'layers (top first)'")
rank = {}
lines = [l for l in block.group(1).splitlines() if l.strip()]
for height, line in enumerate(reversed(lines)):
    _, _, modules = line.partition(":")
    for module in modules.split():
        rank[module] = height

def module_of(path):
    rel = path.relative_to(src)
    if rel.parts[0] == "bin":
        return None  # binaries use the public API only
    return rel.stem if len(rel.parts) == 1 else rel.parts[0]

def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(l.split("//", 1)[0] for l in text.splitlines())

imports = {}
problems = []
for path in sorted(src.rglob("*.rs")):
    module = module_of(path)
    if module is None:
        continue
    if module not in rank:
        problems.append(f"{path.relative_to(root)}: module `{module}` is in no layer of docs/ARCHITECTURE.md")
        continue
    text = strip_comments(path.read_text())
    used = set(re.findall(r"\bcrate::([a-z_][a-z0-9_]*)", text))
    # `use crate::{a, b::c}` groups.
    for group in re.findall(r"\bcrate::\{([^}]*)\}", text):
        used.update(re.findall(r"(?:^|,)\s*([a-z_][a-z0-9_]*)", group))
    for name in sorted(used - {module}):
        if name not in rank:
            continue  # a crate-root item (a re-export), not a module
        imports.setdefault(module, set()).add(name)
        if rank[name] > rank[module]:
            problems.append(
                f"{path.relative_to(root)}: `{module}` (layer {rank[module]}) imports `{name}` (layer {rank[name]}), a layer above it"
            )

# No cycle among the modules of one layer.
def cycle_from(start):
    stack = [(start, [start])]
    while stack:
        node, trail = stack.pop()
        for nxt in imports.get(node, ()):
            if rank.get(nxt) != rank[start]:
                continue
            if nxt == start:
                return trail + [start]
            if nxt not in trail:
                stack.append((nxt, trail + [nxt]))
    return None

seen = set()
for module in sorted(imports):
    found = cycle_from(module)
    if found and frozenset(found) not in seen:
        seen.add(frozenset(found))
        problems.append("import cycle: " + " -> ".join(found))

listed_missing = [m for m in rank if m != "lib" and not (src / f"{m}.rs").exists() and not (src / m).is_dir()]
for m in listed_missing:
    problems.append(f"docs/ARCHITECTURE.md lists `{m}`, which is no module of crates/umbilical/src")

for p in problems:
    print(p)
if problems:
    sys.exit(1)
print(f"layers: {len(rank)} modules in {len(lines)} layers; no upward import, no cycle")
