"""The sweeps that chose the training settings, each trained from scratch and scored on a validation split (never the test split).

- `--grid cpu` (the default) chose the `cpu` protocol: fastai's learning-rate finder, then peak rate x schedule, image size
  and epoch cap, on BUSI. Notebook 12 shows the table.
- `--grid quick` chose the `quick` budget of `radiomicnet-paper`: RadiomicNet full on the synthetic data set, image size x
  epochs x peak rate x batch size, over two seeds (its validation split has 15 images). Notebook 28 shows the table.

    python bench/protocol_sweep.py                 # every step not yet done (finished runs are reused, a killed one resumes)
    python bench/protocol_sweep.py --only lr_find  # just the learning-rate finder
    python bench/protocol_sweep.py --grid quick    # the quick budget's sweep

Writes under results/busi/sweep/ (results/synthetic/sweep/ for `quick`): lr_find.csv and lr_find.png, one folder per
setting and seed (history.csv, curves.png, summary.json; checkpoints stay out of git), and sweep.csv with one row per run.
Run it alone on the machine when the wall times matter: every row records its wall time.
"""
import json, os, platform, sys, time
from pathlib import Path
import numpy as np, pandas as pd, torch
import matplotlib; matplotlib.use("Agg"); import matplotlib.pyplot as plt
from fastcore.script import call_parse
from radiomicnet.core import PROJECT_DIR, atomic_path, git_commit
from radiomicnet.data.loaders import get_dls
from radiomicnet.train.learner import build_learner, train_run

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
    # 3. the `long` protocol (issue 22): the cpu protocol (one_cycle, peak 1e-2, 128 px, 20 epochs) trained longer and larger;
    # `long` is the best validation DSC whose BUSI run fits in 60 minutes on 2 cores
    "cpu-e40":         dict(lr=1e-2, epochs=40),
    "cpu-e60":         dict(lr=1e-2, epochs=60),
    "cpu-192-e40":     dict(lr=1e-2, img_size=192, epochs=40),
    "cpu-256-e40":     dict(lr=1e-2, img_size=256, epochs=40),  # run only if the probe's s/epoch x 40 fits 55 minutes
    "probe-256-e2":    dict(lr=1e-2, img_size=256, epochs=2),   # timing only: its s/epoch x 40 says whether 256 px x 40 fits 60 min
}
# the quick budget's sweep: the base is the budget as it stood (cpu protocol: one_cycle, peak 1e-2; 64 px, 20 epochs)
QUICK_BASE = dict(schedule="one_cycle", lr=1e-2, img_size=64, epochs=20, bs=8)
QUICK_GRID = {
    "q64-e20":         dict(),
    "q64-e20-lr3e-3":  dict(lr=3e-3),
    "q64-e20-bs4":     dict(bs=4),
    "q96-e12":         dict(img_size=96, epochs=12),
    "q96-e20":         dict(img_size=96, epochs=20),
    "q96-e16":         dict(img_size=96, epochs=16),  # added after the rows above: 96 px helps seed 0, and 20 epochs may not fit 30 min
}
SWEEPS = dict(cpu=("busi", BASE, GRID, (0,)), quick=("synthetic", QUICK_BASE, QUICK_GRID, (0, 1)))

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
                bs=cfg["bs"], seed=cfg["seed"], best_valid_dice=round(summary["valid_dice"], 4), best_epoch=summary["best_epoch"] + 1,  # counted from 1
                train_minutes=round(summary["train_seconds_total"]/60, 1), s_per_epoch=round(summary["train_seconds_total"]/summary["epochs_run"], 1),
                git_commit=summary["git_commit"], machine=f"{summary['device_name']}, {summary['cpu_count']} cores",
                load_avg=summary.get("load_average_15min"))

@call_parse
def main(only:str=None,      # Comma-separated steps: lr_find and/or settings of the grid (default: all)
         data_dir:str=None,  # Folder holding BUSI/ (default: $RADIOMICNET_DATA)
         seed:int=None,      # Seed of every sweep run (default: the grid's seeds, 0 for cpu, 0 and 1 for quick)
         root:str=None,      # Output folder (default: results/<dataset>/sweep of the project)
         grid:str="cpu",     # cpu (the cpu protocol, on BUSI) | quick (the quick budget, on synthetic data)
        ):
    "Run a sweep: the cpu protocol's on BUSI, or the quick budget's on synthetic data; every run scored on the validation split."
    dataset, base, settings_of, seeds = SWEEPS[grid]
    seeds = seeds if seed is None else (seed,)
    root = Path(root or PROJECT_DIR/"results"/dataset/"sweep")
    steps = only.split(",") if only else ["lr_find", *settings_of]
    if grid == "cpu" and "lr_find" in steps and not (root/"lr_find.csv").exists(): lr_find(root, data_dir, seeds[0])
    rows = []
    for name in settings_of:
        for s in seeds:
            folder = root/(name if grid == "cpu" else f"{name}-s{s}")  # the cpu sweep's folders predate its seeds
            done = folder/"summary.json"
            if name not in steps:  # a step not asked for: its row, when it was run before (train_run reuses a finished one)
                if done.exists(): rows.append(sweep_row(name, json.loads(done.read_text())))
                continue
            settings = {**base, **settings_of[name]}
            summary = train_run(dataset, data_dir, seed=s, out_dir=folder, protocol="cpu", patience=None, time_budget=None,
                                encoder_lr=settings["lr"], command=f"python bench/protocol_sweep.py --grid {grid} --only {name}", **settings)
            rows.append(sweep_row(name, summary))
            print(rows[-1], flush=True)
            with atomic_path(root/"sweep.csv") as tmp: pd.DataFrame(rows).to_csv(tmp, index=False)
