#!/usr/bin/env python3
"""Finds import circles among the files of a crate's src/ (issue #19).

Every `crate::a::b`, `self::b` and `super::c` path in a file (in `use`
lines and in code, test modules included) is an edge from that file to
the file that defines the longest matching module (`#[path]` modules are
their includer's children). A strongly connected group of files is
allowed when it is a parent module and its children (one member is an
ancestor of all others); any other is a circle, printed with its edges.

Usage: scripts/import-cycles.py [CRATE_DIR ...]
(default: dataplane control). Exit status 1 when a circle is found.
"""

import os
import re
import sys

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
PATH_RE = re.compile(r"\b(crate|super|self)((?:\s*::\s*(?:" + IDENT + r"|\{))+)")
PATH_ATTR_RE = re.compile(r'#\[path\s*=\s*"([^"]+)"\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(' + IDENT + r")\s*;")
MOD_RE = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(" + IDENT + r")\s*\{")


def module_files(src):
    """Maps module paths (tuples) to the files that define them."""
    mods = {}
    for root, _dirs, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(root, f), src)
            parts = rel[:-3].split(os.sep)
            if parts in (["lib"], ["main"]):
                parts = []
            elif parts[-1] == "mod":
                parts = parts[:-1]
            mods[tuple(parts)] = os.path.join(src, rel)
    # `#[path = "x.rs"] mod y;` makes x.rs the child y of its includer.
    for mod, path in list(mods.items()):
        text = open(path, encoding="utf-8").read()
        for m in PATH_ATTR_RE.finditer(text):
            target = os.path.normpath(os.path.join(os.path.dirname(path), m.group(1)))
            for other, opath in list(mods.items()):
                if os.path.normpath(opath) == target:
                    del mods[other]
            mods[mod + (m.group(2),)] = target
    return mods


def strip(line):
    """The line without its comment and string literals (roughly)."""
    line = re.sub(r'"(?:\\.|[^"\\])*"', '""', line)
    return line.split("//", 1)[0]


def edges_of(path, module, mods):
    """The modules that file `path` (module `module`) names."""
    text = open(path, encoding="utf-8").read()
    # Join brace lists of `use` statements onto one line.
    lines = [strip(l) for l in text.splitlines()]
    joined = []
    buf = ""
    for l in lines:
        buf = (buf + " " + l) if buf else l
        if buf.lstrip().startswith(("use ", "pub use ", "pub(crate) use ")) and ";" not in buf:
            continue
        joined.append(buf)
        buf = ""
    targets = set()
    stack = []  # (inline module name, brace depth at its opening)
    depth = 0
    for l in joined:
        m = MOD_RE.match(l)
        here = module + tuple(name for name, _ in stack)
        if m:
            stack.append((m.group(1), depth))
        for pm in PATH_RE.finditer(l):
            kind, rest = pm.group(1), pm.group(2)
            # Brace groups: `use crate::{a, b::c}` names each.
            groups = []
            brace = re.match(r"\s*::\s*\{([^}]*)\}?", rest)
            after = l[pm.end():]
            if brace or rest.rstrip().endswith("{"):
                inner = after.split("}", 1)[0] if not brace else brace.group(1)
                prefix = [s for s in re.split(r"\s*::\s*", rest.strip()) if s and s != "{"]
                for item in inner.split(","):
                    item = item.strip()
                    if item:
                        groups.append(prefix + [s.strip() for s in item.split("::") if s.strip()])
            else:
                groups.append([s for s in re.split(r"\s*::\s*", rest.strip()) if s])
            for segs in groups:
                if kind == "crate":
                    base = ()
                elif kind == "self":
                    base = here
                else:
                    base = here[:-1]
                    while segs and segs[0] == "super":
                        base = base[:-1]
                        segs = segs[1:]
                full = base + tuple(segs)
                for n in range(len(full), -1, -1):
                    if full[:n] in mods:
                        targets.add(full[:n])
                        break
        depth += l.count("{") - l.count("}")
        while stack and depth <= stack[-1][1]:
            stack.pop()
    targets.discard(module)
    return targets


def family(comp):
    """The group is a parent module and its children: one member is an
    ancestor of every other."""
    return any(all(m[: len(p)] == p for m in comp) for p in comp)


def sccs(graph):
    """Tarjan's strongly connected components."""
    index, low, on, st, out = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        st.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = st.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(comp)

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    return out


def check(crate):
    src = os.path.join(crate, "src")
    mods = module_files(src)
    graph = {}
    for mod, path in mods.items():
        graph[mod] = edges_of(path, mod, mods)
    bad = [c for c in sccs(graph) if len(c) > 1 and not family(c)]
    name = lambda m: os.path.relpath(mods[m], crate)
    for comp in bad:
        members = sorted(comp)
        print(f"{crate}: import circle among {len(members)} files:")
        for m in members:
            outs = sorted(name(t) for t in graph[m] if t in comp)
            print(f"  {name(m)} -> {', '.join(outs)}")
    if not bad:
        print(f"{crate}: no import circle among {len(mods)} files")
    return not bad


def main():
    crates = sys.argv[1:] or ["dataplane", "control"]
    ok = all([check(c) for c in crates])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
