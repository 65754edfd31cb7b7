"Integration and bad-input tests of radiomicnet.model.net: budget, input sizes, checkpoints and their pretrained_cfg, encoder weights, CUDA."
import warnings
import numpy as np
import pytest
import torch
from torchvision.models import mobilenet_v2

from radiomicnet.core import CheckpointError, RadiomicNetError
from radiomicnet.features import FeatureScaler
from radiomicnet.model.net import (IMAGENET_WEIGHTS, RadiomicNet, create_model, hub_file, list_models, load_checkpoint, parameter_breakdown,
                               pretrained_cfg, save_checkpoint, split_sha256, warn_training_from_scratch)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    "Tiny inputs gain nothing from intra-op threads, and on a shared 2-core machine threads thrash."
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return RadiomicNet().eval()


@pytest.fixture(scope="module")
def scaler():
    return FeatureScaler().fit(np.random.default_rng(0).normal(size=(20, 13)))


def test_parameter_budget(model):
    "The paper's model has 3.27M parameters +/- 1%, of which the encoder is torchvision's MobileNetV2 features."
    counts = parameter_breakdown(model)
    assert 3.2373e6 <= counts["total"] <= 3.3027e6, counts
    assert counts["encoder"] == sum(p.numel() for p in mobilenet_v2().features.parameters())
    assert counts["encoder"] + counts["decoder"] + counts["rag"] + counts["mlp"] == counts["total"]


@pytest.mark.parametrize("size", [64, 96, 128])
def test_sizes_divisible_by_32(model, size):
    with torch.no_grad(): logits = model(torch.rand(1, 3, size, size), torch.randn(1, 13))
    assert logits.shape == (1, 1, size, size)


def test_size_not_divisible_by_32_raises(model):
    with pytest.raises(ValueError, match="input size 100x100 is not divisible by 32"):
        model(torch.rand(1, 3, 100, 100), torch.randn(1, 13))


@pytest.mark.parametrize("mode", ["full", "spatial", "channel", "none"])
def test_every_rag_mode_trains(mode):
    "Each ablation runs forward and backward, and every parameter it has gets a gradient."
    net = RadiomicNet(rag_mode=mode)
    net(torch.rand(2, 3, 64, 64), torch.randn(2, 13)).mean().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_checkpoint_round_trip_identical_logits(model, scaler, tmp_path):
    path = save_checkpoint(tmp_path/"best.pth", model, "radiomicnet", dict(rag_mode="full"), scaler, extra=dict(img_size=64))
    assert set(torch.load(path, weights_only=True)) >= {"state_dict", "model_name", "model_kwargs", "scaler", "version", "extra"}
    loaded, loaded_scaler, ckpt = load_checkpoint(path)
    image, radiomics = torch.rand(2, 3, 64, 64), torch.randn(2, 13)
    with torch.no_grad(): assert torch.equal(loaded(image, radiomics), model(image, radiomics))
    assert loaded_scaler.state_dict() == scaler.state_dict()
    assert ckpt["extra"] == dict(img_size=64)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04 truncated zip"])
def test_corrupt_checkpoint_names_the_file(tmp_path, content):
    bad = tmp_path/"corrupt.pth"
    bad.write_bytes(content)
    with pytest.raises(CheckpointError, match="corrupt.pth"): load_checkpoint(bad)


def test_truncated_and_missing_checkpoint(model, scaler, tmp_path):
    good = save_checkpoint(tmp_path/"good.pth", model, "radiomicnet", {}, scaler)
    (tmp_path/"cut.pth").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="cut.pth"): load_checkpoint(tmp_path/"cut.pth")
    with pytest.raises(CheckpointError, match="nothere.pth: file not found"): load_checkpoint(tmp_path/"nothere.pth")


def test_checkpoint_of_unknown_model(model, scaler, tmp_path):
    path = save_checkpoint(tmp_path/"m.pth", model, "radiomicnet", {}, scaler)
    ckpt = torch.load(path, weights_only=True)
    ckpt["model_name"] = "no-such-net"
    torch.save(ckpt, tmp_path/"renamed.pth")
    with pytest.raises(CheckpointError, match="renamed.pth: cannot rebuild the model .*known models: .*radiomicnet"):
        load_checkpoint(tmp_path/"renamed.pth")


def test_unknown_model_lists_known_names():
    assert "radiomicnet" in list_models()
    with pytest.raises(RadiomicNetError, match="known models: .*radiomicnet"): create_model("no-such-net")


def test_checkpoint_carries_its_pretrained_cfg(model, scaler, tmp_path):
    "Everything a reader needs comes from the file: input size, feature names and scaler, the data set's split hash, the commit."
    import hashlib
    from radiomicnet.core import git_commit
    from radiomicnet.data.datasets import SPLITS_DIR
    run = dict(dataset="busi", img_size=192, protocol="long", seed=0, variant="full", model_name="radiomicnet")
    path = save_checkpoint(tmp_path/"best.pt", model, "radiomicnet", dict(rag_mode="full"), scaler, extra=dict(config=run, epoch=3))
    cfg = torch.load(path, weights_only=True)["pretrained_cfg"]
    assert (cfg["img_size"], cfg["dataset"], cfg["protocol"], cfg["seed"], cfg["variant"]) == (192, "busi", "long", 0, "full")
    assert cfg["feature_names"] == scaler.state_dict()["feature_names"] and cfg["scaler"] == scaler.state_dict()
    assert cfg["split_sha256"] == hashlib.sha256((SPLITS_DIR/"busi.csv").read_bytes()).hexdigest() == split_sha256("busi")
    assert (cfg["threshold"], cfg["temperature"], cfg["classes"], cfg["metrics"], cfg["commit"]) == (0.5, 1.0, ["background", "lesion"], {}, git_commit())
    assert load_checkpoint(path)[2]["pretrained_cfg"] == cfg
    assert split_sha256("synthetic") is None and pretrained_cfg("unet", {}, None)["img_size"] is None


def test_encoder_weights_from_file(tmp_path):
    "An explicit weights file (here a randomly initialised MobileNetV2 state dict) is loaded exactly."
    donor = mobilenet_v2().state_dict()
    torch.save(donor, tmp_path/"mobilenet_v2.pth")
    net = RadiomicNet(weights_path=tmp_path/"mobilenet_v2.pth")
    for key, value in net.encoder.features.state_dict().items(): assert torch.equal(value, donor[f"features.{key}"]), key
    assert net.encoder.weights_source == str(tmp_path/"mobilenet_v2.pth")
    torch.save({"something": torch.zeros(1)}, tmp_path/"other.pth")
    with pytest.raises(CheckpointError, match="other.pth"): RadiomicNet(weights_path=tmp_path/"other.pth")


def test_pretrained_without_cache_warns_once_and_never_downloads(tmp_path, monkeypatch):
    old_hub = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda *a, **k: pytest.fail("tried to download"))
    try:
        warn_training_from_scratch.cache_clear()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            nets = [RadiomicNet(pretrained=True) for _ in range(2)]
        assert [str(w.message).count("FROM SCRATCH") for w in caught] == [1]
        assert all(n.encoder.weights_source == "random" for n in nets)
        assert not hub_file(IMAGENET_WEIGHTS[0]).exists()
    finally: torch.hub.set_dir(old_hub)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")
def test_cuda_forward_and_predictor(scaler):
    net = RadiomicNet().cuda().eval()
    with torch.no_grad(): logits = net(torch.rand(2, 3, 64, 64, device="cuda"), torch.randn(2, 13, device="cuda"))
    assert logits.shape == (2, 1, 64, 64) and logits.is_cuda
    from radiomicnet.infer.predictor import Predictor
    mask = Predictor.from_model(net, 64, scaler, device="cuda").predict(np.zeros((70, 90, 3), np.uint8))
    assert mask.shape == (70, 90)


def test_checkpoint_extra_with_numpy_and_fastai_optimizer_state(model, scaler, tmp_path):
    "numpy values and a fastai optimizer's state (which holds fastcore `L`s) are stored as plain, weights_only-safe types."
    from fastai.optimizer import Adam
    layer = torch.nn.Linear(3, 2)
    opt = Adam(list(layer.parameters()), lr=1e-3)
    layer(torch.randn(4, 3)).sum().backward(); opt.step()
    path = save_checkpoint(tmp_path/"last.pth", model, "radiomicnet", {}, scaler,
                           extra=dict(opt_state=opt.state_dict(), dice=np.float32(0.5), epoch=np.int64(3)))
    extra = torch.load(path, weights_only=True)["extra"]
    assert (extra["dice"], extra["epoch"]) == (0.5, 3)
    fresh = Adam(list(torch.nn.Linear(3, 2).parameters()), lr=1e-3)
    fresh.load_state_dict(extra["opt_state"])
    assert torch.equal(fresh.state_dict()["state"][0]["grad_avg"], opt.state_dict()["state"][0]["grad_avg"])


def test_checkpoint_refuses_unreadable_extra(model, scaler, tmp_path):
    with pytest.raises(RadiomicNetError, match=r"checkpoint\['extra'\]\['out'\] is a PosixPath"):
        save_checkpoint(tmp_path/"x.pth", model, "radiomicnet", {}, scaler, extra=dict(out=tmp_path))
    assert not (tmp_path/"x.pth").exists()
