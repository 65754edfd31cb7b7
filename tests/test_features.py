"""radiomicnet.features beyond the notebook: the batched torch extractor against the scikit-image reference on real
BUSI / Kvasir-SEG images and on edge cases, bad input, the FeatureScaler file round trip, and the CUDA path."""
import numpy as np
import pytest
import torch
from PIL import Image
from skimage.feature import local_binary_pattern
from radiomicnet.core import CheckpointError, DataError, RadiomicNetError
from radiomicnet.features import (FEATURE_NAMES, FEATURE_RTOL, FEATURE_VERSION, FeatureScaler, RadiomicsFeatures,
                                  _luma_ties, gray_uint8_torch, lbp_codes_torch, radiomics_features,
                                  radiomics_features_torch, relative_error, to_gray_uint8)

RTOL = np.array(FEATURE_RTOL)
SIZE = 256  # the network's input side; features are computed on the image as the network sees it

def network_input(path, size=SIZE)->np.ndarray:
    "An image file as the network sees it: RGB, resized to size x size with PIL's bilinear filter (as radiomicnet.data.loaders.resized_pair)."
    return np.asarray(Image.open(path).convert("RGB").resize((size, size), Image.Resampling.BILINEAR))

def as_batch(images:list)->torch.Tensor:
    "Same-shape (H,W) or (H,W,C) numpy images as one (B,H,W) or (B,C,H,W) tensor."
    t = torch.from_numpy(np.stack(images))
    return t.permute(0, 3, 1, 2) if t.ndim == 4 else t

def assert_agrees(images:list, **kw)->np.ndarray:
    "Torch features of the batch agree with the reference image by image, within FEATURE_RTOL; returns the errors."
    ref = np.stack([radiomics_features(im) for im in images])
    got = radiomics_features_torch(as_batch(images), **kw)
    assert got.shape == (len(images), 13) and got.dtype == torch.float64
    assert torch.isfinite(got).all() and np.isfinite(ref).all()
    err = relative_error(got, ref)
    worst = {FEATURE_NAMES[j]: f"{err[:, j].max():.1e}" for j in np.flatnonzero((err > RTOL).any(0))}
    assert not worst, f"torch disagrees with the reference beyond FEATURE_RTOL: {worst}"
    return err

# ---------------------------------------------------------------- real images

@pytest.fixture(scope="module")
def real_images(data_dir)->dict:
    "3 benign + 3 malignant BUSI images and 6 Kvasir-SEG images at the network's input size."
    busi = sorted((data_dir/"BUSI"/"Dataset_BUSI_with_GT").glob("*/*).png"))
    picks = [p for cls in ("benign", "malignant") for p in [q for q in busi if q.parent.name == cls][:3]]
    kvasir = sorted((data_dir/"Kvasir-SEG"/"images").glob("*.jpg"))[:6]
    if len(picks) < 6 or len(kvasir) < 6: pytest.skip(f"{data_dir} holds fewer than 6 BUSI / Kvasir-SEG images")
    return {"BUSI": [network_input(p) for p in picks], "Kvasir-SEG": [network_input(p) for p in kvasir]}

@pytest.mark.parametrize("dataset", ["BUSI", "Kvasir-SEG"])
def test_real_images_agree(real_images, dataset):
    assert_agrees(real_images[dataset])

def test_real_images_same_lbp_codes_and_grey_levels(real_images):
    images = real_images["BUSI"][:2] + real_images["Kvasir-SEG"][:2]
    gray = gray_uint8_torch(as_batch(images))
    assert np.array_equal(gray.numpy(), np.stack([to_gray_uint8(im) for im in images]))
    codes = lbp_codes_torch(gray).numpy()
    assert np.array_equal(codes, np.stack([local_binary_pattern(g, 24, 3, "uniform") for g in gray.numpy()]))

# ---------------------------------------------------------------- edge cases

_rng = np.random.default_rng(42)
EDGE_CASES = {
    "constant 0": np.zeros((64, 64), np.uint8),
    "constant 128": np.full((64, 64), 128, np.uint8),
    "constant 255": np.full((64, 64), 255, np.uint8),
    "binary bool noise": _rng.random((64, 64)) > 0.5,
    "binary 0/255 blocks": np.kron(_rng.integers(0, 2, (8, 8)), np.ones((8, 8))).astype(np.uint8) * 255,
    "checkerboard": (np.indices((64, 64)).sum(0) % 2).astype(np.uint8) * 255,
    "uniform noise": _rng.integers(0, 256, (96, 96), dtype=np.uint8),
    "tiny 8x8 noise": _rng.integers(0, 256, (8, 8), dtype=np.uint8),
    "thin 8x300": _rng.integers(0, 256, (8, 300), dtype=np.uint8),
    "one odd pixel": np.pad(np.full((1, 1), 9, np.uint8), 40, constant_values=10),
    "gradient 97x131": np.add.outer(np.arange(97), np.arange(131)).astype(np.uint8),
    "RGB uint8": _rng.integers(0, 256, (50, 70, 3), dtype=np.uint8),
    "RGBA uint8": _rng.integers(0, 256, (48, 40, 4), dtype=np.uint8),
    "RGB float32": _rng.random((40, 48, 3), dtype=np.float32),
    "grey float32": _rng.random((40, 48), dtype=np.float32),
    "grey float64": _rng.random((33, 33)),
    "grey (H,W,1)": _rng.integers(0, 256, (30, 30, 1), dtype=np.uint8),
    "16-bit grey": _rng.integers(0, 65536, (64, 64), dtype=np.uint16),
    "16-bit grey, dark": _rng.integers(0, 300, (64, 64), dtype=np.uint16),
    "16-bit RGB": _rng.integers(0, 65536, (32, 32, 3), dtype=np.uint16),
}

@pytest.mark.parametrize("name", list(EDGE_CASES))
def test_edge_cases_agree_and_are_finite(name):
    assert_agrees([EDGE_CASES[name]])

def test_batch_of_edge_cases_in_slices():
    images = [EDGE_CASES[k] for k in ("constant 0", "constant 255", "binary 0/255 blocks", "checkerboard", "one odd pixel")
              if EDGE_CASES[k].shape == (64, 64)]
    batch = as_batch(images)
    feats = radiomics_features_torch(batch)
    for size in (1, 3, len(images)): assert torch.equal(radiomics_features_torch(batch, chunk_size=size), feats)
    assert torch.equal(RadiomicsFeatures(chunk_size=2)(batch), feats)

def test_every_halfway_colour_converts_like_the_reference():
    keys = _luma_ties()[0].numpy()
    image = np.stack([keys >> 16, (keys >> 8) & 255, keys & 255], -1).astype(np.uint8)[None]
    assert np.array_equal(gray_uint8_torch(as_batch([image]))[0].numpy(), to_gray_uint8(image))

# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("shape", [(7, 8), (8, 7), (3, 3, 3), (1, 500)])
def test_too_small_is_a_clear_error(shape):
    image = np.zeros(shape, np.uint8)
    size = f"{shape[0]}x{shape[1]}"
    with pytest.raises(DataError, match=size): radiomics_features(image)
    with pytest.raises(DataError, match=size): radiomics_features_torch(as_batch([image]))

@pytest.mark.parametrize("image, message", [
    (np.zeros((16, 16, 2), np.uint8), "(16, 16, 2)"),
    (np.zeros((2, 16, 16, 3), np.uint8), "(2, 16, 16, 3)"),
    (np.zeros((16, 16), np.int64), "int64"),
    (np.full((16, 16), 1.5), "[0, 1]"),
    (np.full((16, 16), -0.5, np.float32), "[0, 1]"),
    (np.full((16, 16), np.nan), "non-finite"),
])
def test_bad_numpy_input_is_refused(image, message):
    with pytest.raises(DataError) as err: radiomics_features(image)
    assert message in str(err.value)

@pytest.mark.parametrize("batch, message", [
    (torch.zeros(2, 2, 16, 16, dtype=torch.uint8), "(2, 2, 16, 16)"),
    (torch.zeros(16, 16, dtype=torch.uint8), "(16, 16)"),
    (torch.zeros(2, 16, 16, dtype=torch.int32), "int32"),
    (torch.full((2, 3, 16, 16), 255.0), "[0, 1]"),
    (torch.full((2, 16, 16), float("nan")), "[0, 1]"),
])
def test_bad_tensor_input_is_refused(batch, message):
    with pytest.raises(DataError) as err: radiomics_features_torch(batch)
    assert message in str(err.value)

def test_empty_batch():
    assert radiomics_features_torch(torch.zeros(0, 3, 32, 32, dtype=torch.uint8)).shape == (0, 13)

# ---------------------------------------------------------------- FeatureScaler

@pytest.fixture(scope="module")
def train_features()->np.ndarray:
    images = [EDGE_CASES[k] for k in ("uniform noise", "gradient 97x131", "RGB uint8", "checkerboard", "constant 128")]
    return np.stack([radiomics_features(im) for im in images])

def test_scaler_round_trip_through_a_weights_only_file(train_features, tmp_path):
    scaler = FeatureScaler().fit(train_features)
    state = scaler.state_dict()
    assert all(isinstance(v, (list, float, int, str)) for v in state.values())
    torch.save(dict(scaler=state), tmp_path/"scaler.pt")
    restored = FeatureScaler.from_state_dict(torch.load(tmp_path/"scaler.pt", weights_only=True)["scaler"])
    for feats in (train_features, torch.from_numpy(train_features)):
        z = scaler.transform(feats)
        assert np.array_equal(np.asarray(restored.transform(feats)), np.asarray(z))
        assert np.array_equal(np.asarray(restored.contrast_target(feats)), np.asarray(scaler.contrast_target(feats)))
        assert np.allclose(np.asarray(restored.contrast_target_from_scaled(z)), np.asarray(scaler.contrast_target(feats)), atol=1e-6)

def test_scaler_z_scores_targets_and_guards(train_features):
    scaler = FeatureScaler().fit(train_features)
    z = scaler.transform(train_features)
    assert z.dtype == np.float32 and np.allclose(z.mean(0), 0, atol=1e-5)
    varying = train_features.std(0) > 1e-9
    assert np.allclose(z.std(0)[varying], 1, atol=1e-5)
    target = scaler.contrast_target(train_features)
    assert target.dtype == np.float32 and target.min() == 0 and target.max() == 1
    assert scaler.contrast_target(train_features * 10)[train_features[:, 0].argmax()] == 1   # clipped above
    const = FeatureScaler().fit(np.ones((4, 13)))                                              # every std is 0
    assert np.array_equal(const.transform(np.ones((2, 13))), np.zeros((2, 13), np.float32))
    assert np.array_equal(const.contrast_target(np.full((1, 13), 3.0)), [1.0])

def test_scaler_keeps_tensors_on_their_device(train_features):
    scaler = FeatureScaler().fit(torch.from_numpy(train_features))
    z = scaler.transform(torch.from_numpy(train_features))
    assert isinstance(z, torch.Tensor) and z.dtype == torch.float32
    t = scaler.contrast_target_from_scaled(z)
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32 and t.shape == (len(train_features),)

def test_scaler_errors(train_features):
    with pytest.raises(RadiomicNetError, match="not fitted"): FeatureScaler().transform(train_features)
    with pytest.raises(DataError, match=r"\(5, 12\)"): FeatureScaler().fit(train_features[:, :12])
    with pytest.raises(DataError, match="N = 0"): FeatureScaler().fit(np.zeros((0, 13)))
    state = FeatureScaler().fit(train_features).state_dict()
    with pytest.raises(CheckpointError, match=f"version {FEATURE_VERSION + 1}"):
        FeatureScaler.from_state_dict({**state, "feature_version": FEATURE_VERSION + 1})
    with pytest.raises(CheckpointError, match="lacks"): FeatureScaler.from_state_dict({k: v for k, v in state.items() if k != "std"})

# ---------------------------------------------------------------- CUDA

@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu_and_reference():
    images = [EDGE_CASES[k] for k in ("uniform noise",)] + [np.pad(EDGE_CASES["RGB uint8"][:, :, 0], ((23, 23), (13, 13)))]
    images += [(np.indices((96, 96)).sum(0) % 7 * 36).astype(np.uint8), np.full((96, 96), 77, np.uint8)]
    batch = as_batch(images)
    cpu, cuda = radiomics_features_torch(batch), radiomics_features_torch(batch.cuda())
    assert cuda.device.type == "cuda"
    assert relative_error(cuda, cpu).max() < 1e-12
    assert torch.equal(lbp_codes_torch(batch.cuda()).cpu(), lbp_codes_torch(batch))
    assert_agrees(images)
    rgb = torch.from_numpy(np.stack([EDGE_CASES["RGB float32"]] * 2)).permute(0, 3, 1, 2)
    assert torch.equal(gray_uint8_torch(rgb.cuda()).cpu(), gray_uint8_torch(rgb))
