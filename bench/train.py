#!/usr/bin/env python
"""Training throughput of `radiomicnet-run`'s Learner: images per second on BUSI at 128 and 256 px, batch 8, and the share of
each step's time spent waiting for the next batch (loading, resizing, augmenting, collating).

Before timing, every training image is resized once (the in-memory cache of `radiomicnet.data.loaders.resized_pair`) and the radiomics
features are cached (`get_dls` does that), so what is left of the data time is fastai's batch assembly and augmentation — the
target is at most 10% of the step time on the CPU. A callback measures, per batch, the time from the end of the previous step to
the start of this one (waiting for data) and from there to the end of its step (forward, loss, backward, optimiser).

Appends one row per size to bench/results/train.csv with the machine and its load (bench/common.py):

    python bench/train.py                      # BUSI at 128 and 256 px, 30 steps each after 3 warm-up steps
    python bench/train.py --steps 3 --sizes 64 --dataset synthetic   # a smoke run
"""
import os
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see bench/features.py
import time
from pathlib import Path
import numpy as np
import torch
from fastai.callback.core import Callback, CancelFitException
from fastcore.script import call_parse
from radiomicnet.core import DataError, cli_errors, default_device
from radiomicnet.data.loaders import get_dls, resized_pair
from radiomicnet.train.learner import build_learner
from common import MACHINE_COLUMNS, RESULTS_DIR, append_rows, load_average, machine_row, warn_if_unreliable

RESULTS = RESULTS_DIR/"train.csv"
COLUMNS = [*MACHINE_COLUMNS, "dataset", "size_px", "bs", "warmup_steps", "steps", "fp16", "images_per_s", "step_ms", "data_wait_ms",
           "data_wait_share", "target_met", "note"]
TARGET_DATA_SHARE = 0.10

class StepTimer(Callback):
    "Per training batch: seconds waiting for it (previous step's end to this batch) and seconds of its step; stops after `warmup + steps`."
    order = 100  # after every other callback's before_batch: the batch is in hand
    def __init__(self, warmup:int, steps:int): self.warmup, self.steps, self.waits, self.steps_s = warmup, steps, [], []
    def before_train(self): self.t_end = time.perf_counter()
    def before_batch(self):
        if self.training: self.t_start = time.perf_counter(); self.waits.append(self.t_start - self.t_end)
    def after_batch(self):
        if not self.training: return
        if self.device_sync: self.device_sync()
        self.t_end = time.perf_counter(); self.steps_s.append(self.t_end - self.t_start)
        if len(self.steps_s) >= self.warmup + self.steps: raise CancelFitException()
    device_sync = None

def measure(dataset:str, size:int, bs:int, warmup:int, steps:int, device, fp16:bool, data_dir, num_workers:int)->dict:
    "Throughput and data-wait share of `steps` training steps at `size` px after `warmup` steps."
    dls = get_dls(dataset, data_dir=data_dir, img_size=size, bs=bs, seed=0, num_workers=num_workers, device=device)
    for s in dls.samples["train"]: resized_pair(s, size)           # images pre-resized (the features were cached by get_dls)
    learn = build_learner(dls, lr=1e-3)
    if fp16: learn.to_fp16()
    timer = StepTimer(warmup, steps)
    if device.type == "cuda": timer.device_sync = torch.cuda.synchronize
    n_batches = len(dls.train)
    with learn.no_logging(), learn.no_bar():
        learn.fit(-(-(warmup + steps) // n_batches), lr=1e-3, cbs=timer)   # enough epochs for the steps; the timer stops the fit
    waits, step_s = np.array(timer.waits[warmup:]), np.array(timer.steps_s[warmup:])
    if not len(step_s): raise DataError(f"{dataset}: no timed steps (warm-up {warmup} >= the {len(timer.steps_s)} steps run)")
    total = waits.sum() + step_s.sum()
    share = waits.sum() / total
    return dict(dataset=dataset, size_px=size, bs=bs, warmup_steps=warmup, steps=len(step_s), fp16=fp16,
                images_per_s=round(bs * len(step_s) / total, 2), step_ms=round(1e3 * step_s.mean(), 2), data_wait_ms=round(1e3 * waits.mean(), 2),
                data_wait_share=round(share, 4), target_met=bool(share <= TARGET_DATA_SHARE) if device.type == "cpu" else "",
                note=f"epoch {n_batches} batches" + (" (fewer steps than asked: one epoch ended them)" if len(step_s) < steps else ""))

@call_parse
@cli_errors
def main(dataset:str="busi",   # busi | kvasir-seg | synthetic
         sizes:str="128,256",  # Comma-separated input sizes
         bs:int=8,             # Batch size
         steps:int=30,         # Timed training steps per size
         warmup:int=3,         # Untimed steps first
         device:str="cpu",     # cpu | cuda
         fp16:bool=False,      # Mixed precision (CUDA)
         num_workers:int=0,    # DataLoader worker processes
         threads:int=0,        # torch.set_num_threads (0: torch's default)
         data_dir:str=None,    # Folder holding BUSI/ and Kvasir-SEG/ (default: resolve_data_dir())
         out:str=str(RESULTS), # CSV to append to
        ):
    "Training images/s and the share of step time spent waiting for data, per input size."
    before = load_average()
    if threads: torch.set_num_threads(threads)
    if device.startswith("cuda") and not torch.cuda.is_available(): raise DataError(f"device {device}: CUDA is not available here")
    dev = default_device(device)
    rows = [measure(dataset, int(s), bs, warmup, steps, dev, fp16, data_dir, num_workers) for s in sizes.split(",")]
    after = load_average()
    rows = [dict(machine_row(device, before, after, torch.get_num_threads()), **r) for r in rows]
    append_rows(Path(out), rows, COLUMNS)
    for r in rows:
        print(f"{r['dataset']} {r['size_px']} px, batch {bs}: {r['images_per_s']} images/s, step {r['step_ms']} ms, waiting for data "
              f"{r['data_wait_ms']} ms = {100 * r['data_wait_share']:.1f}% of the step time (target <= {100 * TARGET_DATA_SHARE:.0f}%"
              + (f": {'met' if r['target_met'] else 'NOT met'})" if r["target_met"] != "" else ")"))
    print(f"load average: {before:.2f} before, {after:.2f} after")
    warn_if_unreliable(before, after, torch.get_num_threads())
    print(f"appended to {out}")
