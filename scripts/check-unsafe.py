#!/usr/bin/env python3
"""Source rules clippy cannot check for every target here.

clippy runs on Linux only (no clippy for the Windows toolchain on these
machines), so for every file, Windows ones included, this checks:
- `unsafe` appears only under a `sys/` directory;
- every `unsafe {` block and `unsafe impl` has a `// SAFETY:` comment on
  the lines right above it (blank lines and attributes may sit between),
  or on its own line as the first line inside the block.
Exits 1 and names each violation."""
import os
import re
import sys

ROOTS = ["crates"]
bad = []
for root in ROOTS:
    for dirpath, _, files in os.walk(root):
        if "/target" in dirpath:
            continue
        for name in files:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(dirpath, name)
            lines = open(path, encoding="utf-8").read().split("\n")
            for i, line in enumerate(lines):
                code = line.split("//")[0]
                if not re.search(r"\bunsafe\b", code):
                    continue
                if "/sys/" not in path.replace(os.sep, "/") + "/" and "/sys" not in dirpath:
                    bad.append(f"{path}:{i + 1}: unsafe outside sys/")
                    continue
                if not re.search(r"\bunsafe\s*(\{|impl\b)", code):
                    continue  # an `unsafe fn` signature or a type: its callers carry the comment
                # Walk up through the statement's own earlier lines, blank
                # lines, attributes and comments, looking for SAFETY.
                ok = False
                j = i - 1
                while j >= 0 and i - j <= 12:
                    above = lines[j].strip()
                    if above.startswith("// SAFETY:"):
                        ok = True
                        break
                    if above.startswith("//") or above.startswith("#[") or above == "":
                        j -= 1
                        continue
                    # A statement that begins above (`let x =` then `unsafe {`).
                    if not above.endswith((";", "}", "{")) or above.endswith("= {"):
                        j -= 1
                        continue
                    break
                if not ok and i + 1 < len(lines) and lines[i + 1].strip().startswith("// SAFETY:"):
                    ok = True
                if not ok:
                    bad.append(f"{path}:{i + 1}: unsafe without a // SAFETY: comment")
for b in bad:
    print(b)
print(f"check-unsafe: {len(bad)} violation(s)")
sys.exit(1 if bad else 0)
