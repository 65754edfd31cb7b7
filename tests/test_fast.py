"""The shipped `--fast` path: `load_predictor(model=NAME, fast=True)`, the int8 backend of a shipped model (kvasir-seg, busi),
built as every command builds it (exported, calibrated on the model's own training images, cached), on genuine test images.

Its masks must be non-empty, agree with the torch backend's within `INT8_MASK_TOLERANCE`, and score a Dice against the ground
truth that neither an empty nor an all-foreground mask can reach."""
import numpy as np, pytest
from radiomicnet.data.datasets import load_split
from radiomicnet.infer.predictor import INT8_MASK_TOLERANCE, Predictor
from radiomicnet.infer.pretrained import load_predictor

pytestmark = pytest.mark.usefixtures("one_torch_thread")   # conftest: one torch thread per module
N_TEST = 4                                                  # the first test images of each shipped model's split

def dice(pred, truth):
    "Dice of two boolean masks, written out here: 2|P&T| / (|P| + |T|)."
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    return float(2 * (pred & truth).sum() / (pred.sum() + truth.sum()))

@pytest.fixture(scope="module", params=["kvasir-seg", "busi"])
def model(request):
    "A shipped segmentation model, by name (its data set's name)."
    return request.param

@pytest.fixture(scope="module")
def images(model, data_dir):
    "(image, true mask) of the first test images of the model's data set, at their own sizes: each holds a lesion."
    pairs = [s.load() for s in load_split(model, "test", data_dir, subset=N_TEST)]
    assert len(pairs) == N_TEST and all(m.any() and not m.all() for _, m in pairs)
    return pairs

@pytest.fixture(scope="module")
def predictors(model, data_dir, tmp_path_factory):
    "(torch, int8) predictors of the shipped model; int8 built in an empty cache, so the build itself is what is tested."
    mp = pytest.MonkeyPatch()
    mp.setenv("RADIOMICNET_CACHE", str(tmp_path_factory.mktemp("cache")))
    lines = []
    fast = load_predictor(model=model, fast=True, data_dir=data_dir, log=lines.append)   # what `radiomicnet-predict --model NAME --fast` runs
    mp.undo()
    assert len(lines) == 1 and "int8" in lines[0], lines                                  # it quantised, once, and said so
    return Predictor.from_pretrained(model, device="cpu"), fast

def test_fast_path_is_the_int8_backend(predictors):
    plain, fast = predictors
    assert plain.backend_name == "torch" and fast.backend_name == "int8"
    assert fast.img_size == plain.img_size and fast.threshold == plain.threshold

def test_int8_masks_are_non_empty_and_agree_with_torch(predictors, images):
    plain, fast = predictors
    for k, (image, _) in enumerate(images):
        a, b = plain.predict(image), fast.predict(image)
        assert a.shape == b.shape == image.shape[:2]
        assert b.any() and not b.all(), f"image {k}: the int8 mask is {'empty' if not b.any() else 'all foreground'}"
        assert (a != b).mean() <= INT8_MASK_TOLERANCE, f"image {k}: {100 * (a != b).mean():.2f}% of the pixels differ"

def test_int8_masks_beat_masks_that_need_no_model(predictors, images):
    """Mean Dice of the int8 masks against the ground truth at least 0.3 above the better of the two masks that need no model:
    all background (Dice 0 on an image with a lesion) and all foreground (2|T| / (|T| + H*W))."""
    _, fast = predictors
    learnt = np.mean([dice(fast.predict(image), truth) for image, truth in images])
    foreground = np.mean([dice(np.ones_like(truth), truth) for _, truth in images])
    background = np.mean([dice(np.zeros_like(truth), truth) for _, truth in images])
    assert background == 0 and learnt >= max(background, foreground) + 0.3, (learnt, foreground)
