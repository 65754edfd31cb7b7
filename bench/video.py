#!/usr/bin/env python
"""Video rate, end to end and stage by stage: a colonoscopy-sized clip (default 60 s at 25 fps, 720x576) through
`radiomicnet-predict` with a shipped model, in its own process (decode, resize, features, network, overlay, encode).

The clip is built so that every frame differs, as a recording's do: each of 40 Kvasir-SEG images is shown for about
1.5 s while the view zooms and pans across it (an endoscope moves all the time), and the picture changes between
images. A clip of held, identical frames flatters the encoder, whose cost depends on motion; that is how an earlier
version of this bench (32.8 frames/s) and a user's real clip (22 frames/s) came to disagree.

Rows (bench/results/video.csv, older rows kept): one per backend (`--backends torch,int8`: the model's network in
PyTorch, and `--fast`, int8 in ONNX Runtime), with the end-to-end frames per second (frames over the time from the first
decoded frame to the last encoded one; and over the command's wall time, start-up included), each stage's milliseconds
per frame (`radiomicnet-predict`'s report.csv: decode and encode run in threads beside the network, so the stages add up
to more than the end-to-end time when they overlap), the torch threads, the load average when the bench started (before its own clip building) and after each run, the peak
resident memory, and the encoder's options with the bitrate and the PSNR of the overlay video against its own frames.

A second table (bench/results/video-encoder.csv) times libx264 alone on the clip's first `--encoder-frames` frames at
several presets and thread counts, with the bitrate and PSNR each gives at CRF 23: the evidence for
`radiomicnet.infer.video.ENCODER_OPTIONS`.

Target on 2 cores: >= 30 frames/s end to end on the 720x576 clip.

    python bench/video.py                                   # the shipped kvasir-seg model, torch and int8
    python bench/video.py --model busi --backends int8
    python bench/video.py --seconds 1 --width 160 --height 128 --encoder-frames 10   # a smoke run
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
from radiomicnet.core import RadiomicNetError, cli_errors, resolve_data_dir
from radiomicnet.infer.pretrained import load_predictor
from radiomicnet.infer.video import ENCODER_OPTIONS, VIDEO_STAGES, VideoReader, VideoWriter
from common import MACHINE_COLUMNS, RESULTS_DIR, append_rows, load_average, machine_row, synthetic_images, warn_if_unreliable

TARGET_FPS = 30.0
COLUMNS = ["run_id", *MACHINE_COLUMNS, "model", "backend", "frames_source", "seconds", "fps_source", "width", "height", "frames", "batch", "every",
           "fps_end_to_end", "fps_wall", "ms_per_frame", *(f"ms_{s}" for s in VIDEO_STAGES), "encoder", "encoder_options",
           "bitrate_mbit_s", "psnr_db", "peak_rss_mb", "fps_target_met",
           "checkpoint", "features_ms_per_frame", "features_share", "features_target_met"]   # the last four: rows of the bench's earlier version
ENCODER_COLUMNS = ["run_id", *MACHINE_COLUMNS, "frames_source", "width", "height", "frames", "preset", "crf", "encoder_threads", "ms_per_frame",
                   "bitrate_mbit_s", "psnr_db", "chosen"]

def source_images(n:int, data_dir)->tuple:
    "(images, source): n Kvasir-SEG images, or synthetic textures without the data."
    paths = sorted((Path(resolve_data_dir(data_dir))/"Kvasir-SEG"/"images").glob("*.jpg"))[:n]
    if paths: return [Image.open(p).convert("RGB") for p in paths], "Kvasir-SEG"
    return [Image.fromarray(im) for im in synthetic_images(n, 256)], "synthetic"

def moving_frame(images:list, k:int, hold:int, width:int, height:int)->np.ndarray:
    "Frame k: image k // hold, seen through a window that zooms in (1 to 1.3x) and pans across it during its `hold` frames."
    im, t = images[(k // hold) % len(images)], (k % hold) / hold
    w, h = im.size
    zoom = 1 + 0.3 * t
    cw, ch = w / zoom, h / zoom
    x0, y0 = (w - cw) * t, (h - ch) * (0.5 + 0.5 * np.sin(2 * np.pi * t))
    return np.asarray(im.resize((width, height), Image.Resampling.BILINEAR, box=(x0, y0, x0 + cw, y0 + ch)))

def write_clip(path:Path, images:list, seconds:float, fps:int, width:int, height:int, hold:int=37)->int:
    "An H.264 clip of `seconds` at `fps` whose every frame differs (`moving_frame`), written at high quality (CRF 18) as a recording is; returns the frame count."
    n = round(seconds * fps)
    writer = VideoWriter(path, fps, width, height, options=dict(preset="medium", crf=18))
    for k in range(n): writer.write(moving_frame(images, k, hold, width, height))
    writer.close()
    return n

def psnr(a:np.ndarray, b:np.ndarray)->float:
    "Peak signal-to-noise ratio of two uint8 arrays, in dB."
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255 ** 2 / mse)

def encode_alone(frames:list, fps:int, preset:str, crf:int, threads:int)->dict:
    "libx264 alone on the frames: milliseconds per frame, bitrate, and PSNR of the decoded result against the frames."
    with tempfile.TemporaryDirectory() as d:
        path = Path(d)/"enc.mp4"
        writer = VideoWriter(path, fps, frames[0].shape[1], frames[0].shape[0], options={} if preset == "default" else dict(preset=preset, crf=crf), threads=threads)
        t0 = time.perf_counter()
        for f in frames: writer.write(f)
        writer.close(); dt = time.perf_counter() - t0
        decoded = [f[2] for f in VideoReader(path)]
        size = path.stat().st_size
    return dict(ms_per_frame=round(1000 * dt / len(frames), 2), bitrate_mbit_s=round(8 * size / (len(frames) / fps) / 1e6, 3),
                psnr_db=round(float(np.mean([psnr(a, b) for a, b in zip(frames, decoded)])), 2))

def predict_command(clip:Path, out:Path, model:str, fast:bool, batch:int, every:int)->tuple:
    "(wall seconds, peak RSS in MB) of `radiomicnet-predict --model MODEL [--fast]` on the clip, in its own process."
    cmd = [shutil.which("radiomicnet-predict") or "radiomicnet-predict", "--model", model, *(["--fast"] if fast else []), str(clip), "--out", str(out),
           "--batch", str(batch), "--every", str(every)]
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]).returncode; "
                           "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(r)", *cmd],
                          capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode: raise RadiomicNetError(f"{clip}: radiomicnet-predict failed: {(done.stderr.strip().splitlines() or ['?'])[-2:]}")
    return wall, int(done.stderr.strip().splitlines()[-1]) / 1024   # ru_maxrss is in KiB on Linux

def overlay_psnr(out:Path, model:str, fast:bool, video:Path, n:int=25)->float:
    "PSNR (dB) of the overlay video's first n frames against the same overlays drawn uncompressed: what the encoder's options give up."
    from radiomicnet.infer.video import StageClock, segment_frames
    net = load_predictor(model=model, fast=fast, device="cpu")
    written = [f for _, f in zip(range(n), VideoReader(video))]
    source = [f for _, f in zip(range(n), VideoReader(out.parent/"clip.mp4"))]
    _, drawn = segment_frames(net, source, StageClock(), net.threshold)
    return round(float(np.mean([psnr(a[2], b) for a, b in zip(written, drawn)])), 2)

def encoder_table(clip:Path, n:int, fps:int, frames_source:str, path:Path, run_id:str, start_load:float):
    "libx264 alone at several presets and thread counts on the clip's first n frames; appends to `path` and prints the table."
    frames = [f[2] for _, f in zip(range(n), VideoReader(clip))]
    rows, before = [], start_load
    for preset in ("default", "veryfast", "superfast", "ultrafast"):
        for threads in (0, 1):
            r = encode_alone(frames, fps, preset, 23, threads)
            rows.append(dict(frames_source=frames_source, width=frames[0].shape[1], height=frames[0].shape[0], frames=n, preset=preset,
                             crf="" if preset == "default" else 23, encoder_threads=threads or "auto", **r,
                             chosen=preset == ENCODER_OPTIONS["preset"] and threads == 0))
    after = load_average()
    append_rows(path, [{**machine_row("cpu", before, after, 2), **r, "run_id": run_id} for r in rows], ENCODER_COLUMNS)
    print(pd.DataFrame(rows)[["preset", "crf", "encoder_threads", "ms_per_frame", "bitrate_mbit_s", "psnr_db", "chosen"]].to_string(index=False))
    warn_if_unreliable(before, after, 2)

@call_parse
@cli_errors
def main(model:str="kvasir-seg",   # A shipped model by name (radiomicnet-models) or a model folder
         backends:str="torch,int8", # Comma-separated: torch (the network in PyTorch), int8 (`--fast`)
         seconds:float=60.,   # Length of the clip
         fps:int=25,          # Its frame rate
         width:int=720,       # Its frame width (colonoscopy recordings: 720x576)
         height:int=576,      # Its frame height
         batch:int=8,         # Frames per network batch (radiomicnet-predict --batch)
         every:int=1,         # Predict every N-th frame (radiomicnet-predict --every)
         encoder_frames:int=150, # Frames of the clip in the encoder-alone table (0: skip it)
         data_dir:str=None,   # Folder holding Kvasir-SEG/ (default: $RADIOMICNET_DATA; synthetic frames without it)
         keep:str=None,       # Keep the clip and the outputs in this folder (default: a temporary one)
         out:str=None,        # CSV (default: bench/results/video.csv; the encoder table beside it as video-encoder.csv)
        ):
    "Build the clip, run radiomicnet-predict on it per backend, and append frames per second, stage times, memory and encoder quality."
    start_load = load_average()                 # the machine before this bench's own work: its clip building would taint a later reading
    load_predictor(model=model, device="cpu")   # checks the model folder, in one line
    work = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="bench-video-"))
    work.mkdir(parents=True, exist_ok=True)
    images, frames_source = source_images(40, data_dir)
    n = write_clip(work/"clip.mp4", images, seconds, fps, width, height)
    write_clip(work/"warmup.mp4", images, min(1.0, seconds), fps, width, height)
    run_id, path = datetime.now(timezone.utc).isoformat(timespec="seconds"), Path(out or RESULTS_DIR/"video.csv")
    threads = torch.get_num_threads()
    for backend in backends.split(","):
        fast = {"torch": False, "int8": True}[backend]
        predict_command(work/"warmup.mp4", work/"warmup", model, fast, batch, every)   # int8: quantises once; the cache serves the timed call
        before = start_load
        wall, rss = predict_command(work/"clip.mp4", work/backend, model, fast, batch, every)
        after = load_average()
        report = pd.read_csv(work/backend/"report.csv").iloc[0]
        video = work/backend/"clip_overlay.mp4"
        ms = float(report.ms_per_frame)
        row = dict(model=model, backend=backend, frames_source=frames_source, seconds=seconds, fps_source=fps, width=width, height=height, frames=n,
                   batch=batch, every=every, fps_end_to_end=round(1000 / ms, 2), fps_wall=round(int(report.frames_predicted) / wall, 2),
                   ms_per_frame=round(ms, 2), **{f"ms_{s}": round(float(report[f"ms_{s}"]), 2) for s in VIDEO_STAGES},
                   encoder="libx264", encoder_options=" ".join(f"{k}={v}" for k, v in ENCODER_OPTIONS.items()),
                   bitrate_mbit_s=round(8 * video.stat().st_size / (int(report.frames_predicted) / (fps / every)) / 1e6, 3),
                   psnr_db=overlay_psnr(work/backend, model, fast, video), peak_rss_mb=round(rss, 1), fps_target_met=1000 / ms >= TARGET_FPS,
                   features_ms_per_frame=round(float(report.ms_features), 2), features_share=round(float(report.ms_features) / ms, 3))
        append_rows(path, [{**machine_row("cpu", before, after, threads), **row, "run_id": run_id}], COLUMNS)
        stages = ", ".join(f"{s} {row[f'ms_{s}']:.1f}" for s in VIDEO_STAGES)
        print(f"{backend}: {n} frames of {width}x{height} at {fps} fps ({frames_source}): {row['fps_end_to_end']:.1f} frames/s end to end "
              f"({row['fps_wall']:.1f} with start-up), target >= {TARGET_FPS:g}: {'met' if row['fps_target_met'] else 'NOT met'}; "
              f"ms per frame by stage: {stages}; {threads} torch threads; load {before:.2f} -> {after:.2f}; "
              f"overlay video {row['bitrate_mbit_s']} Mbit/s, PSNR {row['psnr_db']} dB; peak memory {rss:.0f} MB")
        warn_if_unreliable(before, after, threads)
    if encoder_frames: encoder_table(work/"clip.mp4", encoder_frames, fps, frames_source, path.with_name("video-encoder.csv"), run_id, start_load)
    if not keep: shutil.rmtree(work, ignore_errors=True)
    print(f"appended to {path}")
