#!/usr/bin/env python3
"""Writes the recorded GitHub answers `boost-usage` replays in the demo
(`--from-archive --archive-dir examples/github/boost-usage --since 2026-01-01
--until 2026-01-02`): repository search, code search, contents and trees in
GitHub's documented shapes, as bdc-http's raw archive (index.jsonl + gzip
bodies). Repositories and files are invented for the demo."""
import base64, gzip, json, os, urllib.parse

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "boost-usage")
BASE = "https://api.github.com"
SINCE, UNTIL = "2026-01-01", "2026-01-02"

REPOS = {
    "acme/robotics": dict(stars=320, created="2019-06-01T10:00:00Z", pushed="2026-01-01T18:20:00Z", files={
        "src/main.cpp": "#include <boost/asio.hpp>\n#include <boost/beast/http.hpp>\n#include <boost/program_options.hpp>\nint main() {}\n",
        "src/net/session.hpp": "#pragma once\n#include <boost/asio/ip/tcp.hpp>\n#include <boost/json.hpp>\n",
        "CMakeLists.txt": "cmake_minimum_required(VERSION 3.20)\nproject(robotics)\nfind_package(Boost 1.83 REQUIRED COMPONENTS program_options json)\n",
    }),
    "zed/engine": dict(stars=1200, created="2018-09-12T09:00:00Z", pushed="2026-01-02T07:45:00Z", files={
        "src/engine.cpp": "#include <boost/container/flat_map.hpp>\n#include <boost/smart_ptr/intrusive_ptr.hpp>\n#include <boost/noncopyable.hpp>\n",
        "external/boost/version.hpp": "#ifndef BOOST_VERSION_HPP\n#define BOOST_VERSION 107800\n#define BOOST_LIB_VERSION \"1_78\"\n#endif\n",
        "external/boost/container/flat_map.hpp": "#include <boost/container/detail/config_begin.hpp>\n",
    }),
    "lin/algo": dict(stars=45, created="2021-03-03T12:00:00Z", pushed="2026-01-01T11:00:00Z", files={
        "algo.cpp": "#include <vector>\nint main() {}\n",
    }),
    "boostorg/json": dict(stars=430, created="2019-09-20T00:00:00Z", pushed="2026-01-02T01:00:00Z", files={
        "include/boost/json.hpp": "#include <boost/json/value.hpp>\n",
    }),
    "qua/finance": dict(stars=88, created="2020-11-11T11:11:11Z", pushed="2025-06-30T10:00:00Z", files={
        "pricing/bond.cpp": "#include <boost/multiprecision/cpp_int.hpp>\n#include <boost/date_time/posix_time/posix_time.hpp>\n#include <boost/foo_legacy.hpp>\n",
        "conanfile.txt": "[requires]\nboost/1.82.0\n[generators]\nCMakeDeps\n",
    }),
}

def enc(q):
    return urllib.parse.quote_plus(q, safe="*")

def repo_json(name):
    r = REPOS[name]
    return {"id": abs(hash(name)) % 10**7, "full_name": name, "name": name.split("/")[1],
            "private": False, "fork": False, "stargazers_count": r["stars"], "language": "C++",
            "created_at": r["created"], "pushed_at": r["pushed"], "default_branch": "main"}

def sha(text):
    import hashlib
    return hashlib.sha1(text.encode()).hexdigest()

entries = []
def add(path, body):
    entries.append((BASE + path, body))

def search(field, a, b, names):
    q = f"language:C++ stars:>10 {field}:{a}..{b}"
    add(f"/search/repositories?q={enc(q)}&per_page=100&page=1",
        {"total_count": len(names), "incomplete_results": False, "items": [repo_json(n) for n in names]})

def code(names):
    q = '"#include <boost/"' + "".join(f" repo:{n}" for n in names)
    items = []
    for n in names:
        for p, t in REPOS[n]["files"].items():
            if "#include <boost/" in t:
                items.append({"name": p.rsplit("/", 1)[-1], "path": p, "sha": sha(t), "url": "", "git_url": "",
                              "html_url": f"https://github.com/{n}/blob/main/{p}", "score": 1.0,
                              "repository": {"id": 1, "full_name": n, "private": False},
                              "text_matches": [{"object_type": "FileContent", "property": "content",
                                                "fragment": t[:60], "matches": []}]})
    add(f"/search/code?q={enc(q)}&per_page=100&page=1",
        {"total_count": len(items), "incomplete_results": False, "items": items})

def contents(n, p):
    t = REPOS[n]["files"][p]
    b64 = base64.b64encode(t.encode()).decode()
    wrapped = "\n".join(b64[i:i+60] for i in range(0, len(b64), 60)) + "\n"
    add(f"/repos/{n}/contents/{urllib.parse.quote(p, safe='/-._~')}",
        {"type": "file", "encoding": "base64", "size": len(t), "name": p.rsplit("/", 1)[-1], "path": p,
         "content": wrapped, "sha": sha(t), "url": "", "git_url": None, "html_url": None,
         "download_url": None, "_links": {}})

def tree(n):
    add(f"/repos/{n}/git/trees/HEAD?recursive=1",
        {"sha": "0" * 40, "url": "", "truncated": False,
         "tree": [{"path": p, "mode": "100644", "type": "blob", "sha": sha(t), "size": len(t)}
                  for p, t in REPOS[n]["files"].items()]})

# monitor_content: pushed in the window.
pushed = ["acme/robotics", "boostorg/json", "lin/algo", "zed/engine"]
search("pushed", SINCE, UNTIL, pushed)
code(["acme/robotics", "lin/algo", "zed/engine"])
for p in ["src/main.cpp", "src/net/session.hpp", "CMakeLists.txt"]:
    contents("acme/robotics", p)
tree("acme/robotics")
contents("zed/engine", "src/engine.cpp")
tree("zed/engine")
contents("zed/engine", "external/boost/version.hpp")
# monitor_stars: created since 2018-04-01; only qua/finance is new.
search("created", "2018-04-01", UNTIL, sorted(REPOS))
code(["qua/finance"])
contents("qua/finance", "pricing/bond.cpp")
tree("qua/finance")
contents("qua/finance", "conanfile.txt")

os.makedirs(os.path.join(OUT, "bodies"), exist_ok=True)
with open(os.path.join(OUT, "index.jsonl"), "w") as idx:
    for n, (url, body) in enumerate(entries):
        raw = json.dumps(body).encode()
        name = f"bodies/{n:04d}.gz"
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(gzip.compress(raw, mtime=0))
        idx.write(json.dumps({"url": url, "status": 200,
            "headers": {"content-type": "application/json; charset=utf-8"},
            "fetched_at": "2026-01-02T12:00:00Z", "file": name, "bytes": len(raw)}) + "\n")
