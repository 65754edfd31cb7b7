"""The fast predictor against the plain one on genuine BUSI and Kvasir-SEG test images: the int8 masks may differ on at most
`MASK_TOLERANCE` of each image's pixels, and the mean Dice against the ground truth may move by at most `DSC_TOLERANCE`.

The network is a trained checkpoint: $RADIOMICNET_CHECKPOINT when set (e.g. a run's best.pt), else a short run on synthetic data."""
import os
from pathlib import Path
import numpy as np, pytest, torch
from radiomicnet import train
from radiomicnet.data import load_split
from radiomicnet.metrics import confusion_counts, ratio_metrics
from radiomicnet.model import Segmenter
from radiomicnet.fast import DSC_TOLERANCE, MASK_TOLERANCE, FastSegmenter

N_TEST, N_CALIBRATION = 6, 8  # images of each data set

@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    if os.environ.get("RADIOMICNET_CHECKPOINT"): return Path(os.environ["RADIOMICNET_CHECKPOINT"])
    out = tmp_path_factory.mktemp("run")
    train.train_run(dataset="synthetic", img_size=64, bs=8, subset=16, epochs=3, seed=0, out_dir=out, device="cpu")
    return out/"best.pt"

@pytest.fixture(scope="module")
def samples(data_dir):
    return {ds: dict(test=load_split(ds, "test", data_dir)[:N_TEST], train=load_split(ds, "train", data_dir)[:N_CALIBRATION])
            for ds in ("busi", "kvasir-seg")}

@pytest.fixture(scope="module")
def segmenters(checkpoint, samples):
    calibration = [s.load()[0] for ds in samples.values() for s in ds["train"]]
    return Segmenter.from_checkpoint(checkpoint), FastSegmenter.from_checkpoint(checkpoint), FastSegmenter.from_checkpoint(checkpoint, calibration=calibration)

def test_fp32_onnx_runtime_gives_torchs_probabilities(segmenters, samples):
    plain, fp32, _ = segmenters
    for ds in samples.values():
        for s in ds["test"]:
            image = s.load()[0]
            np.testing.assert_allclose(fp32.predict_proba(image), plain.predict_proba(image), atol=1e-4)

@pytest.mark.parametrize("dataset", ["busi", "kvasir-seg"])
def test_int8_masks_agree_with_the_plain_path(segmenters, samples, dataset):
    plain, _, int8 = segmenters
    assert int8.int8
    dsc_plain, dsc_int8 = [], []
    for s in samples[dataset]["test"]:
        image, truth = s.load()
        a, b = plain.predict(image), int8.predict(image)
        assert (a != b).mean() <= MASK_TOLERANCE, f"{s.id}: {100 * (a != b).mean():.2f}% of the pixels differ"
        dsc_plain.append(ratio_metrics(confusion_counts(torch.from_numpy(a), torch.from_numpy(truth > 0)))["dsc"][0])
        dsc_int8.append(ratio_metrics(confusion_counts(torch.from_numpy(b), torch.from_numpy(truth > 0)))["dsc"][0])
    assert abs(np.mean(dsc_int8) - np.mean(dsc_plain)) <= DSC_TOLERANCE, (np.mean(dsc_plain), np.mean(dsc_int8))
