#!/usr/bin/env python3
"""Prints the closing lines of a meson test run, read from BUILD/meson-logs/testlog.json: each
cmocka group's summary line, the skipped cases by name, and a final 'N passed, N failed,
N skipped' line counting test cases where the runner reports them (cmocka, pytest, go test,
cargo test) and whole meson tests otherwise (exit 77 is meson's skip).
Exit status 1 when a test failed or when no test ran."""
import json
import re
import sys

build = sys.argv[1] if len(sys.argv) > 1 else "build"
entries = {}
with open(f"{build}/meson-logs/testlog.json") as f:
    for line in f:
        entry = json.loads(line)
        entries[entry["name"]] = entry  # a rerun of the same test replaces the earlier one

passed = failed = skipped = 0
summaries = []
skipped_names = []


def count_cases(name, text):
    """(passed, failed, skipped, skipped names) from a runner's own report, or None."""
    lines = text.splitlines()
    # cmocka: one summary per group
    groups = [l for l in lines if re.match(r"^\[  (PASSED|FAILED|SKIPPED) \s*\] \d+ test", l)]
    if groups:
        p = f = s = 0
        names = []
        for i, l in enumerate(lines):
            m = re.match(r"^\[  (PASSED|FAILED|SKIPPED) \s*\] (\d+) test", l)
            if not m:
                continue
            n = int(m.group(2))
            if m.group(1) == "PASSED":
                p += n
            elif m.group(1) == "FAILED":
                f += n
            else:
                s += n
                names += [re.sub(r"^\[  SKIPPED \] ", "", x).strip() for x in lines[i + 1 : i + 1 + n]]
        return p, f, s, names
    # pytest: "== 3 passed, 1 skipped in 2.1s ==" (with -rs, "SKIPPED [1] file:line: reason")
    for l in reversed(lines):
        if re.search(r"\d+ (passed|failed|skipped|error)", l) and re.search(r" in [\d.]+s", l):
            c = {k: int(v) for v, k in re.findall(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed)", l)}
            names = [re.sub(r"^SKIPPED \[\d+\] ", "", x) for x in lines if x.startswith("SKIPPED [")]
            return (c.get("passed", 0) + c.get("xfailed", 0), c.get("failed", 0) + c.get("error", 0) + c.get("errors", 0) + c.get("xpassed", 0),
                    c.get("skipped", 0), names)
    # go test -v
    go = [re.match(r"^\s*--- (PASS|FAIL|SKIP): (\S+)", l) for l in lines]
    go = [m for m in go if m]
    if go:
        return (sum(m.group(1) == "PASS" for m in go), sum(m.group(1) == "FAIL" for m in go),
                sum(m.group(1) == "SKIP" for m in go), [m.group(2) for m in go if m.group(1) == "SKIP"])
    # cargo test: one "test result:" line per test binary
    cargo = [re.search(r"test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored", l) for l in lines]
    cargo = [m for m in cargo if m]
    if cargo:
        names = [re.match(r"^test (\S+) \.\.\. ignored", l).group(1) for l in lines if re.match(r"^test \S+ \.\.\. ignored", l)]
        return (sum(int(m.group(1)) for m in cargo), sum(int(m.group(2)) for m in cargo),
                sum(int(m.group(3)) for m in cargo), names)
    return None


for name, entry in entries.items():
    text = (entry.get("stdout") or "") + "\n" + (entry.get("stderr") or "")
    short = name.split(" / ")[-1]
    for out in text.splitlines():
        if re.match(r"^\[  (PASSED|FAILED|SKIPPED) \s*\] \d+ test", out):
            summaries.append(f"{name}: {out.strip()}")
    result = entry["result"]
    cases = count_cases(name, text) if result not in ("SKIP",) else None
    if result == "SKIP":
        skipped += 1
        reason = [l for l in text.splitlines() if l.strip()]
        skipped_names.append(f"{short} (whole test{': ' + reason[-1].strip() if reason else ''})")
        continue
    if cases is None:
        if result in ("OK", "EXPECTEDFAIL"):
            passed += 1
        else:
            failed += 1
        continue
    p, f, s, names = cases
    if result not in ("OK", "EXPECTEDFAIL") and f == 0:
        f = 1  # the runner's report looked clean but the test failed (crash, leak, exit code)
    passed += p
    failed += f
    skipped += s
    skipped_names += [f"{short}: {n}" for n in names] + [f"{short}: (unnamed)"] * max(0, s - len(names))

for line in summaries:
    print(line)
if skipped_names:
    print("skipped (cannot run on this CPU or build):")
    for n in skipped_names:
        print(f"  {n}")
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed or not entries or passed == 0 else 0)
