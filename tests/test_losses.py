"Bad-input and property tests of radiomicnet.train.losses (the notebook 05_losses shows the known-answer cases)."
import math
import numpy as np
import pytest
import torch
from scipy import ndimage
from radiomicnet.core import RadiomicNetError
from radiomicnet.train.losses import (bce_loss, dice_loss, boundary_weights, boundary_bce_loss, binary_entropy,
                                radiomics_consistency_loss, CompositeLoss)

TERMS = [bce_loss, dice_loss, boundary_bce_loss]

def _batch(b=3, h=24, w=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    mask = (torch.rand(b, 1, h, w, generator=g) > 0.6).float()
    return torch.randn(b, 1, h, w, generator=g), mask

@pytest.mark.parametrize("fn", TERMS)
@pytest.mark.parametrize("mask_shape", [(3, 24, 20), (3, 2, 24, 20), (2, 1, 24, 20), (3, 1, 20, 24)])
def test_bad_shapes_are_clear_errors(fn, mask_shape):
    logits, _ = _batch()
    with pytest.raises(RadiomicNetError, match=r"must both be \(B,1,H,W\).*got logits \(3, 1, 24, 20\)"):
        fn(logits, torch.zeros(mask_shape))

def test_multichannel_logits_refused():
    with pytest.raises(RadiomicNetError, match="logits and mask"):
        bce_loss(torch.zeros(2, 3, 8, 8), torch.zeros(2, 3, 8, 8))
    with pytest.raises(RadiomicNetError, match=r"logits must be \(B,1,H,W\)"):
        radiomics_consistency_loss(torch.zeros(2, 8, 8), torch.zeros(2))

@pytest.mark.parametrize("target_shape", [(3,), (3, 1)])
def test_rc_target_one_value_per_image(target_shape):
    logits, _ = _batch()
    flat = radiomics_consistency_loss(logits, torch.full((3,), 0.4))
    assert torch.allclose(radiomics_consistency_loss(logits, torch.full(target_shape, 0.4)), flat)

@pytest.mark.parametrize("target", [torch.zeros(2), torch.zeros(3, 2), 0.5])
def test_rc_target_of_wrong_size(target):
    logits, _ = _batch()
    with pytest.raises(RadiomicNetError, match=r"one value per image, shape \(3,\)"):
        radiomics_consistency_loss(logits, target)

def test_rc_matches_entropy_from_probabilities():
    logits, _ = _batch()
    p = torch.sigmoid(logits.double())
    h = -(p * p.log2() + (1 - p) * (1 - p).log2()).mean(dim=(1, 2, 3))
    target = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)
    assert torch.allclose(radiomics_consistency_loss(logits.double(), target), ((h - target) ** 2).mean())

def test_rc_finite_and_differentiable_at_saturation():
    logits = torch.tensor([-1e4, -50., 0., 50., 1e4]).reshape(1, 1, 1, 5).requires_grad_()
    loss = radiomics_consistency_loss(logits, torch.tensor([0.9]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    assert logits.grad[0, 0, 0, 2] == 0             # H'(p=0.5) = 0
    assert binary_entropy(torch.tensor(0.)).item() == pytest.approx(1.0)

@pytest.mark.parametrize("seed", range(5))
def test_boundary_weights_match_scipy(seed):
    masks = ndimage.binary_opening(np.random.default_rng(seed).random((4, 33, 29)) > 0.5, np.ones((1, 3, 3)))
    sq = np.ones((3, 3), bool)
    band = np.stack([ndimage.binary_dilation(m, sq, border_value=0) & ~ndimage.binary_erosion(m, sq, border_value=1)
                     for m in masks])
    w = boundary_weights(torch.from_numpy(masks)[:, None], alpha=5.0)[:, 0].numpy()
    np.testing.assert_array_equal(w, np.where(band, 5.0, 1.0))

def test_boundary_weights_edge_cases():
    assert (boundary_weights(torch.zeros(1, 1, 8, 8)) == 1).all()
    assert (boundary_weights(torch.ones(1, 1, 8, 8)) == 1).all()       # the image edge is not a lesion boundary
    one = torch.zeros(1, 1, 7, 7); one[..., 3, 3] = 1
    assert boundary_weights(one).sum().item() == 49 + 2 * 9            # a single pixel: its 3x3 neighbourhood

def test_boundary_bce_with_alpha_one_is_bce():
    logits, mask = _batch()
    assert torch.allclose(boundary_bce_loss(logits, mask, alpha=1.0), bce_loss(logits, mask))

def test_dice_per_image_then_mean():
    logits, mask = _batch()
    per_image = torch.stack([dice_loss(logits[i:i + 1], mask[i:i + 1]) for i in range(3)])
    assert torch.allclose(dice_loss(logits, mask), per_image.mean())

def test_losses_accept_bool_and_double_masks():
    logits, mask = _batch()
    for fn in TERMS:
        assert torch.allclose(fn(logits, mask.bool()), fn(logits, mask))
        assert fn(logits.double(), mask).dtype == torch.float64

def test_composite_gradient_and_switches():
    logits, mask = _batch()
    logits.requires_grad_()
    target = torch.tensor([0.2, 0.5, 0.8])
    loss = CompositeLoss(w_bce=0, w_dice=0, w_bnd=0, w_rc=1.0)
    value = loss(logits, mask, target)
    assert set(loss.last_terms) == {"rc", "total"}
    assert value.item() == pytest.approx(radiomics_consistency_loss(logits, target).item())
    value.backward()
    assert logits.grad.abs().sum() > 0
    off = CompositeLoss(0, 0, 0, 0)
    assert off(logits, mask).item() == 0 and off.last_terms == {"total": 0.0}
    full = CompositeLoss()
    full(logits, mask, target)
    assert set(full.last_terms) == {"bce", "dice", "bnd", "rc", "total"}
    assert all(isinstance(v, float) for v in full.last_terms.values())

def test_composite_errors():
    logits, mask = _batch()
    with pytest.raises(RadiomicNetError, match="w_rc > 0 needs contrast_target.*or set w_rc=0"):
        CompositeLoss()(logits, mask)
    with pytest.raises(RadiomicNetError, match="weights must be >= 0"):
        CompositeLoss(w_dice=-1)
    with pytest.raises(RadiomicNetError, match="logits and mask"):
        CompositeLoss(w_rc=0)(logits, mask[:, 0])
    assert "w_rc=0.05" in repr(CompositeLoss())

def test_fastai_get_preds_uses_activation_and_decodes():
    from fastai.data.core import DataLoaders
    from fastai.learner import Learner
    import fastai.callback.progress  # noqa: F401 (adds Learner.no_bar)
    images, masks = torch.rand(6, 1, 16, 16), (torch.rand(6, 1, 16, 16) > 0.5).float()
    ds = list(zip(images, masks))
    dls = DataLoaders.from_dsets(ds, ds, bs=3, device="cpu")
    learn = Learner(dls, torch.nn.Conv2d(1, 1, 3, padding=1), loss_func=CompositeLoss(w_rc=0))
    with learn.no_bar(), learn.no_logging():
        probs, targs, decoded = learn.get_preds(with_decoded=True)
    assert probs.shape == (6, 1, 16, 16) and 0 <= probs.min() and probs.max() <= 1
    assert decoded.dtype == torch.bool and torch.equal(decoded, probs > 0.5)
    assert math.isfinite(learn.loss_func.last_terms["total"])
