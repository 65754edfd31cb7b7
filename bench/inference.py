#!/usr/bin/env python
"""Latency and throughput of the whole RadiomicNet path (image in, mask out) and of each network alone, against the baselines.

Rows (one per model and batch size), each measured in a fresh process so that its peak resident memory is its own:

- `radiomicnet-e2e`: `radiomicnet.infer.predictor.Predictor` on its torch backend: `preprocess` (the radiomics features of the batch,
  standardised) then the network, and the mask (logits > 0);
- `radiomicnet-e2e-fast`: the same on the int8 backend (ONNX Runtime, int8 calibrated on `--calibration` images; on CUDA, where
  ONNX Runtime's GPU build is not a dependency, the torch backend);
- `radiomicnet-local-e2e`: `radiomicnet-e2e` for the `rag_local` variant (issue 20): the same plus a local radiomics map
  (the variant's windows, notebook 12) for every gate's spatial branch; its cost over `radiomicnet-e2e`
  is the price of the map;
- `radiomicnet-features`: the features and their standardisation alone; `radiomicnet`: the network alone (eager);
- `unet`, `unetpp`, `ukan`: the baselines' networks alone (eager);
- what was tried: the features on one torch thread per slice as `preprocess` computes them (`radiomicnet-features-1thread`);
  on the network `radiomicnet-channels-last` (inference_mode + channels-last), `radiomicnet-bf16` (autocast),
  `radiomicnet-int8-dynamic` (torch.ao), `radiomicnet-onnx` (ONNX Runtime fp32), `radiomicnet-onnx-int8`, `radiomicnet-compile`
  (torch.compile, only with --compile: minutes of compilation).

Each timing is the median over repetitions after warm-up. Writes bench/results/inference-<device>.csv (older rows kept) with the
machine, the load average before and after each model, whether the run is reliable (bench/common.py), parameters, fp32 size,
peak RSS, how many times slower than `radiomicnet-e2e-fast` each row is at the same batch size, and the share of the features
in the end-to-end time; prints the ratios against the targets (2-core CPU: e2e-fast >= 3x faster than e2e and >= 10x faster
than unet, features <= 25% of the end-to-end time).

    python bench/inference.py                         # CPU: batch 1, 4, 16 at 256 px
    python bench/inference.py --device cuda           # GPU: batch 1, 8, 64
    python bench/inference.py --model busi --size 192 # a shipped model's weights (rows say which; speed does not depend on them)
"""
import os
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see bench/features.py: busy-waiting threads crawl on a shared machine
import json, resource, subprocess, sys, time, warnings
from datetime import datetime, timezone
from pathlib import Path
import numpy as np
import torch
from fastcore.script import call_parse
from radiomicnet.core import DataError, RadiomicNetError, cli_errors, resolve_data_dir
from radiomicnet.features import FeatureScaler, radiomics_features_torch
from radiomicnet.infer.predictor import OnnxBackend, Predictor, build_int8, export_network, preprocess, radiomics_of
from radiomicnet.infer.pretrained import load_pretrained, pretrained_folder, read_config
from radiomicnet.model.net import create_model, load_checkpoint, pretrained_cfg
from radiomicnet.train.learner import VARIANTS
from common import MACHINE_COLUMNS, RESULTS_DIR, append_rows, bench_images, load_average, machine_row, warn_if_unreliable

MODELS = ("radiomicnet-e2e", "radiomicnet-e2e-fast", "radiomicnet-local-e2e", "radiomicnet-features", "radiomicnet", "unet", "unetpp", "ukan")
TRIED = ("radiomicnet-features-1thread", "radiomicnet-channels-last", "radiomicnet-bf16", "radiomicnet-int8-dynamic", "radiomicnet-onnx", "radiomicnet-onnx-int8")
COLUMNS = ["run_id", *MACHINE_COLUMNS, "images", "size_px", "weights", "model", "batch_size", "repeats", "latency_ms", "ms_per_image", "images_per_s",
           "times_slower_than_e2e_fast", "features_share", "params", "fp32_mb", "peak_rss_mb", "setup_seconds", "note"]
TARGETS = dict(e2e=3.0, unet=10.0, features_share=0.25)

def radiomicnet_parts(checkpoint:str|None, images:list, size:int, model:str|None=None)->tuple:
    "(model, scaler): a shipped model's or the checkpoint's, or a seeded random RadiomicNet with a scaler fitted on the images (speed does not depend on weights)."
    if model:
        net, cfg, _ = load_pretrained(model)
        return net, FeatureScaler.from_state_dict(cfg["scaler"])
    if checkpoint: return load_checkpoint(checkpoint)[:2]
    torch.manual_seed(0)
    batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)
    return create_model("radiomicnet").eval(), FeatureScaler().fit(radiomics_features_torch(batch).numpy())

def end_to_end(pred:Predictor, size:int):
    "fn(uint8 batch at the input size) -> mask: `preprocess` and the predictor's backend, as every command runs them."
    def fn(x):
        inp = preprocess(x.cpu(), size, pred.scaler)
        return pred.outputs(inp.image, inp.radiomics, bs=len(x))["logits"] > 0
    return fn

def int8_predictor(model, cfg:dict, calibration:list, folder:str)->Predictor:
    "The int8 backend of a model in memory, calibrated on `calibration` images (`radiomicnet.infer.predictor.build_int8`)."
    inp = preprocess(calibration, cfg["img_size"], FeatureScaler.from_state_dict(cfg["scaler"]))
    return Predictor(OnnxBackend(build_int8(model, cfg, Path(folder)/"int8.onnx", log=lambda l: None, calibration=inp)), cfg)

def runner(name:str, model, scaler, size:int, device:torch.device, calibration:list):
    "fn(uint8 batch) -> result for the named row, and the module whose parameters it counts (None: none)."
    import tempfile
    cfg = pretrained_cfg("radiomicnet", {}, scaler, dict(img_size=size))
    z = lambda x: scaler.transform(radiomics_features_torch(x))
    net = lambda m: (lambda x: m(x.float() / 255, z_fixed(x)))   # the network alone: features precomputed per batch (see z_fixed)
    cache = {}
    def z_fixed(x):
        if x.shape[0] not in cache: cache[x.shape[0]] = z(x).float()
        return cache[x.shape[0]]
    if name == "radiomicnet-e2e": return end_to_end(Predictor.from_model(model, size, scaler, device=device), size), model
    if name == "radiomicnet-e2e-fast":
        if device.type != "cpu": return end_to_end(Predictor.from_model(model, size, scaler, device=device), size), model
        return end_to_end(int8_predictor(model, cfg, calibration, tempfile.mkdtemp()), size), model
    if name == "radiomicnet-local-e2e":   # random weights time the same; the windows' statistics from the calibration images
        torch.manual_seed(0)
        local = create_model("radiomicnet", **VARIANTS["rag_local"]["model"]).eval()
        local.fit_local_scaler(torch.from_numpy(np.stack(calibration)).permute(0, 3, 1, 2))
        return end_to_end(Predictor.from_model(local, size, scaler, device=device), size), local
    if name == "radiomicnet-features": return z, None
    if name == "radiomicnet-features-1thread": return (lambda x: scaler.transform(radiomics_of(x))), None
    if name == "radiomicnet": return torch.no_grad()(net(model)), model
    if name in ("unet", "unetpp", "ukan"):
        base = create_model(name).eval().to(device); return torch.no_grad()(lambda x: base(x.float() / 255)), base
    if name == "radiomicnet-channels-last":
        cl = model.to(memory_format=torch.channels_last)
        return torch.inference_mode()(lambda x: cl(x.float().div(255).contiguous(memory_format=torch.channels_last), z_fixed(x))), model
    if name == "radiomicnet-bf16":
        def bf16(x):
            with torch.no_grad(), torch.autocast(device.type, torch.bfloat16): return model(x.float() / 255, z_fixed(x))
        return bf16, model
    if name == "radiomicnet-int8-dynamic":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            q = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        return torch.no_grad()(net(q)), model
    if name in ("radiomicnet-onnx", "radiomicnet-onnx-int8"):   # the network alone, features precomputed
        if name.endswith("int8"): backend = int8_predictor(model, cfg, calibration, tempfile.mkdtemp()).backend
        else: backend = OnnxBackend(export_network(model, cfg, Path(tempfile.mkdtemp())/"fp32.onnx"))
        return (lambda x: backend(x.float() / 255, z_fixed(x))), model
    if name == "radiomicnet-compile":
        compiled = torch.compile(model)
        return torch.no_grad()(lambda x: compiled(x.float() / 255, z_fixed(x))), model
    raise RadiomicNetError(f"unknown model {name!r}: choose from {', '.join(MODELS + TRIED + ('radiomicnet-compile',))}")

def median_seconds(fn, x, sync, warmup:int, min_repeats:int, max_repeats:int, min_seconds:float)->tuple:
    "(median seconds of fn(x), repetitions): `warmup` untimed calls, then at least `min_repeats` and `min_seconds`, at most `max_repeats`."
    for _ in range(warmup): fn(x); sync()
    times, stop = [], time.perf_counter() + min_seconds
    while len(times) < min_repeats or (time.perf_counter() < stop and len(times) < max_repeats):
        t = time.perf_counter(); fn(x); sync(); times.append(time.perf_counter() - t)
    return float(np.median(times)), len(times)

def measure_one(name:str, args:dict)->list:
    "Rows of one model at every batch size (run in its own process)."
    device = torch.device(args["device"])
    if args["threads"]: torch.set_num_threads(args["threads"])
    images, source = bench_images(max(args["batch_sizes"]) + args["calibration"], args["size"], resolve_data_dir(args["data_dir"]))
    timed_images, calibration = images[:max(args["batch_sizes"])], images[max(args["batch_sizes"]):]
    model, scaler = radiomicnet_parts(args["checkpoint"], images, args["size"], args.get("model"))
    model = model.to(device)
    t0 = time.perf_counter()
    fn, module = runner(name, model, scaler, args["size"], device, calibration)
    setup = time.perf_counter() - t0
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    params = sum(p.numel() for p in module.parameters()) if module is not None else 0
    rows = []
    for bs in args["batch_sizes"]:
        x = torch.from_numpy(np.stack(timed_images[:bs])).permute(0, 3, 1, 2).contiguous().to(device)
        seconds, repeats = median_seconds(fn, x, sync, args["warmup"], args["min_repeats"], args["max_repeats"], args["min_seconds"])
        rows.append(dict(images=source, size_px=args["size"], weights=args.get("model") or args["checkpoint"] or "random", model=name, batch_size=bs, repeats=repeats, latency_ms=round(1e3 * seconds, 3),
                         ms_per_image=round(1e3 * seconds / bs, 3), images_per_s=round(bs / seconds, 2), params=params,
                         fp32_mb=round(4 * params / 2**20, 2), setup_seconds=round(setup, 2)))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # KiB on Linux
    for r in rows: r.update(peak_rss_mb=round(peak, 1), torch_threads=torch.get_num_threads())
    return rows

def add_ratios(rows:list)->list:
    "Fill `times_slower_than_e2e_fast` and, for the end-to-end rows, `features_share`, per batch size."
    at = {(r["model"], r["batch_size"]): float(r["latency_ms"]) for r in rows if r.get("latency_ms") not in (None, "")}
    for r in rows:
        fast, own = at.get(("radiomicnet-e2e-fast", r["batch_size"])), at.get((r["model"], r["batch_size"]))
        feats = at.get(("radiomicnet-features", r["batch_size"]))         # the features as each end-to-end path computes them
        if r["model"] == "radiomicnet-e2e-fast": feats = at.get(("radiomicnet-features-1thread", r["batch_size"]), feats)
        if fast and own: r["times_slower_than_e2e_fast"] = round(own / fast, 2)
        if feats and own and r["model"].startswith("radiomicnet-e2e"): r["features_share"] = round(feats / own, 3)
    return rows

def report(rows:list):
    "Print the table and the ratios against the targets."
    for r in rows:
        print(f"{r['model']:<28} bs {r['batch_size']:>3}  {r.get('latency_ms', ''):>10} ms  {r.get('images_per_s', ''):>9} img/s  "
              f"x{r.get('times_slower_than_e2e_fast', '')}  {r.get('note', '')}")
    at = {(r["model"], r["batch_size"]): r for r in rows if r.get("latency_ms") not in (None, "")}
    for bs in sorted({r["batch_size"] for r in rows}):
        fast = at.get(("radiomicnet-e2e-fast", bs))
        if not fast: continue
        for other, target in (("radiomicnet-e2e", TARGETS["e2e"]), ("unet", TARGETS["unet"])):
            if (other, bs) in at:
                ratio = at[(other, bs)]["latency_ms"] / fast["latency_ms"]
                print(f"batch {bs}: radiomicnet-e2e-fast is {ratio:.2f}x faster than {other} (target >= {target}x: {'met' if ratio >= target else 'NOT met'})")
        for e2e in ("radiomicnet-e2e", "radiomicnet-e2e-fast"):
            share = at.get((e2e, bs), {}).get("features_share")
            if share not in (None, ""):
                print(f"batch {bs}: features are {100 * share:.0f}% of {e2e} (target <= {100 * TARGETS['features_share']:.0f}%: "
                      f"{'met' if share <= TARGETS['features_share'] else 'NOT met'})")

@call_parse
@cli_errors
def main(device:str="cpu",     # Torch device: cpu | cuda
         size:int=None,        # Image side (the network input; default: --model's input size, else 256)
         batch_sizes:str=None, # Comma-separated batch sizes (default: 1,4,16 on the CPU, 1,8,64 on CUDA)
         models:str=None,      # Comma-separated rows to measure (default: all models and the tried variants)
         compile:bool=False,   # Also try torch.compile (minutes of compilation on a CPU)
         warmup:int=2,         # Untimed calls before timing
         min_repeats:int=5,    # Timed calls at least
         max_repeats:int=50,   # Timed calls at most
         min_seconds:float=3., # Keep timing at least this long (up to max_repeats)
         calibration:int=16,   # Images that calibrate int8 (distinct from the timed ones)
         threads:int=0,        # torch.set_num_threads (0: torch's default)
         checkpoint:str=None,  # A RadiomicNet checkpoint (default: random weights, which time the same)
         model:str=None,       # A shipped model by name (radiomicnet-models), instead of --checkpoint
         data_dir:str=None,    # Folder holding BUSI/ and Kvasir-SEG/ (default: resolve_data_dir(); else synthetic images)
         out:str=None,         # CSV (default: bench/results/inference-<device>.csv)
         only:str=None,        # Internal: measure this one model and print its rows as JSON
         settings:str=None,    # Internal: the parent's settings, as JSON
        ):
    "Time every model in its own process at each batch size; write the rows and print the ratios."
    if only: return print(json.dumps(measure_one(only, json.loads(settings))))
    if device.startswith("cuda") and not torch.cuda.is_available(): raise DataError(f"device {device}: CUDA is not available here")
    cuda = device.startswith("cuda")
    if size is None: size = read_config(pretrained_folder(model))["img_size"] if model else 256
    args = dict(device=device, size=size, batch_sizes=[int(b) for b in (batch_sizes or ("1,8,64" if cuda else "1,4,16")).split(",")],
                warmup=warmup, min_repeats=min_repeats, max_repeats=max_repeats, min_seconds=min_seconds, calibration=calibration,
                threads=threads, checkpoint=checkpoint, data_dir=data_dir, model=model)
    names = models.split(",") if models else [*MODELS, *TRIED, *(["radiomicnet-compile"] if compile else [])]
    run_id, before, rows = datetime.now(timezone.utc).isoformat(timespec="seconds"), load_average(), []
    for name in names:
        print(f"measuring {name} ...", flush=True)
        done = subprocess.run([sys.executable, __file__, "--only", name, "--settings", json.dumps(args)], capture_output=True, text=True)
        lines = done.stdout.strip().splitlines()
        if done.returncode or not lines:   # a variant that fails here (e.g. no compiler for torch.compile) is recorded, not fatal
            why = (done.stderr.strip().splitlines() or ["no output"])[-1][:200]
            print(f"  {name} failed: {why}")
            rows += [dict(model=name, batch_size=bs, size_px=size, note=f"failed: {why}") for bs in args["batch_sizes"]]
        else: rows += json.loads(lines[-1])
    after = load_average()   # the machine columns describe the whole run: its own load would taint a per-model "before"
    machine = machine_row(device, before, after, threads or torch.get_num_threads())
    rows = add_ratios([{**machine, **r, "run_id": run_id} for r in rows])
    path = Path(out or RESULTS_DIR/f"inference-{'cuda' if cuda else 'cpu'}.csv")
    append_rows(path, rows, COLUMNS)
    report(rows)
    print(f"load average: {before:.2f} before, {after:.2f} after")
    warn_if_unreliable(before, after, threads or torch.get_num_threads())
    print(f"appended {len(rows)} rows to {path}")
