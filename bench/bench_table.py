#!/usr/bin/env python3
"""Renders `llavanext-bench --json` output as the Markdown table of docs/performance.md.

    python3 bench/bench_table.py RESULT.json
"""
import json
import sys


def fmt_rate(st):
    unit = st["unit"]
    if unit == "FLOP":
        return "%.1f GFLOP/s" % (st["rate"] / 1e9)
    if unit == "bytes":
        return "%.1f GB/s" % (st["rate"] / 1e9)
    return "-"


def fmt_ceiling(st):
    if st.get("ceiling") is None:
        return "-"
    scale = 1e9
    unit = "GFLOP/s" if st["unit"] == "FLOP" else "GB/s"
    return "%.1f %s (%s)" % (st["ceiling"] / scale, unit, st["ceiling_name"])


def spread(st, key):
    if st.get(key) is None:
        return "-"
    return "%.2f [%.2f-%.2f]" % (st[key], st[key + "_min"], st[key + "_max"])


def main():
    with open(sys.argv[1]) as f:
        r = json.load(f)
    print("| stage | seconds (measured depth) | rate | ceiling, median of the samples (best of) "
          "| ratio, median [min-max] | full-depth s | full-depth ratio, median [min-max] |")
    print("|---|---|---|---|---|---|---|")
    for st in r["stages"]:
        print("| `%s` | %.3f | %s | %s | %s | %.2f | %s |" % (
            st["name"], st["seconds"], fmt_rate(st), fmt_ceiling(st), spread(st, "ratio"),
            st["full_seconds"], spread(st, "full_ratio")))
    c = r["ceilings"]
    print()
    print("Instruction peaks: float32 FMA %.0f GFLOP/s (AVX-512), %.0f (AVX2); AVX512-BF16 dot %.0f "
          "GFLOP/s; streaming read %.1f GB/s (measured once at the start, %d threads, %d samples per "
          "stage)." % (c["fma_avx512_flops"] / 1e9, c["fma_avx2_flops"] / 1e9, c["bf16_dot_flops"] / 1e9,
                       c["stream_read_bytes_per_s"] / 1e9, r["threads"], r["runs"]))


if __name__ == "__main__":
    main()
