"The mechanisms of the controls of issue 20 (rag_shuffled, rag_mean) and of the local radiomics map (rag_local)."
import numpy as np
import pytest
import torch

from radiomicnet.features import local_radiomics_map, radiomics_features_torch
from radiomicnet.model.net import RadiomicNet, load_checkpoint, save_checkpoint
from radiomicnet.train.learner import VARIANTS, build_learner
from radiomicnet.data.loaders import get_dls


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def stream_inputs(model, image, radiomics):
    "What the Radiomics Stream received in one forward pass."
    seen = []
    hook = model.radiomics_stream.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach().clone()))
    try: model(image, radiomics)
    finally: hook.remove()
    return seen[0]


def test_shuffled_gives_the_gates_another_images_features():
    torch.manual_seed(0)
    bank = torch.randn(30, 13)
    model = RadiomicNet(radiomics_control="shuffled", bank_size=30)
    model.radiomics_control.fill_bank(bank)
    image, own = torch.rand(4, 3, 64, 64), bank[5:9].clone()
    for mode in ("train", "eval"):
        getattr(model, mode)()
        got = stream_inputs(model, image, own)
        for g, o in zip(got, own):
            assert not torch.equal(g, o)                                # not the image's own vector ...
            assert (bank == g).all(1).sum() == 1                        # ... but one training image's, whole
    model.eval()
    test_once = stream_inputs(model, image, own)
    assert torch.equal(stream_inputs(model, image[:1], own[:1]), test_once[:1])   # fixed at evaluation, batch or not
    # the shuffled bank travels in the checkpoint: a reloaded model makes the same choices
    path = save_checkpoint(__import__("tempfile").mkdtemp() + "/s.pt", model, "radiomicnet",
                           dict(radiomics_control="shuffled", bank_size=30), None)
    assert torch.equal(stream_inputs(load_checkpoint(path)[0], image, own), test_once)


def test_mean_gives_every_image_the_same_channel_gates():
    torch.manual_seed(0)
    model = RadiomicNet(radiomics_control="mean").eval()
    radiomics = torch.randn(3, 13) * 5                                  # three very different images' features
    model(torch.rand(3, 3, 64, 64), radiomics)
    for gate in model.gates:
        a_c = gate.channel_attention
        torch.testing.assert_close(a_c, a_c[:1].expand_as(a_c), rtol=0, atol=1e-6)   # the same α_c for every image (to float rounding)
    test = stream_inputs(model, torch.rand(3, 3, 64, 64), radiomics)
    assert torch.equal(test, torch.zeros_like(test))                    # all z-scores 0: the training mean


def test_local_map_of_a_whole_image_window_is_the_global_vector():
    images = torch.randint(0, 256, (3, 3, 96, 96), dtype=torch.uint8)
    whole = local_radiomics_map(images, window=96, stride=96)
    assert whole.shape == (3, 13, 1, 1)
    np.testing.assert_allclose(whole[..., 0, 0].numpy(), radiomics_features_torch(images).numpy(), rtol=1e-12)
    # in the model, the same map z-scored with the windows' training statistics
    model = RadiomicNet(local_window=96, local_stride=96)
    scaler = model.fit_local_scaler(images)
    as_float = images.float() / 255                                     # what the network is given
    np.testing.assert_allclose(model.local_map(as_float)[..., 0, 0].numpy(),
                               scaler.transform(radiomics_features_torch(as_float)).numpy(), atol=1e-4)  # float32 buffers


@pytest.mark.parametrize("variant", ["rag_shuffled", "rag_mean", "rag_local"])
def test_control_variants_build_from_the_training_split(variant):
    dls = get_dls("synthetic", img_size=64, bs=4, subset=12, n_synthetic=40)
    learn = build_learner(dls, variant=variant)
    model, train = learn.model, dls.radiomics.split == "train"
    if variant == "rag_shuffled":
        assert learn.model_kwargs["bank_size"] == train.sum()
        z = dls.scaler.transform(dls.radiomics.loc[train].iloc[:, 1:].to_numpy())
        np.testing.assert_allclose(model.radiomics_control.bank.numpy(), z, rtol=1e-6)
    if variant == "rag_local":
        assert model.local_mean.abs().sum() > 0 and (model.local_std > 0).all()
    assert VARIANTS[variant]["model"]["rag_mode"] == "full"             # every control keeps the full gates
    image, radiomics, mask = (t.as_subclass(torch.Tensor) for t in dls.one_batch())
    assert learn.model(image, radiomics).shape == mask.shape
