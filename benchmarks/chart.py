#!/usr/bin/env python3
"""Draw the benchmark chart of docs/performance.md from results.txt as an SVG.

For each workload (a hit on one goroutine, a get-or-compute), one horizontal
bar per contender: the median ns/op over the rounds of the run in
results.txt, the same numbers as that page's table.

    python3 chart.py [results.txt] > chart.svg
"""

import re
import statistics
import sys
from xml.sax.saxutils import escape

WORKLOADS = [("a hit, one goroutine", "Hit"), ("a get-or-compute, cache 4096, key space 16x", "GetOrCompute")]
CONTENDERS = [
    ("memo Memoize", "memo-Memoize"),
    ("memo LRU", "memo-LRU"),
    ("golang-lru v2", "golang-lru"),
    ("otter v2", "otter"),
    ("ristretto v2", "ristretto"),
    ("Python lru_cache", "python-lru_cache"),
]
LINE = re.compile(r"^Benchmark(\S+?)(?:-\d+)?\s+\d+\s+([\d.]+) ns/op")


def medians(path):
    runs = {}
    with open(path) as f:
        for line in f:
            m = LINE.match(line)
            if m:
                runs.setdefault(m.group(1), []).append(float(m.group(2)))
    return {name: statistics.median(v) for name, v in runs.items()}


def main():
    ns = medians(sys.argv[1] if len(sys.argv) > 1 else "results.txt")
    bar_h, gap, label_w, width = 18, 6, 150, 640
    rows = []
    for title, bench in WORKLOADS:
        bars = [(label, ns[f"{bench}/{key}"]) for label, key in CONTENDERS if f"{bench}/{key}" in ns]
        rows.append((title, bars))
    height = sum(28 + len(bars) * (bar_h + gap) + 10 for _, bars in rows) + 10
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>']
    y = 10
    for title, bars in rows:
        out.append(f'<text x="0" y="{y + 14}" font-weight="bold">{escape(title)}: ns per call, lower is better</text>')
        y += 28
        top = max(v for _, v in bars)
        for label, v in bars:
            w = (width - label_w - 70) * v / top
            colour = "#2a7" if label.startswith("memo") else "#999"
            out.append(f'<text x="{label_w - 8}" y="{y + 13}" text-anchor="end">{escape(label)}</text>')
            out.append(f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{colour}"/>')
            out.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 13}">{v:.1f}</text>')
            y += bar_h + gap
        y += 10
    out.append("</svg>")
    print("\n".join(out))


if __name__ == "__main__":
    main()
