#!/usr/bin/env python
"""The package's shape, checked: every module's line count and its one concern (the first line of its docstring), the
longest export cell of every notebook, and every import that points backwards along the notebook order.

Limits (issue 34): no module over ~450 lines, no export cell over ~40 lines nor with more than one public definition
(fastai's rhythm: one definition, then its test), no import of a module whose notebook comes later. Imports inside a function (lazy: the CLI, the model registry) are listed apart, since they run only when called.
Exits with status 1 when a limit is broken, so that it can gate a change.

    python tools/structure_report.py
"""
import ast, json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PKG, NBS = ROOT/"radiomicnet", ROOT/"nbs"
MAX_MODULE_LINES, MAX_CELL_LINES = 450, 40

def module_notebook(path:Path)->str|None:
    "The notebook a generated module comes from (nbdev's 'File to edit' line), or None for a hand-kept file."
    m = re.search(r"File to edit: \.\./nbs/(\S+\.ipynb)", path.read_text())
    return m.group(1) if m else None

def concern(path:Path)->str:
    "The first line of the module's docstring."
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    return doc.strip().splitlines()[0] if doc.strip() else "(no docstring)"

def imports(path:Path)->tuple:
    "(top-level, inside functions): the radiomicnet modules the file imports."
    tree, top, lazy = ast.parse(path.read_text()), set(), set()
    def names(node):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolved against the importing module's package
                pkg = ".".join(("radiomicnet",) + path.relative_to(PKG).parent.parts[:len(path.relative_to(PKG).parent.parts) - node.level + 1])
                if not node.module: return {f"{pkg}.{a.name}" for a in node.names}
                return {f"{pkg}.{node.module}"}
            return {node.module} if (node.module or "").startswith("radiomicnet") else set()
        if isinstance(node, ast.Import): return {a.name for a in node.names if a.name.startswith("radiomicnet")}
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module" and node.args and isinstance(node.args[0], ast.Constant):
            return {node.args[0].value} if str(node.args[0].value).startswith("radiomicnet") else set()
        return set()
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)): top |= names(node)
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(fn): lazy |= names(node)
    for d in (top, lazy): d.discard("radiomicnet")
    return top, lazy

def export_sources(nb:Path)->list[str]:
    "The sources of the notebook's `#| export` cells."
    srcs = ["".join(c["source"]) for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code"]
    return [s for s in srcs if s.lstrip().startswith(("#| export", "#|export"))]

def longest_export_cell(srcs:list[str])->int:
    "Lines of the longest of a notebook's export cells (0 without one)."
    return max((len(s.splitlines()) for s in srcs), default=0)

def crowded_export_cells(srcs:list[str])->int:
    "How many of a notebook's export cells define more than one public function or class (private `_helpers` may sit with theirs)."
    n = 0
    for s in srcs:
        try: body = ast.parse(s).body
        except SyntaxError: continue
        n += sum(isinstance(d, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not d.name.startswith("_") for d in body) > 1
    return n

def main()->int:
    order = {p.name: i for i, p in enumerate(sorted(NBS.glob("*.ipynb")))}
    modules = {".".join(("radiomicnet",) + p.relative_to(PKG).with_suffix("").parts): p for p in sorted(PKG.rglob("*.py"))
               if p.stem not in ("__init__", "_modidx")}
    where = {m: module_notebook(p) for m, p in modules.items()}
    broken = 0
    print(f"{'module':32} {'lines':>5}  concern")
    for m, p in modules.items():
        n = len(p.read_text().splitlines()); broken += n > MAX_MODULE_LINES
        print(f"{m:32} {n:5}{' !' if n > MAX_MODULE_LINES else '  '} {concern(p)[:110]}")
    print(f"\n{'notebook':28} {'longest export cell':>20} {'cells with 2+ public definitions':>33}")
    for nb in sorted(NBS.glob("*.ipynb")):
        srcs = export_sources(nb)
        n, crowded = longest_export_cell(srcs), crowded_export_cells(srcs); broken += (n > MAX_CELL_LINES) + crowded
        print(f"{nb.name:28} {n:20}{' !' if n > MAX_CELL_LINES else '  '} {crowded:32}{' !' if crowded else ''}")
    print("\nimports pointing backwards along the notebook order (a module importing one whose notebook comes later):")
    found = False
    for m, p in modules.items():
        top, lazy = imports(p)
        for kind, targets in (("top level", top), ("lazy, inside a function", lazy)):
            for t in sorted(targets):
                if where.get(m) and where.get(t) and order[where[t]] > order[where[m]]:
                    found = True; broken += kind == "top level"
                    print(f"  {m} ({where[m]}) -> {t} ({where[t]}): {kind}")
    if not found: print("  none")
    print(f"\n{broken} limit(s) broken (modules <= {MAX_MODULE_LINES} lines, export cells <= {MAX_CELL_LINES} lines with one public definition each, no top-level backward import)")
    return 1 if broken else 0

if __name__ == "__main__": sys.exit(main())
