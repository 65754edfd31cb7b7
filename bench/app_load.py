#!/usr/bin/env python
"""The web app under load: `radiomicnet-app` in its own process, eight requests sent at once with gradio_client, each
a BUSI test image, as eight people pressing the button at the same moment.

The app queues its requests and runs `concurrency_limit()` of them at a time (half the cores, notebook 26), so the
eight finish one batch after another: the last one waits for the others. The bench checks that all eight complete
with a result, and records each request's wall time (from the common start to its answer), the total, the server's
resident memory when idle (after one warm-up request) and at its peak (`VmHWM` of /proc/<pid>/status: the high-water
mark over the whole run, model loading included), the concurrency limit and the cores.

Rows (bench/results/app-load.csv, older rows kept): one per run, with the machine, its load average before and after,
and the verdict on them (bench/common.py).

    python bench/app_load.py                          # the busi model, 8 requests
    python bench/app_load.py --fast --requests 16     # the int8 fast path
    python bench/app_load.py --out /tmp/app-load.csv  # a trial run, outside the committed results
"""
import os, re, shutil, signal, socket, statistics, subprocess, sys, tempfile, threading, time, urllib.request
from datetime import datetime, timezone
from pathlib import Path
from fastcore.script import call_parse
from radiomicnet.core import RadiomicNetError, cli_errors, resolve_data_dir
from common import MACHINE_COLUMNS, RESULTS_DIR, append_rows, load_average, machine_row, warn_if_unreliable

COLUMNS = ["run_id", *MACHINE_COLUMNS, "model", "backend", "requests", "completed", "concurrency_limit", "cores", "server_torch_threads",
           "image", "image_kb", "wall_s_min", "wall_s_median", "wall_s_max", "wall_s_each", "total_s", "rss_idle_mb", "peak_rss_mb"]

def memory_mb(pid:int, key:str)->float:
    "A memory figure of a process from /proc/<pid>/status, in MB: VmRSS (now) or VmHWM (the peak so far)."
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(rf"^{key}:\s+(\d+) kB", text, re.M)[1]) / 1024

def start_server(model:str, fast:bool, log:Path)->tuple:
    "(process, url, server's first line) of `radiomicnet-app` on a free port, once it answers."
    with socket.socket() as s: s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
    exe = shutil.which("radiomicnet-app")
    if exe is None: raise RadiomicNetError("radiomicnet-app is not installed: pip install -e '.[app]'")
    with open(log, "w") as f:
        proc = subprocess.Popen([exe, "--model", model, "--port", str(port), *(["--fast"] if fast else [])], stdout=f, stderr=subprocess.STDOUT,
                                env=dict(os.environ, PYTHONUNBUFFERED="1"))
    url, t0 = f"http://127.0.0.1:{port}/", time.perf_counter()
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2): break
        except OSError: pass
        if proc.poll() is not None or time.perf_counter() - t0 > 300:
            proc.kill(); raise RadiomicNetError(f"radiomicnet-app did not start: {log.read_text()[-1000:]}")
        time.sleep(0.5)
    return proc, url, log.read_text().splitlines()[0]

def request(url:str, image:Path, model:str, fast:bool, barrier:threading.Barrier|None, results:list, i:int):
    "One client: connect, wait for the others, send the image; record (seconds from the common start, status)."
    from gradio_client import Client, handle_file
    client = Client(url, verbose=False, download_files=False)   # not downloading: the client would write to its own temporary folder
    if barrier is not None: barrier.wait()
    t0 = time.perf_counter()
    out = client.predict([handle_file(str(image))], model, "", fast, 0, api_name="/segment")
    results[i] = (time.perf_counter() - t0, out[0])

@call_parse
@cli_errors
def main(model:str="busi",   # A shipped model by name (radiomicnet-models) or a model folder
         fast:bool=False,    # The int8 fast path
         requests:int=8,     # Requests sent at once
         data_root:str=None, # Folder holding BUSI/ (default: $RADIOMICNET_DATA)
         out:str=None,       # CSV (default: bench/results/app-load.csv)
        ):
    "Start the app, send `requests` requests at once, check that all complete, and append wall times, memory and the concurrency limit."
    image = next(iter(sorted((Path(resolve_data_dir(data_root))/"BUSI"/"Dataset_BUSI_with_GT"/"benign").glob("*).png"))), None)
    if image is None: raise RadiomicNetError(f"no BUSI images under {resolve_data_dir(data_root)}: set RADIOMICNET_DATA")
    before = load_average()
    work = Path(tempfile.mkdtemp(prefix="bench-app-"))
    proc, url, first = start_server(model, fast, work/"server.log")
    try:
        results = [None]
        request(url, image, model, fast, None, results, 0)                    # warm-up: first-call costs are not the load's
        idle = memory_mb(proc.pid, "VmRSS")
        results, barrier = [None] * requests, threading.Barrier(requests)
        clients = [threading.Thread(target=request, args=(url, image, model, fast, barrier, results, i)) for i in range(requests)]
        t0 = time.perf_counter()
        for c in clients: c.start()
        for c in clients: c.join()
        total, peak = time.perf_counter() - t0, memory_mb(proc.pid, "VmHWM")
    finally:
        proc.send_signal(signal.SIGTERM); proc.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)
    after = load_average()
    done = [r for r in results if r is not None and r[1].startswith("Segmented 1 file(s)")]
    walls = sorted(r[0] for r in done)
    limit, threads = (int(x) for x in re.search(r"(\d+) request\(s\) at a time \((\d+) torch", first).groups())
    row = dict(model=model, backend="int8" if fast else "torch", requests=requests, completed=len(done), concurrency_limit=limit,
               cores=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(), server_torch_threads=threads,
               image=image.name, image_kb=round(image.stat().st_size / 1024, 1), wall_s_min=round(walls[0], 2) if walls else "",
               wall_s_median=round(statistics.median(walls), 2) if walls else "", wall_s_max=round(walls[-1], 2) if walls else "",
               wall_s_each=";".join(f"{w:.2f}" for w in walls), total_s=round(total, 2), rss_idle_mb=round(idle, 1), peak_rss_mb=round(peak, 1))
    path = Path(out or RESULTS_DIR/"app-load.csv")
    append_rows(path, [{**machine_row("cpu", before, after, row["cores"]), **row,
                        "run_id": datetime.now(timezone.utc).isoformat(timespec="seconds")}], COLUMNS)
    print(f"{len(done)}/{requests} requests completed with {model} ({row['backend']}), {limit} at a time on {row['cores']} cores: "
          f"{total:.1f} s in all, each {row['wall_s_min']}-{row['wall_s_max']} s (median {row['wall_s_median']}); "
          f"server memory {idle:.0f} MB idle, {peak:.0f} MB at its peak; load {before:.2f} -> {after:.2f}; written to {path}")
    warn_if_unreliable(before, after, row["cores"])
    if len(done) < requests:
        raise RadiomicNetError(f"only {len(done)} of {requests} requests completed: {[r and r[1][:200] for r in results]}")
