#!/usr/bin/env python
"""What horizontal-flip test-time augmentation costs per image: the network's prediction with and without `--tta`.

`radiomicnet-evaluate --tta` records `ms_per_image` for the whole split, and that time includes loading the checkpoint and
the split's images (the `tta.csv` table's `ms_plain` and `ms_tta` columns), so the prediction itself is a small part of it.
This bench times `radiomicnet.eval.evaluate.predict_probs` alone, on the same images in memory, with `tta=False` and `tta=True`:
each timing is the median of `--repeats` passes over the images after one warm-up pass.

Writes bench/results/tta-cost.csv (older rows kept) with the machine and its load (bench/common.py), and prints the ms per
image of each and their ratio. TTA runs the network twice, so the expected ratio is close to 2.

    python bench/tta_cost.py                           # a random RadiomicNet (speed does not depend on the weights), 192 px
    python bench/tta_cost.py --checkpoint runs/x/best.pt --size 192
"""
import os
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see bench/features.py: busy-waiting threads crawl on a shared machine
import torch
from fastcore.script import call_parse
from radiomicnet.core import cli_errors, resolve_data_dir
from radiomicnet.eval.evaluate import predict_probs
from radiomicnet.infer.predictor import preprocess
from common import MACHINE_COLUMNS, RESULTS_DIR, append_rows, bench_images, load_average, machine_row, warn_if_unreliable
from inference import median_seconds, radiomicnet_parts

COLUMNS = [*MACHINE_COLUMNS, "images", "source", "size_px", "batch_size", "repeats", "checkpoint", "ms_per_image_plain",
           "ms_per_image_tta", "tta_over_plain"]

@call_parse
@cli_errors
def main(checkpoint:str=None, # A `best.pt` (default: a seeded random RadiomicNet: speed does not depend on the weights)
         size:int=192,        # Input size in pixels (192: the `long` protocol)
         n:int=32,            # Images, half BUSI and half Kvasir-SEG when the data are found (else synthetic textures)
         bs:int=8,            # Images per forward pass, as `radiomicnet-evaluate`
         repeats:int=5,       # Timed passes per setting (the median is kept)
         data_dir:str=None,   # Folder holding BUSI/ and Kvasir-SEG/ (default: $RADIOMICNET_DATA)
        ):
    "Time the prediction of `n` images with and without horizontal-flip TTA; print both and their ratio, and append a row."
    images, source = bench_images(n, size, resolve_data_dir(data_dir))  # no data there: synthetic textures, said in `source`
    model, scaler = radiomicnet_parts(checkpoint, images, size)
    x = preprocess(images, size, scaler)
    ms = lambda tta: 1000 * median_seconds(lambda img: predict_probs(model, img, x.radiomics, bs, "cpu", tta=tta), x.image, lambda: None,
                                           warmup=1, min_repeats=repeats, max_repeats=repeats, min_seconds=0)[0] / n
    before = load_average()
    plain, tta = ms(False), ms(True)
    after = load_average()
    warn_if_unreliable(before, after, torch.get_num_threads())
    row = dict(machine_row("cpu", before, after, torch.get_num_threads()), images=n, source=source, size_px=size, batch_size=bs,
               repeats=repeats, checkpoint=checkpoint or "random weights", ms_per_image_plain=f"{plain:.2f}", ms_per_image_tta=f"{tta:.2f}",
               tta_over_plain=f"{tta / plain:.2f}")
    append_rows(RESULTS_DIR/"tta-cost.csv", [row], COLUMNS)
    print(f"{size} px, {n} {source} images, batch {bs}: {plain:.1f} ms per image without TTA, {tta:.1f} with; TTA costs {tta / plain:.2f}x "
          f"(load {before:.2f} before, {after:.2f} after) -> {RESULTS_DIR/'tta-cost.csv'}")
