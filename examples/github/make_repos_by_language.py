#!/usr/bin/env python3
"""Writes the recorded GitHub search answers `repos-by-language` replays in
the demo (`--from-archive --archive-dir examples/github/repos-by-language`).
The layout is bdc-http's raw archive: index.jsonl + gzip bodies. The counts
are illustrative, not real GitHub figures."""
import gzip, json, os, urllib.parse

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "repos-by-language")
BASE = "https://api.github.com"

def q_url(q):
    return f"{BASE}/search/repositories?q={urllib.parse.quote_plus(q, safe='*')}&per_page=1"

def write(entries):
    os.makedirs(os.path.join(OUT, "bodies"), exist_ok=True)
    with open(os.path.join(OUT, "index.jsonl"), "w") as idx:
        for n, (url, body) in enumerate(entries):
            raw = json.dumps(body).encode()
            name = f"bodies/{n:04d}.gz"
            with open(os.path.join(OUT, name), "wb") as f:
                f.write(gzip.compress(raw, mtime=0))
            idx.write(json.dumps({"url": url, "status": 200,
                "headers": {"content-type": "application/json; charset=utf-8"},
                "fetched_at": "2026-01-02T00:00:00Z", "file": name, "bytes": len(raw)}) + "\n")

entries = []
for lang, scale in [("C++", 1.0), ("Rust", 0.35)]:
    for year in range(2015, 2026):
        total = int((180_000 + (year - 2015) * 21_000) * scale)
        starred = int(total * 0.045)
        base = f"language:{lang} created:{year}-01-01..{year}-12-31"
        for q, n in [(base, total), (f"{base} stars:>=10", starred)]:
            entries.append((q_url(q), {"total_count": n, "incomplete_results": False, "items": []}))
write(entries)
