#!/usr/bin/env python
"""What a local radiomics map costs per training batch (issue 20's `rag_local`), at each window stride tried.

Times `radiomicnet.features.local_radiomics_map` on a batch of 8 images at the `cpu` protocol's 128 px (the batch the
network trains on), 32-px windows, for each stride, and the image-level features of the same batch for comparison. Each
timing is the median after one warm-up call. Appends to bench/results/local-map.csv with the machine and its load.

    python bench/local_map.py                     # strides 16 and 32, torch's threads
    python bench/local_map.py --threads 1         # on one thread
"""
import os
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import time
from pathlib import Path
import numpy as np
import torch
from fastcore.script import call_parse
from radiomicnet.core import resolve_data_dir
from radiomicnet.features import local_radiomics_map, radiomics_features_torch
from common import MACHINE_COLUMNS, RESULTS_DIR, append_rows, bench_images, load_average, machine_row, warn_if_unreliable

COLUMNS = [*MACHINE_COLUMNS, "images", "batch_size", "size_px", "what", "window", "stride", "windows_per_image", "repeats", "seconds_per_batch"]

def median_seconds(fn, repeats:int)->float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter(); fn(); times.append(time.perf_counter() - t)
    return float(np.median(times))

@call_parse
def main(size:int=128,        # Network input side (the cpu protocol's)
         batch_size:int=8,    # Images per batch (the cpu protocol's)
         window:int=32,       # Window side
         strides:str="16,32", # Comma-separated strides to time
         repeats:int=7,       # Timed calls per row
         threads:int=0,       # torch.set_num_threads (0: torch's default)
         data_dir:str=None,   # Folder holding BUSI/ and Kvasir-SEG/ (default: resolve_data_dir(); else synthetic images)
         out:str=None,        # CSV (default: bench/results/local-map.csv)
        ):
    "Time the local radiomics map of one training batch at each stride, beside the image-level features."
    if threads: torch.set_num_threads(threads)
    images, source = bench_images(batch_size, size, resolve_data_dir(data_dir))
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255   # what the network is given
    before, rows = load_average(), []
    rows.append(dict(what="image-level features", window=size, stride=size, windows_per_image=1,
                     seconds_per_batch=median_seconds(lambda: radiomics_features_torch(x), repeats)))
    for s in (int(v) for v in strides.split(",")):
        n = ((size - window) // s + 1)**2
        rows.append(dict(what="local map", window=window, stride=s, windows_per_image=n,
                         seconds_per_batch=median_seconds(lambda: local_radiomics_map(x, window, s), repeats)))
    after = load_average()
    machine = machine_row("cpu", before, after, threads or torch.get_num_threads())
    rows = [{**machine, "images": source, "batch_size": batch_size, "size_px": size, "repeats": repeats, **r,
             "seconds_per_batch": round(r["seconds_per_batch"], 4)} for r in rows]
    append_rows(RESULTS_DIR/"local-map.csv" if out is None else Path(out), rows, COLUMNS)
    for r in rows: print(f"{r['what']:<22} window {r['window']:>3} stride {r['stride']:>3}: {r['windows_per_image']:>3} windows, {r['seconds_per_batch']:.4f} s per batch of {batch_size}")
    warn_if_unreliable(before, after, threads or torch.get_num_threads())
