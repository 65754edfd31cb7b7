#!/usr/bin/env python
"""Video rate, end to end: a colonoscopy-sized clip (default 60 s at 25 fps, 720x576) built from Kvasir-SEG images, through
`radiomicnet-predict --fast` in its own process (decode, features, network, overlay, encode).

Reports the end-to-end frames per second (from the command's frames.csv, which times every batch from decoding to
encoding, and from the command's wall time, start-up included), the peak resident memory of the command, and the share
of the per-frame time that the 13 radiomics features take (timed alone on the same frames at the network's input size).
Appends a row to bench/results/video.csv (older rows kept). Targets on 2 cores: >= 25 frames/s end to end, features
<= 25% of the per-frame time.

The model's int8 network is quantised (and cached) by a one-second warm-up call first, so the timed call
starts as a user's second call does.

    python bench/video.py                                              # the shipped kvasir-seg model
    python bench/video.py --checkpoint results/kvasir-seg/cpu/runs/radiomicnet-full-s0/best.pt
    python bench/video.py --checkpoint runs/x/best.pt --seconds 1 --width 160 --height 128     # a smoke run
"""
import os
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see bench/features.py: busy-waiting threads crawl on a shared machine
import shutil, subprocess, sys, tempfile, time
from datetime import datetime, timezone
from pathlib import Path
import numpy as np, pandas as pd
import torch
from fastcore.script import call_parse
from PIL import Image
from radiomicnet.core import RadiomicNetError, cli_errors, portable_path, resolve_data_dir
from radiomicnet.features import radiomics_features_torch
from radiomicnet.infer import load_predictor, preprocess
from radiomicnet.predict import VideoWriter
from common import MACHINE_COLUMNS, RESULTS_DIR, append_rows, load_average, machine_row, synthetic_images, warn_if_unreliable

TARGETS = dict(fps=25.0, features_share=0.25)
COLUMNS = ["run_id", *MACHINE_COLUMNS, "checkpoint", "model", "frames_source", "seconds", "fps_source", "width", "height", "frames", "batch", "every",
           "fps_end_to_end", "fps_wall", "ms_per_frame", "features_ms_per_frame", "features_share", "peak_rss_mb", "fps_target_met",
           "features_target_met"]

def clip_frames(n_distinct:int, width:int, height:int, data_dir)->tuple:
    "(frames, source): Kvasir-SEG images resized to width x height, or synthetic textures without the data."
    paths = sorted((Path(resolve_data_dir(data_dir))/"Kvasir-SEG"/"images").glob("*.jpg"))[:n_distinct]
    if paths: return [np.asarray(Image.open(p).convert("RGB").resize((width, height), Image.Resampling.BILINEAR)) for p in paths], "Kvasir-SEG"
    return [np.asarray(Image.fromarray(im).resize((width, height))) for im in synthetic_images(n_distinct, 128)], "synthetic"

def write_clip(path:Path, frames:list, seconds:float, fps:int, hold:int=5)->int:
    "An H.264 clip of `seconds` at `fps`, cycling through `frames`, each held `hold` frames (an endoscope moves slowly); returns the frame count."
    writer, n = VideoWriter(path, fps, frames[0].shape[1], frames[0].shape[0]), round(seconds * fps)
    for i in range(n): writer.write(frames[(i // hold) % len(frames)])
    writer.close()
    return n

def predict_command(clip:Path, out:Path, source:list, batch:int, every:int)->tuple:
    "(wall seconds, peak RSS in MB) of `radiomicnet-predict --fast` on the clip, in its own process; `source` is ['--checkpoint', X] or ['--model', NAME]."
    cmd = [shutil.which("radiomicnet-predict") or "radiomicnet-predict", "--fast", *source, str(clip), "--out", str(out),
           "--batch", str(batch), "--every", str(every)]
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]).returncode; "
                           "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(r)", *cmd],
                          capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode: raise RadiomicNetError(f"{clip}: radiomicnet-predict failed: {(done.stderr.strip().splitlines() or ['?'])[-2:]}")
    return wall, int(done.stderr.strip().splitlines()[-1]) / 1024   # ru_maxrss is in KiB on Linux

def features_ms(frames:list, img_size:int, batch:int)->float:
    "Milliseconds per frame of the 13 features alone, at the network's input size, `batch` frames at a time."
    x = preprocess(frames[:batch], img_size).pixels
    radiomics_features_torch(x)  # warm-up
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < 2 or n < 3: radiomics_features_torch(x); n += 1
    return 1000 * (time.perf_counter() - t0) / (n * len(x))

@call_parse
@cli_errors
def main(checkpoint:str=None, # A RadiomicNet checkpoint (default: --model)
         model:str="kvasir-seg", # A shipped model by name (radiomicnet-models), used when no --checkpoint is given
         seconds:float=60.,   # Length of the clip
         fps:int=25,          # Its frame rate
         width:int=720,       # Its frame width (colonoscopy recordings: 720x576)
         height:int=576,      # Its frame height
         batch:int=8,         # Frames per network batch (radiomicnet-predict --batch)
         every:int=1,         # Predict every N-th frame (radiomicnet-predict --every)
         data_dir:str=None,   # Folder holding Kvasir-SEG/ (default: $RADIOMICNET_DATA; synthetic frames without it)
         keep:str=None,       # Keep the clip and the outputs in this folder (default: a temporary one)
         out:str=None,        # CSV (default: bench/results/video.csv)
        ):
    "Build the clip, run radiomicnet-predict --fast on it, and append frames per second, peak memory and the features' share."
    pred = load_predictor(checkpoint, None if checkpoint else model, device="cpu")   # checks the file or the model folder, in one line
    source = ["--checkpoint", checkpoint] if checkpoint else ["--model", model]
    work = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="bench-video-"))
    frames, frames_source = clip_frames(40, width, height, data_dir)
    n = write_clip(work/"clip.mp4", frames, seconds, fps)
    write_clip(work/"warmup.mp4", frames, min(1.0, seconds), fps)
    predict_command(work/"warmup.mp4", work/"warmup", source, batch, every)   # quantises once; the cache serves the timed call
    before = load_average()
    wall, rss = predict_command(work/"clip.mp4", work/"out", source, batch, every)
    after = load_average()
    table = pd.read_csv(work/"out"/"clip_frames.csv")
    ms = float(table.ms_per_frame.mean())
    f_ms = features_ms(frames, pred.img_size, batch)
    row = dict(checkpoint=portable_path(checkpoint) if checkpoint else "", model="" if checkpoint else model, frames_source=frames_source, seconds=seconds, fps_source=fps, width=width, height=height, frames=n,
               batch=batch, every=every, fps_end_to_end=round(1000 / ms, 2), fps_wall=round(len(table) / wall, 2), ms_per_frame=round(ms, 2),
               features_ms_per_frame=round(f_ms, 2), features_share=round(f_ms / ms, 3), peak_rss_mb=round(rss, 1),
               fps_target_met=1000 / ms >= TARGETS["fps"], features_target_met=f_ms / ms <= TARGETS["features_share"])
    machine = machine_row("cpu", before, after, torch.get_num_threads())
    path = Path(out or RESULTS_DIR/"video.csv")
    append_rows(path, [{**machine, **row, "run_id": datetime.now(timezone.utc).isoformat(timespec="seconds")}], COLUMNS)
    print(f"{n} frames of {width}x{height} at {fps} fps ({frames_source}): {row['fps_end_to_end']:.1f} frames/s end to end "
          f"({row['fps_wall']:.1f} with start-up), target >= {TARGETS['fps']:g}: {'met' if row['fps_target_met'] else 'NOT met'}; "
          f"features {100 * row['features_share']:.0f}% of the frame time (target <= {100 * TARGETS['features_share']:.0f}%: "
          f"{'met' if row['features_target_met'] else 'NOT met'}); peak memory {rss:.0f} MB")
    warn_if_unreliable(before, after, torch.get_num_threads())
    if not keep: shutil.rmtree(work, ignore_errors=True)
    print(f"appended 1 row to {path}")
