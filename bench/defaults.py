#!/usr/bin/env python
"""Do the defaults learn, and how long do they take? The README's main job (`radiomicnet-run` with no arguments: synthetic data,
`cpu` protocol) and the quick budget of `radiomicnet-paper` (synthetic, all ten runs), timed on this machine, against the targets:

- main job: test DSC >= 0.85 within 5 minutes of wall time;
- quick budget: no model degenerate on the test set (predicting foreground everywhere or nowhere), RadiomicNet full
  DSC >= 0.8, all ten runs within 30 minutes.

Appends one row per check to bench/results/defaults.csv, with the commit and the machine (run it alone on the machine):

    python bench/defaults.py                               # both checks, in temporary folders
    python bench/defaults.py --only main
    python bench/defaults.py --only quick --results results   # time the quick budget while regenerating results/synthetic/quick
"""
import json, os, platform, shutil, subprocess, tempfile, time
from datetime import datetime, timezone
from pathlib import Path
import pandas as pd
from fastcore.script import call_parse
from radiomicnet.core import PROJECT_DIR, atomic_path, git_commit
from radiomicnet.study.runs import paper_runs, run_name

RESULTS = Path(__file__).resolve().parent/"results"/"defaults.csv"
TARGETS = dict(main=dict(minutes=5, dsc=0.85), quick=dict(minutes=30, dsc=0.8))

def machine()->dict:
    return dict(timestamp=datetime.now(timezone.utc).isoformat(timespec="seconds"), git_commit=git_commit(), platform=platform.platform(),
                cpu_count=os.cpu_count(), load_average_1min=round(os.getloadavg()[0], 2))

def predicted_fraction(per_image:pd.DataFrame)->float:
    "Share of the test pixels predicted foreground: 1.0 is a model that says foreground everywhere, 0.0 nowhere."
    t = per_image[["tp", "fp", "fn", "tn"]].sum()
    return float((t.tp + t.fp) / t.sum())

def check_main(folder:Path)->dict:
    "Run the README's main job in `folder` and time it."
    t0 = time.time()
    done = subprocess.run(["radiomicnet-run", "--out", str(folder/"run")], capture_output=True, text=True, cwd=folder)
    seconds = time.time() - t0
    if done.returncode: raise SystemExit(f"radiomicnet-run failed: {done.stderr.strip().splitlines()[-1]}")
    summary = json.loads((folder/"run"/"summary.json").read_text())
    ok = summary["test_dice"] >= TARGETS["main"]["dsc"] and seconds <= 60*TARGETS["main"]["minutes"]
    return dict(check="main job (radiomicnet-run)", wall_minutes=round(seconds/60, 2), test_dsc=round(summary["test_dice"], 4),
                epochs=summary["epochs_run"], degenerate_runs="", target=f"DSC >= {TARGETS['main']['dsc']} in <= {TARGETS['main']['minutes']} min",
                met=ok)

def check_quick(results:Path)->dict:
    "Run the quick budget on synthetic data into `results` and time it."
    t0 = time.time()
    done = subprocess.run(["radiomicnet-paper", "--dataset", "synthetic", "--protocol", "quick", "--out", str(results)],
                          capture_output=True, text=True)
    seconds = time.time() - t0
    if done.returncode: raise SystemExit(f"radiomicnet-paper failed: {done.stderr.strip().splitlines()[-1]}")
    root = results/"synthetic"/"quick"
    status = pd.read_csv(root/"status.csv")
    fractions = {}
    for model, variant in paper_runs():
        f = root/"runs"/run_name(model, variant, 0)/"per_image.csv"
        fractions[run_name(model, variant)] = predicted_fraction(pd.read_csv(f)) if f.exists() else float("nan")
    degenerate = [n for n, v in fractions.items() if not (0.001 < v < 0.999)]
    dsc = json.loads((root/"runs"/"radiomicnet-full-s0"/"metrics.json").read_text())["dsc_mean"]
    ok = (status.status == "done").all() and not degenerate and dsc >= TARGETS["quick"]["dsc"] and seconds <= 60*TARGETS["quick"]["minutes"]
    return dict(check="quick budget (radiomicnet-paper --budget quick, 10 runs)", wall_minutes=round(seconds/60, 2), test_dsc=round(dsc, 4),
                epochs=None, degenerate_runs=";".join(degenerate) or "none",
                target=f"no degenerate model; RadiomicNet DSC >= {TARGETS['quick']['dsc']}; <= {TARGETS['quick']['minutes']} min", met=ok)

@call_parse
def main(only:str=None,    # main | quick (default: both)
         results:str=None, # Results root for the quick budget (default: a temporary folder; `results` regenerates the committed one)
        ):
    "Time the main job and the quick budget and check them against their targets."
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        if only in (None, "main"): rows.append(check_main(Path(tmp)))
        if only in (None, "quick"):
            if not results: rows.append(check_quick(Path(tmp)/"results"))
            else:  # the committed folder is replaced only once the new one is complete: an interrupted run loses nothing
                final, staging = Path(results)/"synthetic"/"quick", Path(results)/".quick-staging"
                shutil.rmtree(staging, ignore_errors=True)  # a stale one from an interrupted run: timings start from nothing
                rows.append(check_quick(staging))
                shutil.rmtree(final, ignore_errors=True); (staging/"synthetic"/"quick").rename(final); shutil.rmtree(staging)
    for r in rows: print(f"{r['check']}: {r['wall_minutes']} min, test DSC {r['test_dsc']}, degenerate: {r['degenerate_runs'] or '-'}; "
                         f"target {r['target']}: {'met' if r['met'] else 'NOT met'}")
    old = pd.read_csv(RESULTS) if RESULTS.exists() else pd.DataFrame()
    new = pd.DataFrame([dict(machine(), **r) for r in rows])
    with atomic_path(RESULTS) as tmp: pd.concat([old, new], ignore_index=True).to_csv(tmp, index=False)
