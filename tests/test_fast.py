"""The fast backends against the torch one on genuine BUSI and Kvasir-SEG test images: ONNX Runtime fp32 gives torch's
probabilities, and the int8 masks differ on at most `INT8_MASK_TOLERANCE` of each image's pixels.

The network is a trained checkpoint: $RADIOMICNET_CHECKPOINT when set (e.g. a run's best.pt), else a short run on synthetic data.
int8 is calibrated on real training images of both data sets, so the ranges it learns are those of the images it is tested on."""
import os, tempfile
from pathlib import Path
import numpy as np, pytest
from radiomicnet import train
from radiomicnet.data import load_split
from radiomicnet.infer import INT8_MASK_TOLERANCE, OnnxBackend, Predictor, export_network, preprocess, quantize_int8

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
def predictors(checkpoint, samples):
    "(torch, ONNX fp32, ONNX int8 calibrated on real training images of both data sets)."
    plain = Predictor.from_checkpoint(checkpoint, device="cpu")
    calibration = preprocess([s.load()[0] for ds in samples.values() for s in ds["train"]], plain.img_size, plain.scaler)
    with tempfile.TemporaryDirectory() as d:
        fp32 = Predictor(OnnxBackend(export_network(plain.model, plain.cfg, Path(d)/"fp32.onnx")), plain.cfg)
        int8 = Predictor(OnnxBackend(quantize_int8(Path(d)/"fp32.onnx", Path(d)/"int8.onnx", calibration)), plain.cfg)
    return plain, fp32, int8

def test_fp32_onnx_runtime_gives_torchs_probabilities(predictors, samples):
    plain, fp32, _ = predictors
    assert fp32.backend_name == "onnx"
    for ds in samples.values():
        for s in ds["test"]:
            image = s.load()[0]
            np.testing.assert_allclose(fp32.predict_proba(image), plain.predict_proba(image), atol=1e-4)

@pytest.mark.parametrize("dataset", ["busi", "kvasir-seg"])
def test_int8_masks_agree_with_the_plain_path(predictors, samples, dataset):
    plain, _, int8 = predictors
    assert int8.backend_name == "int8"
    for s in samples[dataset]["test"]:
        image = s.load()[0]
        a, b = plain.predict(image), int8.predict(image)
        assert (a != b).mean() <= INT8_MASK_TOLERANCE, f"{s.id}: {100 * (a != b).mean():.2f}% of the pixels differ"
