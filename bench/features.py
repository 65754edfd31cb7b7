#!/usr/bin/env python
"""Throughput of the batched torch radiomics features against the scikit-image reference looped over the same images,
on one core and over a process pool with as many workers as the torch path has threads (the fair comparison).

Appends one row per run to bench/results/features.csv (written atomically): the commit measured, the machine, with its load average
before and after and whether the timings are reliable (see bench/common.py: a loaded machine slows both sides, the multi-threaded torch
path much more under libgomp's default busy-waiting, so the script waits passively unless told otherwise), the three timings
(best of `--repeats`, interleaved), both speed-ups and the CPU-time ratios, and the largest relative disagreement between the two.
Real BUSI / Kvasir-SEG images are used when the data folder is found (radiomicnet.core.resolve_data_dir), else deterministic
synthetic textures.
"""
import os, time
from concurrent.futures import ProcessPoolExecutor
# libgomp's default busy-waiting makes multi-threaded torch crawl when other processes share the cores; a benchmark
# on a shared machine should wait passively (set OMP_WAIT_POLICY=ACTIVE to measure the default). Must precede torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
from pathlib import Path
import numpy as np
import torch
from fastcore.script import call_parse
from radiomicnet.core import DataError, cli_errors, resolve_data_dir
from radiomicnet.features import CPU_CHUNK_SIZE, FEATURE_RTOL, radiomics_features, radiomics_features_torch, relative_error
from common import MACHINE_COLUMNS, RESULTS_DIR, append_rows, bench_images, load_average, machine_row, timed, warn_if_unreliable

RESULTS = RESULTS_DIR/"features.csv"
COLUMNS = [*MACHINE_COLUMNS, "workers", "images", "n_images", "size", "chunk_size", "repeats", "seconds_reference", "seconds_torch", "speedup",
           "cpu_seconds_reference", "cpu_seconds_torch", "max_relative_error", "within_tolerance",
           "pool_workers", "seconds_pool", "speedup_vs_pool", "cpu_seconds_pool", "cpu_ratio_vs_pool"]

def _features_and_cpu(image:np.ndarray)->tuple:
    "scikit-image features of one image and the CPU seconds they took in this (pool worker) process."
    cpu = time.process_time()
    return radiomics_features(image), time.process_time() - cpu

def pool_reference(pool:ProcessPoolExecutor, images:list)->tuple:
    "(features, wall seconds, CPU seconds summed over the workers) of the scikit-image reference over a process pool."
    wall = time.perf_counter()
    feats, cpus = zip(*pool.map(_features_and_cpu, images, chunksize=max(1, len(images) // (4 * pool._max_workers))))
    return np.stack(feats), time.perf_counter() - wall, sum(cpus)

@call_parse
@cli_errors
def main(n_images:int=64,  # Images per run (one torch batch)
         size:int=256,     # Image side, as the network sees it
         repeats:int=5,    # Timed runs of each implementation; the best counts
         device:str="cpu", # Torch device ("cpu", "cuda")
         threads:int=0,    # torch.set_num_threads (0: torch's default)
         workers:int=0,    # Threads sharing the slices (0: the library default, torch's thread count)
         chunk_size:int=0, # Images per vectorised slice (0: the library default)
         pool_workers:int=0, # Processes of the scikit-image pool (0: as many as cores)
         data_dir:str=None,# Folder holding BUSI/ and Kvasir-SEG/ (default: resolve_data_dir())
         out:str=str(RESULTS), # CSV to append the result to
        ):
    "Time radiomics_features_torch on one batch against radiomics_features looped over the same images, on one core and over a pool."
    before = load_average()
    if threads: torch.set_num_threads(threads)
    if device.startswith("cuda") and not torch.cuda.is_available(): raise DataError(f"device {device}: CUDA is not available here")
    images, source = bench_images(n_images, size, resolve_data_dir(data_dir))
    batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    def run_torch():
        feats = radiomics_features_torch(batch.to(device), chunk_size or None, workers or None); sync(); return feats
    run_torch()                                                  # warm-up: caches, CUDA context
    pool_workers = pool_workers or os.cpu_count()
    ref_times, torch_times, pool_times = [], [], []
    with ProcessPoolExecutor(pool_workers) as pool:
        pool_reference(pool, images[:pool_workers])              # warm-up: the workers start and import scikit-image
        for _ in range(repeats):                                 # interleaved, so all three see the same machine load
            feats_ref, *seconds = timed(lambda: np.stack([radiomics_features(im) for im in images])); ref_times.append(seconds)
            feats_torch, *seconds = timed(run_torch); torch_times.append(seconds)
            feats_pool, *seconds = pool_reference(pool, images); pool_times.append(seconds)
    (seconds_ref, cpu_ref), (seconds_torch, cpu_torch), (seconds_pool, cpu_pool) = min(ref_times), min(torch_times), min(pool_times)
    if not np.array_equal(feats_pool, feats_ref): raise DataError("the process pool's scikit-image features differ from the looped ones")
    errors = relative_error(feats_torch, feats_ref)
    after, busy = load_average(), max(torch.get_num_threads(), pool_workers)
    row = dict(machine_row(device, before, after, busy),
               workers=workers or (torch.get_num_threads() if device == "cpu" else 1), images=source,
               n_images=n_images, size=size, chunk_size=chunk_size or (CPU_CHUNK_SIZE if device == "cpu" else n_images),
               repeats=repeats, seconds_reference=f"{seconds_ref:.4f}", seconds_torch=f"{seconds_torch:.4f}",
               speedup=f"{seconds_ref / seconds_torch:.2f}", cpu_seconds_reference=f"{cpu_ref:.4f}",
               cpu_seconds_torch=f"{cpu_torch:.4f}", max_relative_error=f"{errors.max():.2e}",
               within_tolerance=bool((errors <= np.array(FEATURE_RTOL)).all()),
               pool_workers=pool_workers, seconds_pool=f"{seconds_pool:.4f}", speedup_vs_pool=f"{seconds_pool / seconds_torch:.2f}",
               cpu_seconds_pool=f"{cpu_pool:.4f}", cpu_ratio_vs_pool=f"{cpu_pool / cpu_torch:.2f}")
    append_rows(Path(out), [row], COLUMNS)
    print(f"{n_images} images {size}x{size} ({source}) on {row['device']} ({row['cpu_model']}, {row['torch_threads']} torch threads)")
    print(f"reference (scikit-image, looped on one core): {seconds_ref:.3f} s   over {pool_workers} processes: {seconds_pool:.3f} s   "
          f"torch (batched): {seconds_torch:.3f} s")
    print(f"speed-up vs one core: {seconds_ref / seconds_torch:.1f}x (CPU time: {cpu_ref / cpu_torch:.1f}x)   "
          f"vs the pool: {seconds_pool / seconds_torch:.1f}x (CPU time: {cpu_pool / cpu_torch:.1f}x)   "
          f"max relative error: {errors.max():.1e}   load average: {before:.2f} before, {after:.2f} after")
    warn_if_unreliable(before, after, busy)
    print(f"appended to {out}")
