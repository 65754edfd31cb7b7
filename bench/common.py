"""What the benchmark scripts share: the machine and its load, test images, timing, and results files that keep older rows.

A timing taken while other processes share the cores says little about the code: every bench records the 1-minute
load average before and after its run, and flags the result as unreliable (with a printed warning) when the load
before the start exceeds `LOAD_LIMIT`, what an idle machine shows, or when the load after exceeds what the bench's
own threads explain.
"""
import csv, os, platform, time
from datetime import datetime, timezone
from pathlib import Path
import numpy as np
import torch
from PIL import Image
from scipy.ndimage import gaussian_filter
from radiomicnet.core import atomic_path, git_commit

RESULTS_DIR = Path(__file__).resolve().parent/"results"
LOAD_LIMIT = 0.5  # 1-minute load average of an otherwise idle machine
MACHINE_COLUMNS = ["timestamp", "git_commit", "platform", "cpu_model", "cpu_count", "load_average_1min", "load_average_after",
                   "reliable", "torch_version", "torch_threads", "omp_wait_policy", "device"]

def cpu_model()->str:
    "The CPU's model name from /proc/cpuinfo (platform.processor() elsewhere)."
    try: lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError: lines = []
    names = [l.split(":", 1)[1].strip() for l in lines if l.startswith("model name")]
    return names[0] if names else platform.processor() or "unknown"

def load_average()->float:
    "The 1-minute load average."
    return os.getloadavg()[0]

def reliability(before:float, # 1-minute load average before the bench started
                after:float,  # ... and when it ended
                threads:int,  # Threads (or processes) the bench itself kept busy
               )->tuple:      # (reliable, warning or '')
    "Whether the machine was quiet enough for the timings to mean something, and a warning saying why not."
    if before > LOAD_LIMIT:
        return False, (f"UNRELIABLE: the 1-minute load average was {before:.2f} before the start (an idle machine shows <= {LOAD_LIMIT}): "
                       f"other processes shared the {os.cpu_count()} cores; rerun on a quiet machine")
    if after > threads + 1 + LOAD_LIMIT:
        return False, f"UNRELIABLE: the load average rose to {after:.2f}, more than this bench's {threads} threads explain: other work started"
    return True, ""

def machine_row(device:str, # 'cpu' or a CUDA device
                before:float, after:float, threads:int)->dict:
    "The machine columns of a results row: commit, platform, CPU, load before/after and the verdict, torch, device."
    reliable, _ = reliability(before, after, threads)
    return dict(timestamp=datetime.now(timezone.utc).isoformat(timespec="seconds"), git_commit=git_commit(), platform=platform.platform(),
                cpu_model=cpu_model(), cpu_count=os.cpu_count(), load_average_1min=f"{before:.2f}", load_average_after=f"{after:.2f}",
                reliable=reliable, torch_version=torch.__version__, torch_threads=torch.get_num_threads(),
                omp_wait_policy=os.environ.get("OMP_WAIT_POLICY", ""),
                device=torch.cuda.get_device_name(device) if str(device).startswith("cuda") else "cpu")

def warn_if_unreliable(before:float, after:float, threads:int):
    "Print the reliability warning, if any."
    _, warning = reliability(before, after, threads)
    if warning: print(warning)

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

def bench_images(n:int, size:int, data_dir:Path)->tuple:
    "(images, source): n real BUSI + Kvasir-SEG images when the data are found, else n synthetic textures."
    images = real_images(n, size, data_dir)
    return (images, "BUSI+Kvasir-SEG") if len(images) == n else (synthetic_images(n, size), "synthetic")

def timed(fn)->tuple:
    "(result, wall-clock seconds, CPU seconds of this process) of one call of fn."
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu

def append_rows(path:Path,    # The CSV
                rows:list,    # New rows (dicts)
                columns:list, # The file's columns, in order
               ):
    "Append rows to the CSV at path, rewriting it atomically; older rows keep their values, blank in columns added since."
    old = []
    if path.is_file():
        with open(path, newline="") as f:
            old = [{k: r.get(k) or "" for k in columns} for r in csv.DictReader(f)]
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, columns)
            writer.writeheader(); writer.writerows(old + list(rows))
