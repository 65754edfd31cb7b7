"Known-answer, output and baseline tests of radiomicnet.eval.interpret (fast: untrained small models on 64x64 synthetic images)."
import json
import matplotlib.pyplot as plt
import numpy as np, pandas as pd, pytest, torch
from torch import nn
from PIL import Image
from radiomicnet.core import CheckpointError, RadiomicNetError
from radiomicnet.features import FEATURE_NAMES, FeatureScaler
from radiomicnet.model.net import RadiomicNet, save_checkpoint
from radiomicnet.data.datasets import load_split
from radiomicnet.data.loaders import cached_radiomics
from radiomicnet.eval.scores import ERROR_COLOURS, error_overlay
from radiomicnet.eval.interpret import (agreement_sentence, attention_level, gate_table,
                                   gradient_importance, importance_percent, importance_table, interpret_checkpoint,
                                   load_test_set, permutation_importance, qualitative_grid, rank_agreement, run_model)

SIZE = 64
CONFIG = dict(dataset="synthetic", img_size=SIZE, seed=0, variant="full")

@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    "A private feature cache, so the tests never touch the user's."
    return tmp_path_factory.mktemp("feature-cache")

@pytest.fixture(scope="module")
def scaler(cache):
    "A scaler fitted on (part of) the synthetic training split, as a training run fits it."
    return FeatureScaler().fit(cached_radiomics(load_split("synthetic", "train", size=SIZE, subset=16), SIZE, cache))

@pytest.fixture(scope="module")
def test_set(scaler, cache):
    return load_test_set("synthetic", scaler, img_size=SIZE, subset=6, cache_dir=cache)

def untrained(mode:str, seed:int=0)->RadiomicNet:
    torch.manual_seed(seed)
    return RadiomicNet(rag_mode=mode).eval()

def grid_shape(fig)->tuple:
    "(rows, columns) of a figure's subplot grid; closes the figure."
    shape = fig.axes[0].get_gridspec().get_geometry()
    plt.close(fig)
    return shape

class OneFeatureModel(nn.Module):
    "Known answer: the whole image is foreground exactly when radiomics feature `j` is positive; nothing else is read."
    def __init__(self, j:int):
        super().__init__()
        self.j, self.scale = j, nn.Parameter(torch.tensor(20.0))
    def forward(self, image, radiomics):
        return (self.scale * radiomics[:, self.j])[:, None, None, None].expand(-1, 1, *image.shape[-2:])

def test_test_set_is_standardised_with_the_given_scaler(test_set, scaler, cache):
    raw = cached_radiomics(load_split("synthetic", "test", size=SIZE, subset=6), SIZE, cache)
    np.testing.assert_allclose(test_set.radiomics.numpy(), scaler.transform(raw), rtol=1e-6, atol=1e-6)
    assert test_set.images.shape == (6, 3, SIZE, SIZE) and 0 <= test_set.images.min() and test_set.images.max() <= 1
    assert set(test_set.masks.unique().tolist()) <= {0.0, 1.0}

def test_percentages_sum_to_100_and_are_non_negative(test_set, scaler):
    rng = np.random.default_rng(0)
    for _ in range(5):
        p = importance_percent(rng.exponential(size=13))
        assert (p >= 0).all() and p.sum() == pytest.approx(100)
    imp = gradient_importance(untrained("full"), test_set, scaler=scaler, device="cpu")
    assert list(imp.index) == list(FEATURE_NAMES)
    assert (imp.percent >= 0).all() and imp.percent.sum() == pytest.approx(100) and (imp.percent > 0).sum() > 1
    np.testing.assert_array_equal(importance_percent(np.zeros(13)), np.zeros(13))
    with pytest.raises(RadiomicNetError, match=">= 0"): importance_percent([1.0, -0.5])

def test_features_the_model_cannot_see_get_zero_from_both_attributions(test_set, scaler):
    model = untrained("spatial")  # radiomics never enter a spatial-only RAG network
    grad = gradient_importance(model, test_set, scaler=scaler, device="cpu")
    perm = permutation_importance(model, test_set, n_repeats=2, seed=1, device="cpu")
    np.testing.assert_array_equal(grad.to_numpy(), 0)
    np.testing.assert_array_equal(perm[["dsc_drop", "dsc_drop_std"]].to_numpy(), 0)
    agreement = rank_agreement(importance_table(grad, perm))
    assert np.isnan(agreement["spearman_rho"]) and np.isnan(agreement["spearman_p"])

def test_both_attributions_find_the_only_feature_used(test_set):
    j = int(torch.argmin(((test_set.radiomics > 0).float().mean(0) - 0.5).abs()))  # a feature of both signs on these images
    name, model = FEATURE_NAMES[j], OneFeatureModel(j)
    grad = gradient_importance(model, test_set, loss_func=lambda logits, mask, target: nn.functional.binary_cross_entropy_with_logits(logits, mask),
                               device="cpu")
    assert grad.percent.idxmax() == name and grad.percent[name] == pytest.approx(100)
    perm = permutation_importance(model, test_set, n_repeats=4, seed=0, device="cpu")
    assert (perm.drop(index=name)[["dsc_drop", "dsc_drop_std"]].to_numpy() == 0).all()
    assert perm.loc[name, "dsc_drop_std"] > 0  # shuffling feature j changes which images are predicted foreground

def test_agreement_sentence():
    t = pd.DataFrame(dict(percent=np.arange(13.0), dsc_drop=np.arange(13.0)), index=list(FEATURE_NAMES))
    assert agreement_sentence(t, rank_agreement(t)).startswith("The gradient and permutation rankings agree: Spearman rho = 1.00")
    shuffled = t.assign(dsc_drop=np.random.default_rng(0).permutation(np.arange(13.0)))
    rho = rank_agreement(shuffled)["spearman_rho"]
    assert rho == pytest.approx(pd.Series(shuffled.percent).corr(shuffled.dsc_drop, method="spearman"))
    zero = t.assign(percent=0.0)
    assert agreement_sentence(zero, rank_agreement(zero)) == "Agreement undefined: the model does not react to the radiomics at all (every gradient is 0)."

def test_permutation_importance_is_reproducible(test_set):
    model = untrained("full")
    a = permutation_importance(model, test_set, n_repeats=2, seed=3, device="cpu")
    pd.testing.assert_frame_equal(a, permutation_importance(model, test_set, n_repeats=2, seed=3, device="cpu"))

def test_overlay_colours_on_a_hand_built_case():
    image = np.full((6, 6, 3), 0.2)
    pred, mask = np.zeros((6, 6), bool), np.zeros((6, 6), bool)
    pred[:3, :3] = mask[:3, :3] = True   # TP block
    pred[4, 4] = True                    # one FP pixel
    mask[0, 5] = True                    # one FN pixel
    out = error_overlay(image, pred, mask, alpha=1.0)
    np.testing.assert_array_equal(out[1, 1], ERROR_COLOURS["tp"]); np.testing.assert_array_equal(out[1, 1], [0, 1, 0])
    np.testing.assert_array_equal(out[4, 4], [1, 0, 0])
    np.testing.assert_array_equal(out[0, 5], [0, 0, 1])
    np.testing.assert_array_equal(out[5, 0], [0.2, 0.2, 0.2])
    assert (out[..., 1] > 0.5).sum() == 9 and (out[..., 0] > 0.5).sum() == 1 and (out[..., 2] > 0.5).sum() == 1
    np.testing.assert_allclose(error_overlay(torch.full((6, 6), 0.2), torch.tensor(pred), torch.tensor(mask), alpha=0.5)[4, 4], [0.6, 0.1, 0.1])
    np.testing.assert_array_equal(image, 0.2)  # the input is not modified

@pytest.mark.parametrize("mode", ["full", "channel"])
def test_gate_table_reports_the_gates_values(test_set, mode):
    "Known answers: with W_c2 = 0 every alpha_c is sigmoid(0) = 0.5 exactly, and gamma_raw = log 3 gives g = 3/4 exactly."
    model = untrained(mode)
    with torch.no_grad():
        for i, gate in enumerate(model.gates):
            gate.channel_mlp[2].weight.zero_()
            if mode == "full": gate.gamma_raw.fill_(float(np.log(3.0)) if i % 2 else 0.0)
    outputs = run_model(model, test_set, bs=4, device="cpu")
    table = gate_table(outputs)
    assert list(table.stride) == [16, 8, 4, 2] and list(table.channels) == [96, 32, 24, 16]
    assert table.a_c_min.eq(0.5).all() and table.a_c_max.eq(0.5).all()
    for level in outputs.levels: assert level.a_c.shape == (len(test_set), level.channels)
    if mode == "full": np.testing.assert_allclose(table.g, [0.5, 0.75, 0.5, 0.75], rtol=1e-6)
    else: assert table.g.isna().all()

def test_attention_level_out_of_range_is_a_clear_error(test_set):
    outputs = run_model(untrained("full"), test_set[:2], device="cpu")
    with pytest.raises(RadiomicNetError, match="no decoder level 7; levels are 0..3"): attention_level(outputs, 7)

def _checkpoint(path, model, name, kwargs, scaler):
    return save_checkpoint(path, model, name, kwargs, scaler, extra=dict(config=dict(CONFIG, model_name=name)))

def test_interpret_checkpoint_writes_every_output(tmp_path, scaler, cache):
    ckpt = _checkpoint(tmp_path/"best.pt", untrained("full"), "radiomicnet", dict(rag_mode="full"), scaler)
    summary = interpret_checkpoint(ckpt, tmp_path/"out", subset=6, n_repeats=1, device="cpu", cache_dir=cache)
    files = sorted(p.name for p in (tmp_path/"out").iterdir())
    assert files == ["channel_attention.csv", "feature_importance.csv", "feature_importance.png", "gate_correlation.csv",
                     "gate_correlation.png", "gate_variance.csv", "gates.csv", "gates.png", "per_image.csv", "qualitative.png", "summary.json"]
    for png in (tmp_path/"out").glob("*.png"):
        assert round(Image.open(png).info["dpi"][0]) >= 150
    importance = pd.read_csv(tmp_path/"out"/"feature_importance.csv", index_col=0)
    assert sorted(importance.index) == sorted(FEATURE_NAMES) and importance.percent.sum() == pytest.approx(100)
    assert len(pd.read_csv(tmp_path/"out"/"gates.csv")) == 4 and len(pd.read_csv(tmp_path/"out"/"per_image.csv")) == 6
    shares = pd.read_csv(tmp_path/"out"/"gate_variance.csv")
    assert len(shares) == 4 and np.allclose(shares.a_c_images + shares.a_c_channels + shares.a_c_image_x_channel, 1)
    assert list(pd.read_csv(tmp_path/"out"/"gate_correlation.csv", index_col=0).columns) == list(FEATURE_NAMES)
    assert json.loads((tmp_path/"out"/"summary.json").read_text()) == summary
    assert summary["n_images"] == 6 and summary["attention_stride"] == 2 and summary["gates_skipped"] is None

def test_baseline_without_gates(tmp_path, scaler, cache, test_set):
    from radiomicnet.model.baselines import UNet
    torch.manual_seed(0)
    kwargs = dict(channels=(8, 16, 32, 64, 128))
    ckpt = _checkpoint(tmp_path/"unet.pt", UNet(**kwargs), "unet", kwargs, scaler)
    summary = interpret_checkpoint(ckpt, tmp_path/"out", subset=6, n_repeats=1, device="cpu", cache_dir=cache)
    files = sorted(p.name for p in (tmp_path/"out").iterdir())
    assert files == ["feature_importance.csv", "feature_importance.png", "per_image.csv", "qualitative.png", "summary.json"]
    assert "unet.pt: the model has no Radiomics Attention Gates" in summary["gates_skipped"]
    assert summary["attention_level"] is None and summary["spearman_rho"] is None
    assert (pd.read_csv(tmp_path/"out"/"feature_importance.csv").mean_abs_grad == 0).all()
    outputs = run_model(UNet(**kwargs), test_set, device="cpu", source=ckpt)
    with pytest.raises(RadiomicNetError, match="unet.pt: the model has no Radiomics Attention Gates"): gate_table(outputs)
    assert grid_shape(qualitative_grid(test_set, outputs, np.linspace(0, 1, len(test_set)))) == (3, 4)  # no attention column

def test_rag_none_has_no_gate_values_but_a_grid(test_set):
    outputs = run_model(untrained("none"), test_set, device="cpu", source="no_rag.pt")
    with pytest.raises(RadiomicNetError, match="no_rag.pt: its gates run in rag_mode 'none'"): gate_table(outputs)
    assert grid_shape(qualitative_grid(test_set, outputs, np.zeros(len(test_set)))) == (3, 4)
    assert grid_shape(qualitative_grid(test_set, run_model(untrained("spatial"), test_set, device="cpu"), np.zeros(len(test_set)))) == (3, 5)

def test_missing_checkpoint_names_the_file(tmp_path):
    with pytest.raises(CheckpointError, match="nothing.pt"): interpret_checkpoint(tmp_path/"nothing.pt", tmp_path/"out")
    assert not (tmp_path/"out").exists()

def test_real_busi_test_split_loads(data_dir, tmp_path):
    "Only the loading path on the genuine data (a handful of images); nothing is written outside tmp_path."
    samples = load_split("busi", "train", data_dir, subset=8, size=SIZE)
    scaler = FeatureScaler().fit(cached_radiomics(samples, SIZE, tmp_path))
    test = load_test_set("busi", scaler, data_dir, img_size=SIZE, subset=4, cache_dir=tmp_path)
    assert len(test) == 4 and test.radiomics.shape == (4, 13) and torch.isfinite(test.radiomics).all()
    outputs = run_model(untrained("full"), test, device="cpu")
    assert gate_table(outputs).g.eq(0.5).all()
