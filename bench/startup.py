#!/usr/bin/env python
"""Start-up: how long the console scripts take before they do anything, each timed in a fresh process.

- `radiomicnet-predict --help`, the median of `--runs` runs (target: under 3 s on a quiet machine, issue 34): the
  console scripts live in `radiomicnet.cli` (notebook 34), which imports only the standard library, fastcore.script
  and radiomicnet.core, and each command imports its implementation (torch, fastai) only when it runs;
- `python -c "import radiomicnet.cli"`, the median of as many runs: what every console script pays first;
- the first prediction, `radiomicnet-predict --model busi <a BUSI test image> --out <a temporary folder>`, wall time
  (interpreter, imports, model loading and one image; a synthetic image when the data are not found);
- and it prints the 10 slowest imports of `python -X importtime -c "import radiomicnet.infer.video"` (by cumulative time),
  where the first prediction's start-up goes.

Appends one row to bench/results/startup.csv (older rows kept) with the machine and its load before and after; the row is
flagged `reliable=False`, with a printed warning, when other work shared the machine (bench/common.py). Only rows from a
quiet machine say anything about the target.

    python bench/startup.py
    python bench/startup.py --runs 3 --out /tmp/startup.csv     # a check that it works, away from the committed results
"""
import os, shutil, statistics, subprocess, sys, tempfile, time
from datetime import datetime, timezone
from pathlib import Path
from fastcore.script import call_parse
from PIL import Image
from radiomicnet.core import RadiomicNetError, cli_errors, resolve_data_dir
from common import MACHINE_COLUMNS, RESULTS_DIR, append_rows, load_average, machine_row, synthetic_images, warn_if_unreliable

TARGET_HELP_SECONDS = 3.0
COLUMNS = ["run_id", *MACHINE_COLUMNS, "runs", "help_seconds_median", "help_seconds_all", "import_cli_seconds_median",
           "first_prediction_seconds", "model", "image_source", "slowest_import", "help_target_seconds", "help_target_met"]

def wall(cmd:list, **kwargs)->float:
    "Seconds `cmd` takes to run to its end, in its own process; a one-line error with its stderr's last line if it fails."
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    seconds = time.perf_counter() - start
    if done.returncode: raise RadiomicNetError(f"{' '.join(map(str, cmd))}: exit status {done.returncode}: {(done.stderr.strip().splitlines() or [''])[-1]}")
    return seconds

def import_times(module:str, n:int=10)->list:
    "The `n` slowest imports of `python -X importtime -c 'import module'`: (module, self ms, cumulative ms), slowest cumulative first."
    err = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"], capture_output=True, text=True).stderr
    rows = []
    for line in err.splitlines():
        if not line.startswith("import time:") or "self [us]" in line: continue
        self_us, cumulative_us, name = (part.strip() for part in line[len("import time:"):].split("|"))
        rows.append((name, int(self_us) / 1000, int(cumulative_us) / 1000))
    return sorted(rows, key=lambda r: -r[2])[:n]

def test_image(data_root, folder:Path)->tuple:
    "(path, source) of an image to predict: the first BUSI test image when the data are found, else a synthetic one written to `folder`."
    from radiomicnet.data.datasets import load_split
    try: return load_split("busi", "test", data_root)[0].image, "BUSI test"
    except RadiomicNetError: pass
    path = folder/"synthetic.png"
    Image.fromarray(synthetic_images(1, 256)[0]).save(path)
    return path, "synthetic"

@call_parse
@cli_errors
def main(runs:int=5,            # Fresh processes per timing (the median is kept)
         model:str="busi",      # The shipped model of the first prediction (radiomicnet-models lists them)
         data_root:str=None,    # Folder holding BUSI/ (default: $RADIOMICNET_DATA, else data/ in the radiomicnet checkout)
         out:str=None,          # CSV to append to (default: bench/results/startup.csv)
        ):
    "Time radiomicnet-predict --help, import radiomicnet.cli and the first prediction, each in fresh processes, and append one row."
    exe = shutil.which("radiomicnet-predict")
    if exe is None: raise RadiomicNetError("radiomicnet-predict is not installed: pip install -e .")
    if runs < 1: raise RadiomicNetError(f"--runs {runs}: expected a whole number from 1")
    path = Path(out or RESULTS_DIR/"startup.csv")
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        image, source = test_image(data_root, Path(tmp))
        wall([exe, "--help"])  # once untimed: the files it reads come into the page cache as they would for a user's second call
        before = load_average()
        helps = [wall([exe, "--help"]) for _ in range(runs)]
        imports = [wall([sys.executable, "-c", "import radiomicnet.cli"]) for _ in range(runs)]
        first = wall([exe, "--model", model, str(image), "--out", str(Path(tmp)/"predictions")], env=dict(os.environ, RADIOMICNET_DATA=str(resolve_data_dir(data_root))))
        after = load_average()
    slowest = import_times("radiomicnet.infer.video")
    help_median = statistics.median(helps)
    row = dict(run_id=datetime.now(timezone.utc).isoformat(timespec="seconds"), runs=runs, help_seconds_median=round(help_median, 3),
               help_seconds_all=" ".join(f"{s:.3f}" for s in helps), import_cli_seconds_median=round(statistics.median(imports), 3),
               first_prediction_seconds=round(first, 2), model=model, image_source=source,
               slowest_import=f"{slowest[0][0]} {slowest[0][2]:.0f} ms" if slowest else "", help_target_seconds=TARGET_HELP_SECONDS,
               help_target_met="yes" if help_median < TARGET_HELP_SECONDS else "no")
    append_rows(path, [{**machine_row("cpu", before, after, 1), **row}], COLUMNS)
    print(f"radiomicnet-predict --help: median {help_median:.2f} s over {runs} runs ({row['help_seconds_all']} s); target < {TARGET_HELP_SECONDS:g} s: "
          f"{'met' if row['help_target_met'] == 'yes' else 'NOT met'}")
    print(f"python -c 'import radiomicnet.cli': median {row['import_cli_seconds_median']:.2f} s")
    print(f"first prediction (radiomicnet-predict --model {model}, one {source} image): {first:.1f} s")
    print(f"load average {before:.2f} -> {after:.2f}")
    print("the 10 slowest imports of `import radiomicnet.infer.video` (cumulative ms, self ms):")
    for name, self_ms, cumulative_ms in slowest: print(f"  {cumulative_ms:8.0f} {self_ms:8.0f}  {name}")
    warn_if_unreliable(before, after, 1)
    print(f"appended to {path}")
