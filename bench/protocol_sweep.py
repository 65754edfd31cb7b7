"""The sweep that chose the `cpu` protocol: fastai's learning-rate finder, then peak rate x schedule, image size and
epoch cap, each trained from scratch on BUSI's training split and scored on its validation split (never the test split).

    python bench/protocol_sweep.py                 # every step not yet done (finished runs are reused, a killed one resumes)
    python bench/protocol_sweep.py --only lr_find  # just the learning-rate finder

Writes under results/busi/sweep/: lr_find.csv and lr_find.png, one folder per setting (history.csv, curves.png,
summary.json; checkpoints stay out of git), and sweep.csv with one row per setting. Notebook 05 shows the table.
Run it alone on the machine: every row records its wall time, which is one of the things being measured.
"""
import json, os, platform, sys, time
from pathlib import Path
import numpy as np, pandas as pd, torch
import matplotlib; matplotlib.use("Agg"); import matplotlib.pyplot as plt
from fastcore.script import call_parse
from radiomicnet.core import PROJECT_DIR, atomic_path, git_commit
from radiomicnet.data import get_dls
from radiomicnet.train import build_learner, train_run

# name: settings that differ from the base (one_cycle, peak 1e-3, 128 px, 20 epochs, no early stopping)
BASE = dict(schedule="one_cycle", lr=1e-3, img_size=128, epochs=20)
GRID = {
    # 1. peak rate x schedule (lr_find: the loss falls fastest between 1e-3 and 1e-1)
    "cosine-1e-4":     dict(schedule="cosine", lr=1e-4),   # the paper's rate and schedule, from scratch
    "cosine-1e-3":     dict(schedule="cosine"),
    "one_cycle-1e-3":  dict(),
    "one_cycle-3e-3":  dict(lr=3e-3),
    "one_cycle-1e-2":  dict(lr=1e-2),
    # 2. image size and epoch cap, at the best rate and schedule of step 1 (one_cycle, 3e-3: within 0.01 of 1e-2, and
    # the lower of the two, further from where lr_find's loss turns up)
    "size-160":        dict(lr=3e-3, img_size=160),
    "epochs-30":       dict(lr=3e-3, epochs=30),
}

def lr_find(root:Path, data_dir=None, seed:int=0):
    "fastai's LR range test on BUSI at 128 px, saved as CSV and PNG."
    torch.manual_seed(seed)
    dls = get_dls("busi", data_dir=data_dir, img_size=128, bs=8, seed=seed)
    learn = build_learner(dls, path=root)
    t0 = time.time()
    sugg = learn.lr_find(show_plot=False, suggest_funcs=())
    rec = learn.recorder
    table = pd.DataFrame(dict(lr=[float(x) for x in rec.lrs], loss=[float(x) for x in rec.losses]))
    with atomic_path(root/"lr_find.csv") as tmp: table.to_csv(tmp, index=False)
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot(table.lr, table.loss); ax.set(xscale="log", xlabel="learning rate", ylabel="smoothed training loss",
                                          title="lr_find: BUSI 128 px, from scratch")
    fig.tight_layout()
    with atomic_path(root/"lr_find.png") as tmp: fig.savefig(tmp, dpi=100, format="png")
    print(f"lr_find: {len(table)} steps in {time.time()-t0:.0f} s; lowest smoothed loss at lr {table.lr[table.loss.idxmin()]:.2g}")

def sweep_row(name:str, summary:dict)->dict:
    cfg = summary["config"]
    return dict(setting=name, schedule=cfg["schedule"], peak_lr=cfg["lr"], img_size=cfg["img_size"], epochs=cfg["epochs"],
                seed=cfg["seed"], best_valid_dice=round(summary["valid_dice"], 4), best_epoch=summary["best_epoch"] + 1,  # counted from 1
                train_minutes=round(summary["train_seconds_total"]/60, 1), s_per_epoch=round(summary["train_seconds_total"]/summary["epochs_run"], 1),
                git_commit=summary["git_commit"], machine=f"{summary['device_name']}, {summary['cpu_count']} cores")

@call_parse
def main(only:str=None,      # Comma-separated steps: lr_find and/or settings of GRID (default: all)
         data_dir:str=None,  # Folder holding BUSI/ (default: $RADIOMICNET_DATA)
         seed:int=0,         # Seed of every sweep run
         root:str=None,      # Output folder (default: results/busi/sweep of the project)
        ):
    "Run the cpu-protocol sweep on BUSI's validation split."
    root = Path(root or PROJECT_DIR/"results"/"busi"/"sweep")
    steps = only.split(",") if only else ["lr_find", *GRID]
    if "lr_find" in steps and not (root/"lr_find.csv").exists(): lr_find(root, data_dir, seed)
    rows = []
    for name in GRID:
        done = root/name/"summary.json"
        if name not in steps:  # a step not asked for: its row, when it was run before
            if done.exists(): rows.append(sweep_row(name, json.loads(done.read_text())))
            continue
        settings = {**BASE, **GRID[name]}
        summary = train_run("busi", data_dir, seed=seed, out_dir=root/name, protocol="cpu", patience=None, time_budget=None,
                            encoder_lr=settings["lr"], command=f"python bench/protocol_sweep.py --only {name}", **settings)
        rows.append(sweep_row(name, summary))
        print(rows[-1], flush=True)
        with atomic_path(root/"sweep.csv") as tmp: pd.DataFrame(rows).to_csv(tmp, index=False)
