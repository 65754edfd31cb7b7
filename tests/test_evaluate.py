"Cross-checks and bad-input tests of radiomicnet.eval.scores and radiomicnet.eval.evaluate (the notebooks 15_scores and 16_evaluation show the known answers)."
import numpy as np
import pandas as pd
import pytest
import torch
from scipy import ndimage, stats
from scipy.spatial.distance import cdist
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from radiomicnet.core import RadiomicNetError
from radiomicnet.eval.metrics import METRICS, confusion_counts, ratio_metrics
from radiomicnet.eval.scores import (segmentation_metrics, bootstrap_ci,
                                     summarize, paired_wilcoxon, CalibrationAccumulator, expected_calibration_error,
                                     reliability_diagram, hd95)

def _blobs(n, h=40, w=36, seed=0, p=0.5):
    "Random smooth-ish binary masks."
    rng = np.random.default_rng(seed)
    return ndimage.binary_opening(ndimage.gaussian_filter(rng.random((n, h, w)), (0, 2, 2)) > p, np.ones((1, 3, 3)))

def _probs(masks, seed=1):
    rng = np.random.default_rng(seed)
    return np.clip(np.where(masks, 0.8, 0.2) + rng.normal(0, 0.25, masks.shape), 0, 1)

# --- confusion counts and ratios -------------------------------------------------------------------

def test_counts_match_a_plain_loop_and_input_kinds():
    masks = _blobs(6, p=0.5); probs = _probs(masks)
    counts = confusion_counts(probs, masks)
    for i in range(6):
        pred, true = probs[i] > 0.5, masks[i]
        assert counts["tp"][i] == (pred & true).sum() and counts["tn"][i] == (~pred & ~true).sum()
        assert counts["fp"][i] == (pred & ~true).sum() and counts["fn"][i] == (~pred & true).sum()
    as_torch = confusion_counts(torch.from_numpy(probs).float()[:, None], torch.from_numpy(masks).float()[:, None])
    as_bool = confusion_counts(probs > 0.5, masks)
    for k in counts:
        np.testing.assert_array_equal(as_torch[k], counts[k]); np.testing.assert_array_equal(as_bool[k], counts[k])
    single = confusion_counts(probs[0], masks[0])
    assert {k: v.tolist() for k, v in single.items()} == {k: [v[0]] for k, v in counts.items()}

def test_probability_exactly_half_is_background():
    counts = confusion_counts(np.array([[0.5, 0.500001]]), np.array([[1, 1]]))
    assert counts["tp"].tolist() == [1] and counts["fn"].tolist() == [1]

def test_ratios_match_formulas_when_defined():
    masks = _blobs(8, seed=3); probs = _probs(masks, seed=4)
    table = segmentation_metrics(probs, masks)
    tp, fp, fn, tn = (table[k].to_numpy(float) for k in ("tp", "fp", "fn", "tn"))
    assert (tp > 0).all() and (tn > 0).all()
    np.testing.assert_allclose(table.dsc, 2 * tp / (2 * tp + fp + fn))
    np.testing.assert_allclose(table.iou, tp / (tp + fp + fn))
    np.testing.assert_allclose(table.precision, tp / (tp + fp))
    np.testing.assert_allclose(table.recall, tp / (tp + fn))
    np.testing.assert_allclose(table.specificity, tn / (tn + fp))
    np.testing.assert_allclose(table.dsc, 2 * table.iou / (1 + table.iou))

@pytest.mark.parametrize("mask,pred,expected", [
    # mask, prediction (2x2 images), then dsc, iou, precision, recall, specificity
    ([[0, 0], [0, 0]], [[0, 0], [0, 0]], [1, 1, 1, 1, 1]),
    ([[0, 0], [0, 0]], [[0, 1], [0, 0]], [0, 0, 0, 0, 0.75]),
    ([[1, 0], [0, 0]], [[0, 0], [0, 0]], [0, 0, 0, 0, 1]),
    ([[1, 1], [1, 1]], [[1, 1], [1, 1]], [1, 1, 1, 1, 1]),
    ([[1, 1], [1, 1]], [[1, 1], [1, 0]], [6 / 7, 0.75, 1, 0.75, 0]),
])
def test_degenerate_cases(mask, pred, expected):
    row = segmentation_metrics(np.array(pred, float), np.array(mask, float)).iloc[0]
    np.testing.assert_allclose(row[list(METRICS)].to_numpy(float), expected)

@pytest.mark.parametrize("shape", [(5,), (2, 3, 4, 4), (1, 1, 1, 4, 4)])
def test_bad_shapes(shape):
    with pytest.raises(RadiomicNetError, match=r"must be \(H,W\), \(B,H,W\) or \(B,1,H,W\)"):
        confusion_counts(np.zeros(shape), np.zeros(shape))

def test_shape_mismatch():
    with pytest.raises(RadiomicNetError, match=r"probs \(2, 4, 4\) and masks \(2, 4, 5\) differ"):
        segmentation_metrics(np.zeros((2, 4, 4)), np.zeros((2, 4, 5)))

@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_inputs():
    masks = _blobs(3); probs = _probs(masks)
    cpu = segmentation_metrics(probs, masks)
    gpu = segmentation_metrics(torch.from_numpy(probs).cuda(), torch.from_numpy(masks).cuda())
    pd.testing.assert_frame_equal(cpu, gpu)
    acc = CalibrationAccumulator().update(torch.from_numpy(probs).cuda(), torch.from_numpy(masks).cuda())
    assert acc.ece == pytest.approx(expected_calibration_error(probs, masks), abs=1e-12)

# --- summary and bootstrap -------------------------------------------------------------------------

def test_bootstrap_is_seeded_and_uses_default_rng():
    vals = np.random.default_rng(5).random(50)
    assert bootstrap_ci(vals, seed=1) == bootstrap_ci(vals, seed=1) != bootstrap_ci(vals, seed=2)
    ref = stats.bootstrap((vals,), np.mean, n_resamples=10_000, method="percentile", rng=np.random.default_rng(0))
    assert bootstrap_ci(vals) == (ref.confidence_interval.low, ref.confidence_interval.high)
    narrow = bootstrap_ci(vals, level=0.5)
    assert bootstrap_ci(vals)[0] < narrow[0] < narrow[1] < bootstrap_ci(vals)[1]

def test_summarize_columns_and_ci_metrics():
    table = segmentation_metrics(_probs(_blobs(12)), _blobs(12))
    s = summarize(table, ci_metrics=("dsc", "iou"))
    assert list(s.columns) == ["n", "mean", "std", "mean_std", "ci95_low", "ci95_high"]
    assert s.loc["iou", "ci95_low"] < s.loc["iou", "mean"] < s.loc["iou", "ci95_high"]
    assert s.loc["recall", ["ci95_low", "ci95_high"]].isna().all()
    assert s.loc["dsc", "mean_std"] == f"{table.dsc.mean():.3f} ± {table.dsc.std():.3f}"
    assert list(summarize(table, metrics=["dsc"]).index) == ["dsc"]

def test_summarize_one_image():
    s = summarize(segmentation_metrics(np.ones((4, 4)), np.ones((4, 4))))
    assert s.loc["dsc", "n"] == 1 and s.loc["dsc", "mean"] == 1
    assert np.isnan(s.loc["dsc", ["std", "ci95_low", "ci95_high"]].to_numpy(float)).all()

# --- Wilcoxon --------------------------------------------------------------------------------------

def _tables(n=30, seed=0):
    rng = np.random.default_rng(seed)
    ids = [f"case_{i:03d}.png" for i in range(n)]
    a = pd.DataFrame(dict(image_id=ids, dsc=rng.beta(6, 2, n)))
    return a, a.assign(dsc=np.clip(a.dsc - rng.normal(0.03, 0.05, n), 0, 1))

def test_wilcoxon_matches_scipy_and_ignores_order():
    a, b = _tables()
    res = paired_wilcoxon(a, b.sample(frac=1, random_state=0))
    ref = stats.wilcoxon(a.dsc, b.dsc)
    assert res["p_value"] == pytest.approx(ref.pvalue) and res["statistic"] == pytest.approx(ref.statistic)
    assert res["n"] == 30 and res["mean_diff"] == pytest.approx((a.dsc - b.dsc).mean())
    assert paired_wilcoxon(b, a)["p_value"] == pytest.approx(res["p_value"])     # two-sided

def test_wilcoxon_id_errors_name_the_ids():
    a, b = _tables()
    with pytest.raises(RadiomicNetError, match=r"only in A 1 \(case_029.png\), only in B 0 \(\)"):
        paired_wilcoxon(a, b.iloc[:-1])
    with pytest.raises(RadiomicNetError, match=r"only in A 0 \(\), only in B 8 \(x0, x1, x2, x3, x4, \.\.\.\)"):
        paired_wilcoxon(a, pd.concat([b, pd.DataFrame(dict(image_id=[f"x{i}" for i in range(8)], dsc=0.5))]))
    with pytest.raises(RadiomicNetError, match=r"table B repeats image ids 1 \(case_000.png\)"):
        paired_wilcoxon(a, pd.concat([b, b.iloc[:1]]))

def test_wilcoxon_drops_nan_pairs():
    a, b = _tables()
    a = a.assign(hd95=np.arange(30.0)); b = b.assign(hd95=np.arange(30.0) + 1)
    a.loc[3, "hd95"] = np.nan
    res = paired_wilcoxon(a, b, metric="hd95")
    assert res["n"] == 29 and res["mean_diff"] == -1 and res["p_value"] < 1e-5

# --- ECE -------------------------------------------------------------------------------------------

def _calib_data(seed=0, n=6, size=24):
    rng = np.random.default_rng(seed)
    probs = rng.beta(0.4, 0.4, (n, size, size))
    masks = rng.random(probs.shape) < probs ** 0.7
    return probs, masks

def test_ece_matches_torchmetrics_top_label():
    "torchmetrics' multiclass ECE on (1-p, p) is the top-label definition: it must agree with ours."
    from torchmetrics.classification import MulticlassCalibrationError
    probs, masks = _calib_data()
    p = torch.from_numpy(probs).flatten()
    metric = MulticlassCalibrationError(num_classes=2, n_bins=15, norm="l1")
    ref = metric(torch.stack([1 - p, p], dim=1).double(), torch.from_numpy(masks).flatten().long())
    assert expected_calibration_error(probs, masks) == pytest.approx(ref.item(), abs=1e-6)

def test_torchmetrics_binary_calibration_error_is_another_quantity():
    "BinaryCalibrationError bins p (not max(p,1-p)) against the positive rate: our ECE differs from it."
    from torchmetrics.classification import BinaryCalibrationError
    probs, masks = _calib_data()
    binary = BinaryCalibrationError(n_bins=15)(torch.from_numpy(probs).flatten(), torch.from_numpy(masks).flatten().long())
    assert abs(binary.item() - expected_calibration_error(probs, masks)) > 1e-3

def test_ece_accumulates_over_batches_and_kinds():
    probs, masks = _calib_data(n=7)
    acc = CalibrationAccumulator()
    for i in range(7): acc.update(torch.from_numpy(probs[i:i + 1, None]).float(), torch.from_numpy(masks[i:i + 1, None]))
    whole = CalibrationAccumulator().update(torch.from_numpy(probs).float(), masks)
    assert acc.ece == pytest.approx(whole.ece, abs=1e-12)
    np.testing.assert_array_equal(acc.count, whole.count)
    assert acc.count.sum() == probs.size

def test_ece_edges_and_extremes():
    acc = CalibrationAccumulator().update(np.array([[0.0, 1.0, 0.5, 0.7]]), np.array([[0, 1, 1, 0]]))
    t = acc.table()
    assert t["count"].tolist() == [0] * 7 + [1, 0, 0, 1, 0, 0, 0, 2]     # 0.5 -> bin [7/15, 8/15); 0 and 1 -> last
    assert t.accuracy[14] == 1 and t.accuracy[7] == 0 and t.accuracy[10] == 0
    assert acc.ece == pytest.approx((0.5 + 0.7) / 4)
    assert expected_calibration_error(np.array([[0.0, 1.0]]), np.array([[0, 1]])) == 0

def test_reliability_diagram_returns_figure():
    probs, masks = _calib_data()
    fig = reliability_diagram(CalibrationAccumulator().update(probs, masks))
    assert isinstance(fig, plt.Figure) and "ECE" in fig.axes[0].get_title()
    plt.close(fig)
    with pytest.raises(RadiomicNetError, match="no pixels seen"):
        reliability_diagram(CalibrationAccumulator())

# --- HD95 ------------------------------------------------------------------------------------------

def _hd95_reference(a, b):
    "Brute force: boundary pixels by 4-neighbour erosion, all pairwise distances, max of the directed 95th percentiles."
    def boundary(m):
        padded = np.pad(m, 1)
        interior = padded[1:-1, 1:-1] & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
        return np.argwhere(m & ~interior)
    d = cdist(boundary(a), boundary(b))
    return max(np.percentile(d.min(1), 95), np.percentile(d.min(0), 95))

@pytest.mark.parametrize("seed", range(4))
def test_hd95_matches_brute_force(seed):
    pred, true = _blobs(1, seed=seed)[0], _blobs(1, seed=seed + 10)[0]
    assert pred.any() and true.any()
    assert hd95(pred, true) == pytest.approx(_hd95_reference(pred, true))
    assert hd95(pred, true) == pytest.approx(hd95(true, pred))

def test_hd95_known_shapes():
    big = np.zeros((30, 30), bool); big[5:25, 5:25] = True
    small = np.zeros_like(big); small[8:22, 8:22] = True                # 3 px inside on every side
    assert 3 <= hd95(big, small) <= 3 * np.sqrt(2)
    assert hd95(big, small) == pytest.approx(_hd95_reference(big, small))
    full = np.ones((10, 10), bool)
    assert hd95(full, full) == 0                                       # image edge is the boundary of a full mask
    lines = np.zeros((2, 12, 12), bool); lines[0, 2, 1:11] = True; lines[1, 9, 1:11] = True
    assert hd95(lines[0], lines[1]) == 7

def test_hd95_empty_is_nan_and_in_table():
    m = _blobs(2)
    table = segmentation_metrics(np.stack([m[0], np.zeros_like(m[0])]), np.stack([m[0], m[1]]), with_hd95=True)
    assert table.hd95[0] == 0 and np.isnan(table.hd95[1])
    assert np.isnan(hd95(np.zeros((5, 5)), np.zeros((5, 5))))
    assert summarize(table).loc["hd95", "n"] == 1

# --- any folder: evaluate_folder and radiomicnet-evaluate (checkpoint: conftest's tiny synthetic run) ------------------

import json, os, shutil, subprocess
from pathlib import Path
from PIL import Image
from radiomicnet.core import DataError
from radiomicnet.data.images import synthetic_pair
from radiomicnet.data.datasets import load_split
from radiomicnet.eval.evaluate import evaluate_folder

def _folder(root, n=3, size=(40, 56)):
    "A folder of `n` synthetic image/mask pairs, images/ and masks/ as PNG."
    for sub in ("images", "masks"): (root/sub).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        image, mask = synthetic_pair(50 + i, size)
        Image.fromarray(image).save(root/"images"/f"case{i}.png"); Image.fromarray(mask).save(root/"masks"/f"case{i}.png")
    return root

def _evaluate(ckpt, folder, out, **kw):
    lines = []
    result = evaluate_folder(ckpt, folder, out, device="cpu", n_resamples=200, log=lines.append, cache_dir=out.parent/"cache", **kw)
    return result, lines

def test_image_without_a_mask_is_refused_and_the_others_go_on(tiny_checkpoint, tmp_path):
    folder = _folder(tmp_path/"f")
    Image.fromarray(synthetic_pair(9, 32)[0]).save(folder/"images"/"lonely.jpg")
    result, lines = _evaluate(tiny_checkpoint, folder, tmp_path/"out")
    assert lines == [f"refused: {folder/'images'/'lonely.jpg'}: no mask file for this image "
                     "(expected 'images/name.png' with 'masks/name.png' (PNG/JPG/JPEG/BMP/TIF/TIFF/DCM/DICOM))"]
    assert sorted(result["table"].image_id) == ["case0", "case1", "case2"]
    assert result["metrics"]["n_images"] == 3 and result["metrics"]["n_refused"] == 1
    assert (tmp_path/"out"/"refused.txt").read_text() == lines[0].removeprefix("refused: ") + "\n"

def test_mask_of_another_size_is_refused(tiny_checkpoint, tmp_path):
    folder = _folder(tmp_path/"f")
    Image.fromarray(synthetic_pair(51, (20, 28))[1]).save(folder/"masks"/"case1.png")
    result, lines = _evaluate(tiny_checkpoint, folder, tmp_path/"out")
    assert len(lines) == 1 and lines[0].startswith(f"refused: {folder/'masks'/'case1.png'}: mask is 28x20 pixels but its image")
    assert sorted(result["table"].image_id) == ["case0", "case2"]

@pytest.mark.parametrize("broken", ["images/case0.png", "masks/case2.png"])
def test_unreadable_file_is_refused(tiny_checkpoint, tmp_path, broken):
    folder = _folder(tmp_path/"f")
    (folder/broken).write_bytes((folder/broken).read_bytes()[:60])           # truncated
    result, lines = _evaluate(tiny_checkpoint, folder, tmp_path/"out")
    assert len(lines) == 1 and lines[0].startswith(f"refused: {folder/broken}: unreadable or truncated")
    assert len(result["table"]) == 2

def test_zero_one_label_mask_is_refused_with_the_fix(tiny_checkpoint, tmp_path):
    folder = _folder(tmp_path/"f", n=2)
    Image.fromarray(synthetic_pair(50, (40, 56))[1].astype(np.uint8)).save(folder/"masks"/"case0.png")   # values 0/1
    _, lines = _evaluate(tiny_checkpoint, folder, tmp_path/"out")
    assert lines == [f"refused: {folder/'masks'/'case0.png'}: no mask pixel reaches 128 (the largest is 1): 0/1 labels? pass --mask-threshold 1"]
    result, lines = _evaluate(tiny_checkpoint, folder, tmp_path/"out1", mask_threshold=1)
    assert lines == [] and len(result["table"]) == 2

def test_empty_folder_and_nothing_usable_are_clear_errors(tiny_checkpoint, tmp_path):
    for sub in ("images", "masks"): (tmp_path/"empty"/sub).mkdir(parents=True)
    with pytest.raises(DataError, match=r"empty/images: no images found"): _evaluate(tiny_checkpoint, tmp_path/"empty", tmp_path/"out")
    folder = _folder(tmp_path/"f", n=1)
    (folder/"masks"/"case0.png").unlink()
    with pytest.raises(DataError, match=r"none of its images can be evaluated \(1 files refused\)"): _evaluate(tiny_checkpoint, folder, tmp_path/"out")

def _cli(*args):
    out = Path(str(args[list(args).index("--out") + 1]))   # every call names --out
    env = dict(os.environ, RADIOMICNET_CACHE=str(out.parent/"cache"))   # a cache beside --out, not the user's (nor the working folder)
    return subprocess.run([shutil.which("radiomicnet-evaluate"), *map(str, args), "--device", "cpu"], capture_output=True, text=True, env=env)

def test_cli_reports_each_refused_file_and_the_counts(tiny_checkpoint, tmp_path):
    folder = _folder(tmp_path/"f")
    (folder/"images"/"case1.png").write_bytes(b"not a png")
    Image.fromarray(synthetic_pair(7, 32)[0]).save(folder/"images"/"extra.bmp")
    out = _cli("--checkpoint", tiny_checkpoint, "--images", folder, "--out", tmp_path/"out")
    assert out.returncode == 0, out.stderr
    refused = [l for l in out.stderr.splitlines() if l.startswith("refused: ")]
    assert sorted(refused) == sorted([f"refused: {folder/'images'/'extra.bmp'}: no mask file for this image "
                                      "(expected 'images/name.png' with 'masks/name.png' (PNG/JPG/JPEG/BMP/TIF/TIFF/DCM/DICOM))",
                                      f"refused: {folder/'images'/'case1.png'}: unreadable or truncated image (cannot identify image file "
                                      f"'{folder/'images'/'case1.png'}')"])
    assert out.stdout.splitlines()[-1] == f"evaluated 2 images, refused 2 files; tables and figures in {tmp_path/'out'}"
    empty = tmp_path/"empty"; (empty/"images").mkdir(parents=True); (empty/"masks").mkdir()
    out = _cli("--checkpoint", tiny_checkpoint, "--images", empty, "--out", tmp_path/"out2")
    assert out.returncode == 1 and out.stderr.strip().splitlines()[-1].startswith(f"error: {empty/'images'}: no images found")
    out = _cli("--checkpoint", tiny_checkpoint, "--out", tmp_path/"out2")
    assert out.returncode == 1 and out.stderr.strip() == "error: --images is missing: radiomicnet-evaluate --checkpoint CKPT (or --model NAME) --images FOLDER (or --split test) --out DIR"
    out = _cli("--checkpoint", tiny_checkpoint, "--split", "test", "--images", folder, "--out", tmp_path/"out3")
    assert out.returncode == 1 and out.stderr.strip() == "error: give --images FOLDER or --split SPLIT, not both"

def test_cli_on_kvasir_images_scores_each_at_native_resolution(tiny_checkpoint, tmp_path, data_dir):
    "Real Kvasir-SEG test images in four formats; every count adds up to the image's own pixels and the mask's own foreground."
    samples = load_split("kvasir-seg", "test", data_dir)[:4]
    folder = tmp_path/"kvasir-folder"
    for sub in ("images", "masks"): (folder/sub).mkdir(parents=True)
    for s, ext in zip(samples, (".jpg", ".PNG", ".bmp", ".tiff")):
        Image.open(s.image).convert("RGB").save(folder/"images"/f"{s.id}{ext}")
        shutil.copy(s.masks[0], folder/"masks"/f"{s.id}.jpg")
    out = _cli("--checkpoint", tiny_checkpoint, "--images", folder, "--out", tmp_path/"out")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == f"evaluated 4 images, refused 0 files; tables and figures in {tmp_path/'out'}"
    table = pd.read_csv(tmp_path/"out"/"per_image.csv").set_index("image_id")
    for s in samples:
        with Image.open(s.image) as im: w, h = im.size
        truth = np.asarray(Image.open(s.masks[0]).convert("RGB")).max(axis=-1) >= 128
        row = table.loc[s.id]
        assert row[["tp", "fp", "fn", "tn"]].sum() == w * h and row.tp + row.fn == truth.sum()
    for f in ("summary.csv", "calibration.csv", "reliability.png", "qualitative.png", "refused.txt"): assert (tmp_path/"out"/f).exists()
    metrics = json.loads((tmp_path/"out"/"metrics.json").read_text())
    assert metrics["resolution"] == "native" and metrics["dsc_ci95"][0] <= metrics["dsc_mean"] <= metrics["dsc_ci95"][1]
    assert metrics["dsc_mean"] == pytest.approx(table.dsc.mean())

def test_temperature_scaling_divides_the_logits_by_the_checkpoints_T(tiny_checkpoint, tmp_path):
    """A huge T read from temperature.json puts every probability just above or below 1/2: at the model's own input size
    (no resampling) the masks, the sign of the logits, do not change, and with all confidences in the lowest bin the
    pooled ECE is |pixel accuracy - 1/2|."""
    ckpt = tmp_path/"run"/"best.pt"; ckpt.parent.mkdir(); shutil.copy(tiny_checkpoint, ckpt)
    (ckpt.parent/"temperature.json").write_text(json.dumps(dict(temperature=1e6)))
    folder = _folder(tmp_path/"f", n=4, size=(64, 64))  # the tiny checkpoint's input size
    plain, _ = _evaluate(ckpt, folder, tmp_path/"plain")
    out = _cli("--checkpoint", ckpt, "--images", folder, "--out", tmp_path/"ts", "--temperature-scaling")
    assert out.returncode == 0, out.stderr
    metrics = json.loads((tmp_path/"ts"/"metrics.json").read_text())
    assert metrics["temperature"] == 1e6 and plain["metrics"]["temperature"] == 1.0
    scaled = pd.read_csv(tmp_path/"ts"/"per_image.csv").set_index("image_id")
    counts = plain["table"].set_index("image_id")[["tp", "fp", "fn", "tn"]]
    pd.testing.assert_frame_equal(scaled[["tp", "fp", "fn", "tn"]].loc[counts.index], counts, check_dtype=False)
    t = counts.sum()
    assert metrics["ece"] == pytest.approx(abs((t.tp + t.tn) / t.sum() - 0.5), abs=1e-4)
    assert plain["metrics"]["ece"] != pytest.approx(metrics["ece"], abs=1e-3)

def test_cli_fast_scores_the_int8_network_cached_beside_the_checkpoint(tiny_checkpoint, tmp_path):
    "--fast: the int8 network (quantised once, cached by the checkpoint's hash) scores nearly as the plain path on the same files."
    from radiomicnet.infer.predictor import int8_cache_path
    ckpt = tmp_path/"run"/"best.pt"; ckpt.parent.mkdir(); shutil.copy(tiny_checkpoint, ckpt)  # its own folder: a cache of its own
    folder = _folder(tmp_path/"f", n=4)
    plain = _cli("--checkpoint", ckpt, "--images", folder, "--out", tmp_path/"plain")
    first = _cli("--fast", "--checkpoint", ckpt, "--images", folder, "--out", tmp_path/"fast")
    assert plain.returncode == 0 and first.returncode == 0, first.stderr
    assert f"quantising {ckpt} to int8 (once; cached as {int8_cache_path(ckpt).name})" in first.stderr and int8_cache_path(ckpt).is_file()
    again = _cli("--fast", "--checkpoint", ckpt, "--images", folder, "--out", tmp_path/"fast2")
    assert again.returncode == 0 and "quantising" not in again.stderr
    p, f = (json.loads((tmp_path/d/"metrics.json").read_text()) for d in ("plain", "fast"))
    assert (p["network"], f["network"]) == ("torch", "int8 ONNX") and abs(p["dsc_mean"] - f["dsc_mean"]) < 0.05
