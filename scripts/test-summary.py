#!/usr/bin/env python3
"""Prints the closing lines of a meson test run: each cmocka group's summary line and a final
'N passed, N failed' line (with skipped tests), read from BUILD/meson-logs/testlog.json.
Exit status 1 when a test failed or when no test ran."""
import json
import re
import sys

build = sys.argv[1] if len(sys.argv) > 1 else "build"
results = {}
summaries = []
with open(f"{build}/meson-logs/testlog.json") as f:
    for line in f:
        entry = json.loads(line)
        results[entry["name"]] = entry["result"]
        for out in ((entry.get("stdout") or "") + "\n" + (entry.get("stderr") or "")).splitlines():
            if re.match(r"^\[  (PASSED|FAILED)  \] \d+ test", out):
                summaries.append(f"{entry['name']}: {out.strip()}")
for line in summaries:
    print(line)
passed = sum(1 for r in results.values() if r in ("OK", "EXPECTEDFAIL"))
skipped = sum(1 for r in results.values() if r == "SKIP")
failed = len(results) - passed - skipped
print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
sys.exit(1 if failed or not results else 0)
