"""The inference engine (nbs/13_predictor.ipynb, model folders nbs/14_pretrained.ipynb): the same images through the three backends and through every caller
(radiomicnet-predict, radiomicnet-evaluate, the interpretation, the diagnosis code), the masks agreeing within each
backend's stated tolerance; model folders (hashes, fp16, huggingface_hub's helpers); the shipped models."""
import json, os, shutil, subprocess, sys
from pathlib import Path
import numpy as np, pytest, torch
from PIL import Image
from radiomicnet.core import CheckpointError, RadiomicNetError
from radiomicnet.data.images import synthetic_pair, synthetic_samples
from radiomicnet.data.loaders import resized_pair, cached_radiomics
from radiomicnet.features import FeatureScaler
from radiomicnet.infer.predictor import BACKENDS, INT8_MASK_TOLERANCE, MASK_TOLERANCE, Predictor, int8_cache_path, preprocess
from radiomicnet.infer.pretrained import MODELS_DIR, MODELS_ENV, list_pretrained, load_pretrained, write_pretrained
from radiomicnet.model.net import RadiomicNet

REPO = Path(__file__).resolve().parent.parent
SHIPPED = ("busi", "kvasir-seg", "busi-diagnosis")

pytestmark = pytest.mark.usefixtures("one_torch_thread")   # conftest: one torch thread per module

@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    "A short synthetic run (3 epochs at 64 px, seconds): confident enough that int8 has few pixels near the threshold."
    from radiomicnet.train.learner import train_run
    out = tmp_path_factory.mktemp("run")
    train_run("synthetic", img_size=64, bs=8, subset=16, epochs=3, seed=0, out_dir=out, device="cpu")
    return out/"best.pt"

@pytest.fixture(scope="module")
def images():
    "Synthetic test images of several sizes and modes (grey, RGB, 16-bit): none the model trained on."
    rgb = [np.array(synthetic_pair(900 + i, (60 + 10 * i, 90))[0]) for i in range(5)]
    return rgb[:3] + [rgb[3][..., 0], rgb[4].astype(np.uint16) * 257]

@pytest.fixture(scope="module")
def predictors(checkpoint):
    return {b: Predictor.from_checkpoint(checkpoint, b, device="cpu", log=lambda l: None) for b in BACKENDS}

def disagreement(a, b): return float((np.asarray(a) != np.asarray(b)).mean())

def test_tolerances_are_stated_once():
    assert MASK_TOLERANCE["int8"] is INT8_MASK_TOLERANCE and MASK_TOLERANCE["torch"] == 0 and set(BACKENDS) == {"torch", "onnx", "int8"}
    import radiomicnet.study.speed, radiomicnet.infer.predict, radiomicnet.infer.video, radiomicnet.eval.evaluate
    for module in (radiomicnet.study.speed, radiomicnet.infer.predict, radiomicnet.infer.video, radiomicnet.eval.evaluate):   # no second definition anywhere
        assert not any(n.endswith("TOLERANCE") and getattr(module, n) is not INT8_MASK_TOLERANCE for n in vars(module) if n.isupper())

def test_preprocess_is_the_training_pipeline(tmp_path):
    "The data pipeline's resized images and cached features are preprocess()'s, bit for bit; the scaler's z-scores follow."
    samples = synthetic_samples(5, size=(70, 90))
    x = preprocess([np.array(s.load()[0]) for s in samples], 64)
    np.testing.assert_array_equal(np.stack([resized_pair(s, 64)[0] for s in samples]), x.pixels.permute(0, 2, 3, 1).numpy())
    np.testing.assert_allclose(cached_radiomics(samples, 64, tmp_path), x.features.numpy(), rtol=1e-12, atol=0)
    scaler = FeatureScaler().fit(x.features.numpy())
    z = preprocess([np.array(s.load()[0]) for s in samples], 64, scaler).radiomics
    np.testing.assert_allclose(z.numpy(), ((x.features.numpy() - scaler.mean) / scaler.std).astype(np.float32), rtol=1e-6)
    assert preprocess(np.zeros((20, 30), np.uint8), 64).radiomics.abs().sum() == 0   # no scaler: zeros, never None

def test_every_backend_within_its_tolerance(predictors, images):
    torch_masks = [predictors["torch"].predict(im) for im in images]
    for b, pred in predictors.items():
        assert pred.backend_name == b and pred.img_size == 64 and pred.n_features == 13
        for i, (im, ref) in enumerate(zip(images, torch_masks)):
            mask = pred.predict(im)
            assert mask.shape == im.shape[:2] and mask.dtype == bool
            assert disagreement(mask, ref) <= MASK_TOLERANCE[b], f"{b}, image {i}: {100 * disagreement(mask, ref):.2f}% of the pixels differ"
    np.testing.assert_allclose(predictors["onnx"].predict_proba(images[0]), predictors["torch"].predict_proba(images[0]), atol=1e-4)

def test_batch_equals_one_by_one_and_tta_is_the_mirror_mean(predictors, images):
    pred = predictors["torch"]
    batch = pred.predict_batch(images)
    for p, im in zip(batch, images): np.testing.assert_allclose(p.prob, pred.predict_proba(im), atol=1e-6)
    x = preprocess(images[1], 64, pred.scaler)
    with torch.no_grad():
        a = torch.sigmoid(pred.model(x.image, x.radiomics)); m = torch.sigmoid(pred.model(x.image.flip(-1), x.radiomics)).flip(-1)
    np.testing.assert_allclose(pred.probs(x.image, x.radiomics, tta=True)["prob"].numpy(), ((a + m) / 2).numpy(), atol=1e-6)

def predict_command(capsys, *args, **opts):
    from radiomicnet.cli import radiomicnet_predict
    try: radiomicnet_predict(*map(str, args), **{k: str(v) if isinstance(v, Path) else v for k, v in opts.items()}); status = 0
    except SystemExit as e: status = e.code
    out = capsys.readouterr()
    return status, out.out, out.err

def test_every_caller_gives_the_predictors_masks(checkpoint, predictors, images, tmp_path, capsys):
    "radiomicnet-predict (each backend), radiomicnet-evaluate, the interpretation and the diagnosis code see the masks Predictor.predict gives."
    from radiomicnet.infer.predict import export_onnx
    from radiomicnet.eval.evaluate import evaluate_folder, predict_probs, samples_test_set
    from radiomicnet.eval.interpret import run_model
    from radiomicnet.diagnosis.classical import lesion_descriptors
    from radiomicnet.data.datasets import folder_samples
    folder = tmp_path/"set"
    for sub in ("images", "masks"): (folder/sub).mkdir(parents=True)
    for i, im in enumerate(images[:3]):
        Image.fromarray(im).save(folder/"images"/f"case{i}.png")
        Image.fromarray(np.array(synthetic_pair(900 + i, im.shape[:2])[1]).astype(np.uint8) * 255).save(folder/"masks"/f"case{i}.png")
    export_onnx(checkpoint, tmp_path/"model.onnx", data_dir=tmp_path, n_images=1)
    for b, opts in (("torch", dict(checkpoint=checkpoint)), ("onnx", dict(checkpoint=tmp_path/"model.onnx")), ("int8", dict(checkpoint=checkpoint, fast=True))):
        status, out, err = predict_command(capsys, folder/"images", out=tmp_path/f"pred-{b}", **opts)
        assert status == 0 and "3 succeeded, 0 failed" in out, err
        for i, im in enumerate(images[:3]):
            written = np.asarray(Image.open(tmp_path/f"pred-{b}"/f"case{i}_mask.png")) > 0
            np.testing.assert_array_equal(written, predictors[b].predict(im))
        ev = evaluate_folder(predictors[b], folder, tmp_path/f"eval-{b}", n_resamples=100, log=lambda l: None)
        truth = [s.load()[1] for s in folder_samples(folder, 128)[0]]
        from radiomicnet.eval.scores import segmentation_metrics
        own = [segmentation_metrics(predictors[b].predict(im)[None], t[None]).dsc.item() for im, t in zip(images[:3], truth)]
        np.testing.assert_allclose(ev["table"].dsc.to_numpy(), own, atol=1e-9)
    test = samples_test_set(synthetic_samples(20, size=64)[-4:], predictors["torch"].scaler, 64, tmp_path/"cache")
    np.testing.assert_allclose(run_model(predictors["torch"], test, device="cpu").probs.numpy(),
                               predict_probs(predictors["torch"], test.images, test.radiomics).numpy(), atol=1e-7)
    from radiomicnet.diagnosis.net import labelled_synthetic
    from radiomicnet.diagnosis.classical import DESCRIPTOR_COLUMNS, descriptor_table
    samples = [s for ss in labelled_synthetic(12, 64).values() for s in ss]
    table, refused = descriptor_table(samples, predictors["int8"], 64, tmp_path/"cache")   # as classical_run does with its segmenter
    assert refused == [] and len(table) == len(samples)
    for s in samples[:3]:
        image = np.array(s.load()[0])
        expected = lesion_descriptors(image, predictors["int8"].predict(image), preprocess(image, 64).features[0].numpy())
        got = table.set_index("id").loc[s.id]
        np.testing.assert_allclose([got[c] for c in DESCRIPTOR_COLUMNS], [expected[c] for c in DESCRIPTOR_COLUMNS], rtol=1e-9, equal_nan=True)

def test_from_checkpoint_errors_name_the_file(checkpoint, tmp_path):
    (tmp_path/"bad.pt").write_text("no")
    for call, words in [(lambda: Predictor.from_checkpoint(tmp_path/"missing.pt"), "missing.pt: file not found"),
                        (lambda: Predictor.from_checkpoint(tmp_path/"bad.pt"), "bad.pt: not a readable torch file"),
                        (lambda: Predictor.from_checkpoint(checkpoint, "fp16"), "unknown backend 'fp16'"),
                        (lambda: Predictor.from_pretrained("not-a-model"), "not-a-model: no such model")]:
        with pytest.raises(RadiomicNetError, match=words): call()

def test_int8_is_built_once_and_cached_beside_the_checkpoint(checkpoint):
    lines = []
    Predictor.from_checkpoint(checkpoint, "int8", log=lines.append)
    assert lines == [] and int8_cache_path(checkpoint).is_file()   # the fixture built it; the cache serves every later call

def test_model_folder_round_trip_hashes_and_fp16(predictors, images, tmp_path):
    pred = predictors["torch"]
    folder = pred.save_pretrained(tmp_path/"m", card="# a card\n")
    cfg = json.loads((folder/"config.json").read_text())
    import hashlib
    assert cfg["files"] == {n: hashlib.sha256((folder/n).read_bytes()).hexdigest() for n in ("model.safetensors", "README.md")}
    assert cfg["img_size"] == 64 and len(cfg["feature_names"]) == 13 and cfg["weights_dtype"] == "float16"
    back = Predictor.from_pretrained(folder, device="cpu")
    params = dict(pred.model.named_parameters())
    for k, v in pred.model.state_dict().items():
        torch.testing.assert_close(back.model.state_dict()[k], v.half().float() if k in params else v, rtol=0, atol=0)
    assert disagreement(back.predict(images[0]), pred.predict(images[0])) <= 0.01
    fp32 = Predictor.from_pretrained(write_pretrained(pred.model, pred.cfg, tmp_path/"m32", half=False), device="cpu")
    np.testing.assert_array_equal(fp32.predict_proba(images[0]), pred.predict_proba(images[0]))
    (folder/"README.md").write_text("# edited by hand\n")
    with pytest.raises(CheckpointError, match=r"README.md: SHA-256 .* is not the .* recorded in config.json"): Predictor.from_pretrained(folder)

def test_a_changed_file_is_refused_in_one_line_by_the_command(predictors, images, tmp_path, capsys):
    folder = predictors["torch"].save_pretrained(tmp_path/"m")
    data = bytearray((folder/"model.safetensors").read_bytes()); data[-10] ^= 1
    (folder/"model.safetensors").write_bytes(bytes(data))
    Image.fromarray(images[0]).save(tmp_path/"a.png")
    status, _, err = predict_command(capsys, tmp_path/"a.png", model=folder, out=tmp_path/"out")
    assert status == 1 and err.strip().count("\n") == 0 and "model.safetensors: SHA-256" in err, err

def test_huggingface_hub_helpers_read_and_write_the_layout(predictors, images, tmp_path):
    "huggingface_hub's save_torch_model / load_torch_model and ModelHubMixin work on the same folders, offline."
    hub = pytest.importorskip("huggingface_hub")
    pred = predictors["torch"]
    folder = pred.save_pretrained(tmp_path/"ours", half=False)
    other = RadiomicNet(**pred.cfg["model_kwargs"])
    hub.load_torch_model(other, folder, strict=True)                      # our folder, their loader
    for k, v in pred.model.state_dict().items(): torch.testing.assert_close(other.state_dict()[k], v, rtol=0, atol=0)
    theirs = tmp_path/"theirs"; theirs.mkdir()
    hub.save_torch_model(pred.model, theirs)                                # their writer, our config: our loader
    (theirs/"config.json").write_text(json.dumps(pred.cfg))
    np.testing.assert_array_equal(Predictor.from_pretrained(theirs, device="cpu").predict_proba(images[0]), pred.predict_proba(images[0]))
    class Hub(hub.ModelHubMixin):                                           # the mixin's from_pretrained on a local folder
        @classmethod
        def _from_pretrained(cls, *, model_id, **kwargs): return Predictor.from_pretrained(model_id, device="cpu")
    np.testing.assert_array_equal(Hub.from_pretrained(str(folder)).predict(images[1]), pred.predict(images[1]))

def test_models_command_lists_a_folder_of_models(predictors, tmp_path):
    predictors["torch"].save_pretrained(tmp_path/"tiny-synthetic")
    out = subprocess.run([shutil.which("radiomicnet-models")], capture_output=True, text=True, env=dict(os.environ, **{MODELS_ENV: str(tmp_path)}))
    assert out.returncode == 0, out.stderr
    line, = [l for l in out.stdout.splitlines() if l.startswith("tiny-synthetic")]
    assert "synthetic" in line and " 64 " in f" {line} "
    assert subprocess.run([shutil.which("radiomicnet-models"), "--help"], capture_output=True, text=True).stdout.startswith("usage:")

@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_loads_by_name_and_has_its_card(name):
    if name not in list_pretrained(): pytest.skip(f"models/{name} is not packaged yet (radiomicnet-package)")
    model, cfg, folder = load_pretrained(name)   # every file's SHA-256 checked
    assert folder == MODELS_DIR/name and set(cfg["files"]) == {"model.safetensors", "README.md"}
    assert cfg["img_size"] % 32 == 0 and len(cfg["feature_names"]) == 13 and cfg["metrics"]["dsc_mean"] > 0.5
    assert cfg["packaging"]["reproduced_max_abs_diff"] <= 1e-4 and cfg["packaging"]["fp16_dsc_change"] <= 0.001 or cfg["weights_dtype"] == "float32"
    card = (folder/"README.md").read_text()
    for words in ("license:", "datasets:", "metrics:", "tags:", "Not for clinical use", "## Known limitations", "## Reproduce", "## Licences",
                  f"{cfg['metrics']['dsc_mean']:.3f}"):
        assert words in card, words

def test_shipped_models_are_small():
    if not MODELS_DIR.is_dir(): pytest.skip("no models/ folder")
    assert sum(f.stat().st_size for f in MODELS_DIR.rglob("*") if f.is_file()) < 40 * 2**20

def test_predict_by_name_right_after_install(tmp_path):
    "radiomicnet-predict --model busi on a fresh image, from another folder, without data or network: a mask at the image's size."
    if "busi" not in list_pretrained(): pytest.skip("models/busi is not packaged yet")
    Image.fromarray(np.array(synthetic_pair(5, (100, 130))[0])).save(tmp_path/"scan.png")
    env = {k: v for k, v in os.environ.items() if k not in ("RADIOMICNET_DATA", MODELS_ENV)}
    out = subprocess.run([shutil.which("radiomicnet-predict"), "--model", "busi", "scan.png", "--out", "predictions"], cwd=tmp_path,
                         capture_output=True, text=True, env=env)
    assert out.returncode == 0 and "1 succeeded, 0 failed" in out.stdout, out.stderr
    assert Image.open(tmp_path/"predictions"/"scan_mask.png").size == (130, 100)

def test_infer_package_gives_the_predictor_with_its_model_folders():
    "`from radiomicnet.infer import Predictor` (what the model cards show) has `from_pretrained`; importing the subpackage alone loads no torch."
    code = ("import sys, radiomicnet.infer as i; light = 'torch' not in sys.modules; from radiomicnet.infer import Predictor; "
            "print(light, hasattr(Predictor, 'from_pretrained'), hasattr(Predictor, 'save_pretrained'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "True", "True"], out
    with pytest.raises(AttributeError, match="has no attribute 'Nothing'"):
        import radiomicnet.infer as i; i.Nothing
