#!/usr/bin/env python3
"""Fail when the modules of a crate depend on each other in a circle.

Reads every `crate::…` and `super::…` path in the crate's sources and builds two graphs:
one between the top-level modules (`chat`, `realtime`, `app`, …) and, inside each folder
module, one between sibling submodules (`realtime::hub` → `realtime::outbound`). A parent's
`mod.rs` is left out of its children's graph: a child naming `super::Thing` and the parent
declaring the child is how Rust nests, not a circle. Prints each circle and exits 1.

    scripts/module-cycles.py [host/src]
"""
import os
import re
import sys

ROOT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "host", "src")

def module_of(path):
    rel = os.path.relpath(path, ROOT)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib", "main"):
        rel = rel[:-1]
    return rel

def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)

def brace_items(text, start):
    """The comma-separated items of the `{…}` opening at text[start], as strings."""
    depth, items, cur = 0, [], ""
    for ch in text[start:]:
        if ch == "{":
            depth += 1
            if depth == 1:
                continue
        elif ch == "}":
            depth -= 1
            if depth == 0:
                items.append(cur)
                return items
        if ch == "," and depth == 1:
            items.append(cur)
            cur = ""
        else:
            cur += ch
    return items

def paths(text):
    """Every path after `crate::` or `super::`, expanded over `{…}` groups."""
    for m in re.finditer(r"\b(crate|super)((?:::super)*)::", text):
        prefix = [m.group(1)] + ["super"] * m.group(2).count("super")
        rest = text[m.end():]
        if rest.startswith("{"):
            for item in brace_items(text, m.end()):
                name = re.match(r"\s*(\w+)", item)
                if name:
                    yield prefix, name.group(1)
        else:
            name = re.match(r"(\w+)", rest)
            if name:
                yield prefix, name.group(1)

def edges():
    top, sub = {}, {}
    for dirpath, _, files in os.walk(ROOT):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(dirpath, f)
            module = module_of(path)
            if not module:
                continue
            text = strip_comments(open(path, encoding="utf-8").read())
            for prefix, name in paths(text):
                if prefix[0] == "crate":
                    target = [name]
                else:
                    # `super` from a file `a/b.rs` (module a::b) is `a`; from `a/b/mod.rs` it is `a` too.
                    base = module[: len(module) - len(prefix)]
                    target = base + [name]
                if target[0] != module[0]:
                    top.setdefault(module[0], set()).add(target[0])
                elif len(module) >= 2 and len(target) >= 2 and target[1] != module[1]:
                    if is_submodule(target[:2]):
                        key = module[0]
                        sub.setdefault(key, {}).setdefault(module[1], set()).add(target[1])
    return top, sub

def is_submodule(module):
    base = os.path.join(ROOT, *module)
    return os.path.exists(base + ".rs") or os.path.exists(os.path.join(base, "mod.rs"))

def cycles(graph):
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]
    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out

def main():
    top, sub = edges()
    found = []
    for comp in cycles(top):
        found.append(("crate", comp, top))
    for parent, graph in sorted(sub.items()):
        for comp in cycles(graph):
            found.append((parent, comp, graph))
    for scope, comp, graph in found:
        print(f"cycle in {scope}: {' ↔ '.join(comp)}")
        for a in comp:
            for b in sorted(graph.get(a, ())):
                if b in comp:
                    print(f"    {a} → {b}")
    if found:
        sys.exit(1)
    print(f"no module cycles in {os.path.normpath(ROOT)}")

if __name__ == "__main__":
    main()
