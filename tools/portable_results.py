"""Rewrite result files so that no machine path is left in them: every absolute path in a JSON or CSV file under
results/ becomes its `radiomicnet.core.portable_path` (relative to the project, from its `results/` folder on, or its
name alone). Only the matching text changes; a file without one is not touched, so running it again changes nothing.

    python tools/portable_results.py            # rewrite results/ of this checkout
    python tools/portable_results.py --check    # only list the files that still hold a machine path (exit 1 if any)
"""
from pathlib import Path
from fastcore.script import call_parse
from radiomicnet.core import MACHINE_PATH, PROJECT_DIR, atomic_path, portable_text

SUFFIXES = (".json", ".csv")

def result_files(root:Path)->list:
    "The JSON and CSV files under `root`."
    return sorted(p for p in Path(root).rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)

def rewrite(path:Path, check:bool=False)->bool:
    "Replace the machine paths of one file (atomically); True when it held any."
    text = path.read_text(encoding="utf-8")
    if not MACHINE_PATH.search(text): return False
    if not check:
        with atomic_path(path) as tmp: tmp.write_text(portable_text(text), encoding="utf-8")
    return True

@call_parse
def main(results:str=str(PROJECT_DIR/"results"), # The results folder to rewrite
         check:bool=False, # List the files holding machine paths, change nothing, exit 1 if any
        ):
    "Rewrite absolute paths in results/*.json and *.csv as paths relative to the project."
    changed = [p for p in result_files(Path(results)) if rewrite(p, check)]
    for p in changed: print(f"{'holds a machine path' if check else 'rewrote'}: {p.relative_to(Path(results).parent)}")
    print(f"{len(changed)} file(s) {'hold machine paths' if check else 'rewritten'}")
    if check and changed: raise SystemExit(1)
