#!/usr/bin/env python
"""What the fast path costs in accuracy: each checkpoint scored on its data set's test split twice, through the plain path
(`Predictor`'s torch backend, as `radiomicnet-predict` runs it) and through `--fast` (the int8 backend, calibrated on the checkpoint's own
training images), image by image at native resolution, end to end (features computed per image, as a user's call does).

Writes bench/results/fast-accuracy.csv (older rows kept), one row per checkpoint: mean DSC of each path, the paired difference
(fast - plain) with its two-sided Wilcoxon p, the share of pixels whose masks agree, and ms per image of each path; prints
whether the DSC drop stays within the target (0.005).

Checkpoints are not in git. Without --checkpoint the bench takes each data set's committed protocol run
(results/<dataset>/cpu/runs/radiomicnet-full-s0/best.pt, as `radiomicnet-paper --protocol cpu` writes it) when it is there,
and otherwise trains it first with the same protocol, `radiomicnet-run --protocol cpu --seeds 0`, into runs/fast-accuracy/
(about 30-45 minutes per data set on 2 cores).

    python bench/fast_accuracy.py                                   # BUSI and Kvasir-SEG, the committed protocol
    python bench/fast_accuracy.py --checkpoint runs/x/best.pt       # one checkpoint, its own data set's test split
"""
import os
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see bench/features.py: busy-waiting threads crawl on a shared machine
import subprocess, sys, time
from datetime import datetime, timezone
from pathlib import Path
import numpy as np
import torch
from fastcore.script import call_parse
from fastprogress.fastprogress import progress_bar
from radiomicnet.core import PROJECT_DIR, RadiomicNetError, cli_errors, portable_path
from radiomicnet.data.datasets import load_split
from radiomicnet.eval.evaluate import run_config
from radiomicnet.eval.scores import paired_wilcoxon, segmentation_metrics
from radiomicnet.infer.predictor import Predictor
from common import MACHINE_COLUMNS, RESULTS_DIR, append_rows, load_average, machine_row, warn_if_unreliable

TARGET_DROP = 0.005  # largest mean-DSC drop of --fast allowed on each test set
COLUMNS = ["run_id", *MACHINE_COLUMNS, "dataset", "checkpoint", "split", "n_images", "dsc_plain", "dsc_fast", "dsc_diff", "wilcoxon_p",
           "pixel_agreement", "ms_per_image_plain", "ms_per_image_fast", "target_drop", "target_met"]

def committed_checkpoint(dataset:str, results:Path)->Path:
    "The committed protocol's RadiomicNet full seed-0 run of a data set; trained first with the same protocol when its checkpoint is not here."
    run = Path(results)/dataset/"cpu"/"runs"/"radiomicnet-full-s0"
    if (run/"best.pt").is_file(): return run/"best.pt"
    out = PROJECT_DIR/"runs"/"fast-accuracy"/f"{dataset}-radiomicnet-full-cpu-s0"  # runs/ is not committed
    if not (out/"best.pt").is_file():
        cmd = ["radiomicnet-run", "--dataset", dataset, "--protocol", "cpu", "--seeds", "0", "--out", str(out)]
        print(f"{run/'best.pt'} is not here (checkpoints are not in git): training it with {' '.join(cmd)}", flush=True)
        subprocess.run(cmd, check=True)
    return out/"best.pt"

def score(net, samples:list)->tuple:
    "(per-image DSC table, masks at native size, ms per image) of one path over the samples."
    rows, masks, seconds = [], [], 0.
    for s in progress_bar(samples, leave=False):
        image, truth = s.load()
        t0 = time.perf_counter(); prob = net.predict_proba(image); seconds += time.perf_counter() - t0
        rows.append(segmentation_metrics(prob[None], truth[None] > 0, ids=[s.id])); masks.append(prob > 0.5)
    import pandas as pd
    return pd.concat(rows, ignore_index=True), masks, 1000 * seconds / len(samples)

def compare(checkpoint:Path, data_dir, n_images:int|None)->dict:
    "The row of one checkpoint: plain against fast on its test split."
    plain, fast = Predictor.from_checkpoint(checkpoint, "torch", "cpu"), Predictor.from_checkpoint(checkpoint, "int8", data_dir=data_dir)
    config = run_config(plain)
    samples = load_split(config["dataset"], "test", data_dir, subset=n_images or config.get("subset"), size=config["img_size"], seed=config.get("seed") or 0)
    (t_plain, m_plain, ms_plain), (t_fast, m_fast, ms_fast) = score(plain, samples), score(fast, samples)
    test = paired_wilcoxon(t_fast, t_plain)
    agreement = float(np.mean([(a == b).mean() for a, b in zip(m_plain, m_fast)]))
    return dict(dataset=config["dataset"], checkpoint=portable_path(checkpoint), split="test", n_images=len(samples),
                dsc_plain=round(test["mean_b"], 5), dsc_fast=round(test["mean_a"], 5), dsc_diff=round(test["mean_diff"], 5),
                wilcoxon_p=round(test["p_value"], 5), pixel_agreement=round(agreement, 6), ms_per_image_plain=round(ms_plain, 2),
                ms_per_image_fast=round(ms_fast, 2), target_drop=TARGET_DROP, target_met=-test["mean_diff"] <= TARGET_DROP)

@call_parse
@cli_errors
def main(checkpoint:str=None,   # Comma-separated checkpoints (default: the committed protocol's run of each of --datasets)
         datasets:str="busi,kvasir-seg", # Data sets whose committed protocol run is used when no --checkpoint is given
         results:str=None,      # Results root holding the committed runs (default: the project's results/)
         data_dir:str=None,     # Folder holding BUSI/ and Kvasir-SEG/ (default: $RADIOMICNET_DATA)
         n_images:int=None,     # Only the first N test images (a smoke run; default: the whole test split)
         out:str=None,          # CSV (default: bench/results/fast-accuracy.csv)
        ):
    "Score each checkpoint plain and --fast on its test split and append the comparison to the CSV."
    checkpoints = ([Path(c) for c in checkpoint.split(",")] if checkpoint else
                   [committed_checkpoint(d, Path(results) if results else PROJECT_DIR/"results") for d in datasets.split(",")])
    for c in checkpoints:
        if not c.is_file(): raise RadiomicNetError(f"{c}: checkpoint not found")
    run_id, before = datetime.now(timezone.utc).isoformat(timespec="seconds"), load_average()
    rows = []
    for c in checkpoints:
        print(f"scoring {c} plain and --fast ...", flush=True)
        rows.append(compare(c, data_dir, n_images))
        r = rows[-1]
        print(f"{r['dataset']}: DSC {r['dsc_plain']:.4f} plain, {r['dsc_fast']:.4f} fast (difference {r['dsc_diff']:+.4f}, Wilcoxon p {r['wilcoxon_p']:.3g}); "
              f"{100 * r['pixel_agreement']:.2f}% of the pixels agree; {r['ms_per_image_plain']:.1f} vs {r['ms_per_image_fast']:.1f} ms per image; "
              f"target: drop <= {TARGET_DROP}: {'met' if r['target_met'] else 'NOT met'}")
    after = load_average()
    machine = machine_row("cpu", before, after, torch.get_num_threads())
    path = Path(out or RESULTS_DIR/"fast-accuracy.csv")
    append_rows(path, [{**machine, **r, "run_id": run_id} for r in rows], COLUMNS)
    warn_if_unreliable(before, after, torch.get_num_threads())
    print(f"appended {len(rows)} rows to {path}")
