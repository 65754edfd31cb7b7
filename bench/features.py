#!/usr/bin/env python
"""Throughput of the batched torch radiomics features against the scikit-image reference looped over the same images.

Appends one row per run to bench/results/features.csv (written atomically): the commit measured, the machine, with its load average
and OpenMP wait policy (other processes on a shared machine slow both sides, the multi-threaded torch path much
more under libgomp's default busy-waiting, so the script waits passively unless told otherwise), both timings (best of
`--repeats`, interleaved), the speed-up and the largest relative disagreement between the two. Real BUSI /
Kvasir-SEG images are used when the data folder is found (radiomicnet.core.resolve_data_dir), else deterministic
synthetic textures.
"""
import csv, os, platform, time
# libgomp's default busy-waiting makes multi-threaded torch crawl when other processes share the cores; a benchmark
# on a shared machine should wait passively (set OMP_WAIT_POLICY=ACTIVE to measure the default). Must precede torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
from datetime import datetime, timezone
from pathlib import Path
import numpy as np
import torch
from fastcore.script import call_parse
from PIL import Image
from scipy.ndimage import gaussian_filter
from radiomicnet.core import DataError, atomic_path, cli_errors, git_commit, resolve_data_dir
from radiomicnet.features import CPU_CHUNK_SIZE, FEATURE_RTOL, radiomics_features, radiomics_features_torch, relative_error

RESULTS = Path(__file__).resolve().parent/"results"/"features.csv"
COLUMNS = ["timestamp", "git_commit", "platform", "cpu_model", "cpu_count", "load_average_1min", "torch_version", "torch_threads",
           "workers", "omp_wait_policy", "device", "images", "n_images", "size", "chunk_size", "repeats", "seconds_reference", "seconds_torch", "speedup",
           "cpu_seconds_reference", "cpu_seconds_torch", "max_relative_error", "within_tolerance"]

def cpu_model()->str:
    "The CPU's model name from /proc/cpuinfo (platform.processor() elsewhere)."
    try: lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError: lines = []
    names = [l.split(":", 1)[1].strip() for l in lines if l.startswith("model name")]
    return names[0] if names else platform.processor() or "unknown"

def real_images(n:int, size:int, data_dir:Path)->list:
    "Up to n RGB images, half BUSI and half Kvasir-SEG, resized to size x size with PIL bilinear (as the data pipeline does)."
    busi = sorted((data_dir/"BUSI"/"Dataset_BUSI_with_GT").glob("*/*).png"))
    kvasir = sorted((data_dir/"Kvasir-SEG"/"images").glob("*.jpg"))
    if not busi or not kvasir: return []
    paths = busi[:n // 2] + kvasir[:n - n // 2]
    return [np.asarray(Image.open(p).convert("RGB").resize((size, size), Image.Resampling.BILINEAR)) for p in paths]

def synthetic_images(n:int, size:int, seed:int=0)->list:
    "n deterministic RGB textures: smoothed noise at random scales, with flat dark borders like scans have."
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(n):
        tex = gaussian_filter(rng.normal(size=(size, size)), rng.uniform(0.5, 4))
        tex = (tex - tex.min()) / (np.ptp(tex) or 1)
        tex[: size // 10] = tex[-size // 10:] = 0
        images.append((255 * np.dstack([tex, tex ** 1.2, tex ** 0.8])).round().astype(np.uint8))
    return images

def timed(fn)->tuple:
    "(result, wall-clock seconds, CPU seconds of this process) of one call of fn."
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu

def append_row(path:Path, row:dict):
    "Append one row to the CSV at path, rewriting it atomically; older rows keep their values, blank in columns added since."
    rows = []
    if path.is_file():
        with open(path, newline="") as f:
            rows = [{k: r.get(k) or "" for k in COLUMNS} for r in csv.DictReader(f)]
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, COLUMNS)
            writer.writeheader(); writer.writerows(rows + [row])

@call_parse
@cli_errors
def main(n_images:int=64,  # Images per run (one torch batch)
         size:int=256,     # Image side, as the network sees it
         repeats:int=5,    # Timed runs of each implementation; the best counts
         device:str="cpu", # Torch device ("cpu", "cuda")
         threads:int=0,    # torch.set_num_threads (0: torch's default)
         workers:int=0,    # Threads sharing the slices (0: the library default, torch's thread count)
         chunk_size:int=0, # Images per vectorised slice (0: the library default)
         data_dir:str=None,# Folder holding BUSI/ and Kvasir-SEG/ (default: resolve_data_dir())
         out:str=str(RESULTS), # CSV to append the result to
        ):
    "Time radiomics_features_torch on one batch against radiomics_features looped over the same images."
    if threads: torch.set_num_threads(threads)
    if device.startswith("cuda") and not torch.cuda.is_available(): raise DataError(f"device {device}: CUDA is not available here")
    images = real_images(n_images, size, resolve_data_dir(data_dir))
    source = "BUSI+Kvasir-SEG" if len(images) == n_images else "synthetic"
    if source == "synthetic": images = synthetic_images(n_images, size)
    batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    def run_torch():
        feats = radiomics_features_torch(batch.to(device), chunk_size or None, workers or None); sync(); return feats
    run_torch()                                                  # warm-up: caches, CUDA context
    ref_times, torch_times = [], []
    for _ in range(repeats):                                     # interleaved, so both see the same machine load
        feats_ref, *seconds = timed(lambda: np.stack([radiomics_features(im) for im in images])); ref_times.append(seconds)
        feats_torch, *seconds = timed(run_torch); torch_times.append(seconds)
    (seconds_ref, cpu_ref), (seconds_torch, cpu_torch) = min(ref_times), min(torch_times)
    errors = relative_error(feats_torch, feats_ref)
    row = dict(timestamp=datetime.now(timezone.utc).isoformat(timespec="seconds"), git_commit=git_commit(), platform=platform.platform(),
               cpu_model=cpu_model(), cpu_count=os.cpu_count(), load_average_1min=f"{os.getloadavg()[0]:.2f}",
               torch_version=torch.__version__, torch_threads=torch.get_num_threads(),
               workers=workers or (torch.get_num_threads() if device == "cpu" else 1),
               omp_wait_policy=os.environ["OMP_WAIT_POLICY"],
               device=torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu", images=source,
               n_images=n_images, size=size, chunk_size=chunk_size or (CPU_CHUNK_SIZE if device == "cpu" else n_images),
               repeats=repeats, seconds_reference=f"{seconds_ref:.4f}", seconds_torch=f"{seconds_torch:.4f}",
               speedup=f"{seconds_ref / seconds_torch:.2f}", cpu_seconds_reference=f"{cpu_ref:.4f}",
               cpu_seconds_torch=f"{cpu_torch:.4f}", max_relative_error=f"{errors.max():.2e}",
               within_tolerance=bool((errors <= np.array(FEATURE_RTOL)).all()))
    append_row(Path(out), row)
    print(f"{n_images} images {size}x{size} ({source}) on {row['device']} ({row['cpu_model']}, {row['torch_threads']} torch threads)")
    print(f"reference (scikit-image, looped): {seconds_ref:.3f} s   torch (batched): {seconds_torch:.3f} s   "
          f"speed-up: {seconds_ref / seconds_torch:.1f}x (CPU time: {cpu_ref / cpu_torch:.1f}x)   "
          f"max relative error: {errors.max():.1e}   load average: {row['load_average_1min']}")
    print(f"appended to {out}")
