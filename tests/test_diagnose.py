"Diagnosis (issue 21): hand-computed answers for the hierarchy, the uncertainty weighting and the metrics; the runner, predict and evaluate on tiny synthetic runs; BUSI's normal images."
import json, os, shutil, subprocess, sys
from pathlib import Path
import numpy as np, pandas as pd, pytest, torch
from PIL import Image
from radiomicnet.diagnosis.net import (UncertaintyWeighting, diagnosis_run, diagnosis_samples, hierarchical_losses, hierarchical_probs,
                                       inverse_frequency_weights)
from radiomicnet.diagnosis.classical import classical_run, descriptor_table
from radiomicnet.diagnosis.results import (build_diagnosis_results, auc_columns, diagnosis_tables, diagnosis_test_sets, diagnosis_verdict,
                                           paired_auc_difference)
from radiomicnet.eval.stats import p_cell
from radiomicnet.eval.metrics import DIAGNOSIS_CLASSES, auc_ci, classification_ece, diagnosis_metrics, sensitivity_at_specificity
from radiomicnet.data.images import synthetic_pair

REPO = Path(__file__).resolve().parent.parent

def test_hierarchical_probabilities_by_hand():
    # p(abnormal) = 0.8, p(malignant | abnormal) = 0.25: normal 0.2, benign 0.8*0.75 = 0.6, malignant 0.8*0.25 = 0.2
    p = hierarchical_probs(torch.tensor([[np.log(0.8/0.2), np.log(0.25/0.75)], [0., 0.]], dtype=torch.float64))
    assert torch.allclose(p, torch.tensor([[0.2, 0.6, 0.2], [0.5, 0.25, 0.25]], dtype=torch.float64))
    assert torch.allclose(hierarchical_probs(torch.randn(1000, 2) * 10).sum(-1), torch.ones(1000), atol=1e-6)

def test_malignancy_loss_ignores_normal_images():
    w = inverse_frequency_weights([2, 2])
    logits = torch.tensor([[0., 50.], [0., -50.]])          # a confident malignancy logit on a normal image ...
    l_abn, l_mal = hierarchical_losses(logits, torch.tensor([0, 1]), w, w)
    assert torch.isclose(l_abn, torch.tensor(np.log(2), dtype=torch.float32))
    assert l_mal < 1e-6                                      # ... costs nothing; the benign image is right with -50

def test_uncertainty_weighting_reaches_the_closed_form():
    "For fixed task losses L_i the optimum of sum exp(-s_i) L_i + s_i is s_i = log L_i (d/ds: -exp(-s) L + 1 = 0)."
    uw = UncertaintyWeighting(2)
    opt = torch.optim.Adam(uw.parameters(), lr=0.05)
    for _ in range(800):
        opt.zero_grad(); uw([torch.tensor(9.), torch.tensor(0.5)]).backward(); opt.step()
    assert np.allclose(uw.log_vars.detach().numpy(), [np.log(9), np.log(0.5)], atol=1e-3)

def test_uncertainty_weighting_on_a_two_task_regression():
    "Two regressions with noise sd 3 and 0.5: the learned log-variances converge to log 9 and log 0.25."
    g = torch.Generator().manual_seed(1)
    x = torch.randn(20000, generator=g)
    y1, y2 = 2*x + 3*torch.randn(20000, generator=g), 0.5*x + 0.5*torch.randn(20000, generator=g)
    uw, w = UncertaintyWeighting(2), torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.Adam([*uw.parameters(), w], lr=0.05)
    for _ in range(1000):
        opt.zero_grad(); uw([((w[0]*x - y1)**2).mean(), ((w[1]*x - y2)**2).mean()]).backward(); opt.step()
    assert np.allclose(uw.log_vars.detach().numpy(), [np.log(9), np.log(0.25)], atol=0.05)
    assert np.allclose(w.detach().numpy(), [2, 0.5], atol=0.05)

def test_auc_and_sensitivity_at_90_specificity_by_hand():
    # 10 negatives 0.0..0.9, positives 0.95, 0.85, 0.45, 0.05: ranked pairs 10 + 9 + 5 + 1 = 25 of 40
    y = np.r_[np.zeros(10), np.ones(4)]; s = np.r_[np.arange(10)/10, 0.95, 0.85, 0.45, 0.05]
    auc, lo, hi = auc_ci(y, s, n_resamples=300)
    assert auc == pytest.approx(0.625) and lo < auc < hi
    assert sensitivity_at_specificity(y, s) == pytest.approx(0.5)   # one false positive allowed: 0.95 and 0.85 pass
    assert sensitivity_at_specificity(y, s, 1.0) == pytest.approx(0.25)

def test_three_class_report_by_hand():
    probs = np.array([[.8, .1, .1], [.1, .8, .1], [.1, .1, .8], [.1, .8, .1]])
    rows, three = diagnosis_metrics(probs, [0, 1, 2, 2], n_resamples=20)
    assert three["accuracy_3class"] == pytest.approx(0.75)
    assert three["confusion"].tolist() == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
    assert rows.loc["normal_vs_abnormal", "auc"] == pytest.approx(1.0)
    # benign vs malignant scores p_m/(p_b+p_m): the benign image 1/9; the malignant ones 8/9 (right) and 1/9 (a tie, 1/2)
    assert rows.loc["benign_vs_malignant", "auc"] == pytest.approx(0.75)
    assert classification_ece(probs, [0, 1, 2, 2])[0] == pytest.approx(abs(0.75 - 0.8))

def _cli(tmp_path, *args):
    "radiomicnet-diagnose from a script file (`python -c` would not parse the arguments: fastcore's call_parse needs a __main__ module)."
    script = tmp_path/"diagnose_cli.py"
    script.write_text("from radiomicnet.cli import radiomicnet_diagnose\nradiomicnet_diagnose()\n")
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))

def test_cli_help_and_bad_arguments(tmp_path):
    out = _cli(tmp_path, "--help")
    assert out.returncode == 0 and "usage:" in out.stdout and "--seg-checkpoint" in out.stdout
    out = _cli(tmp_path, "--arm", "texture", "--out", str(tmp_path))   # refused by the parser, which lists the choices
    assert out.returncode == 2 and "argument --arm: invalid choice: 'texture'" in out.stderr and "{image,radiomics,fused,all}" in out.stderr
    out = _cli(tmp_path, "--what", "classical", "--out", str(tmp_path))
    assert out.returncode == 1 and "--seg-checkpoint" in out.stderr and len(out.stderr.strip().splitlines()) == 1

@pytest.fixture(scope="module")
def tiny_diagnosis(tmp_path_factory):
    "A 1-epoch synthetic diagnosis run (36 images of 64 px, seconds): real plumbing, labels without signal."
    out = tmp_path_factory.mktemp("diag")/"runs"/"fused-hierarchical-s0"
    summary = diagnosis_run("fused", "hierarchical", "synthetic", out_dir=out, epochs=1, img_size=64, bs=8, device="cpu")
    return out, summary

def test_run_writes_and_resumes(tiny_diagnosis):
    run, summary = tiny_diagnosis
    preds = pd.read_csv(run/"test_predictions.csv")
    assert np.allclose(preds[["p_normal", "p_benign", "p_malignant"]].sum(axis=1), 1)
    assert len(summary["log_vars"]) == 3 and summary["epochs_run"] == 1
    history = (run/"history.csv").read_text()
    (run/"summary.json").unlink()                             # as if interrupted after the last epoch
    again = diagnosis_run("fused", "hierarchical", "synthetic", out_dir=run, epochs=1, img_size=64, bs=8, device="cpu")
    assert (run/"history.csv").read_text() == history        # resumed from last.pt: no epoch trained again
    assert again["valid_auc"] == summary["valid_auc"]

def test_tables_from_prediction_files(tiny_diagnosis, tmp_path):
    run, _ = tiny_diagnosis
    res = tmp_path/"diagnosis"; shutil.copytree(run, res/"runs"/run.name)
    classical_run("ground_truth", dataset="synthetic", out_dir=res/"classical", img_size=64)
    written = {f.name for f in build_diagnosis_results(res, n_resamples=50)}
    assert {"diagnosis_metrics.csv", "diagnosis_paired.csv", "diagnosis_roc.png", "diagnosis_reliability.png"} <= written
    metrics = pd.read_csv(res/"tables"/"diagnosis_metrics.csv")
    assert set(metrics.method) == {"fused-hierarchical", "classical-logreg (ground truth masks)", "classical-gbt (ground truth masks)"}
    assert set(pd.read_csv(res/"tables"/"diagnosis_paired.csv").test) == {"paired bootstrap"}
    runs = pd.read_csv(res/"tables"/"diagnosis_runs.csv")
    assert runs.kept_epoch_from_1.tolist() == [json.loads((run/"summary.json").read_text())["best_epoch"] + 1]   # counted from 1
    assert metrics.commits.notna().all() and (res/"COMMANDS.md").exists() and "not yet run" not in (res/"COMMANDS.md").read_text()

def test_predict_adds_probabilities_and_goes_past_bad_files(tiny_diagnosis, tmp_path):
    run, _ = tiny_diagnosis
    inputs = tmp_path/"in"; inputs.mkdir()
    for i in range(2): Image.fromarray(synthetic_pair(i, 96)[0]).save(inputs/f"img{i}.png")
    (inputs/"broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    exe = shutil.which("radiomicnet-predict")
    out = subprocess.run([exe, str(inputs), "--checkpoint", str(run/"best.pt"), "--out", str(tmp_path/"out"), "--device", "cpu"],
                         capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert out.returncode == 1                                # one file failed ...
    errors = [l for l in out.stderr.splitlines() if l.startswith("error:")]
    assert len(errors) == 1 and "broken.png" in errors[0]     # ... named on one line
    report = pd.read_csv(tmp_path/"out"/"report.csv")        # ... and the others went on
    assert len(report) == 2 and np.allclose(report[["p_normal", "p_benign", "p_malignant"]].sum(axis=1), 1)

def test_evaluate_scores_a_folder_with_one_subfolder_per_class(tiny_diagnosis, tmp_path):
    run, _ = tiny_diagnosis
    folder = tmp_path/"labelled"
    for k, c in enumerate(DIAGNOSIS_CLASSES):
        for sub in ("images", "masks"): (folder/c/sub).mkdir(parents=True)
        for i in range(3):
            image, mask = synthetic_pair(10*k + i, 64)
            Image.fromarray(image).save(folder/c/"images"/f"{c}{i}.png")
            Image.fromarray(np.zeros_like(mask, np.uint8) if c == "normal" else mask.astype(np.uint8)*255).save(folder/c/"masks"/f"{c}{i}.png")
    exe = shutil.which("radiomicnet-evaluate")
    out = subprocess.run([exe, "--checkpoint", str(run/"best.pt"), "--images", str(folder), "--out", str(tmp_path/"ev"), "--device", "cpu"],
                         capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert out.returncode == 0, out.stderr[-2000:]
    metrics = pd.read_csv(tmp_path/"ev"/"diagnosis_metrics.csv", index_col=0)
    assert list(metrics.index) == ["normal_vs_abnormal", "benign_vs_malignant"] and (metrics.n == [9, 6]).all()
    assert json.loads((tmp_path/"ev"/"diagnosis.json").read_text())["n_images"] == 9
    assert all((tmp_path/"ev"/c/"metrics.json").exists() for c in DIAGNOSIS_CLASSES)

def test_busi_normal_images_in_the_committed_split(data_dir, tmp_path):
    samples = diagnosis_samples("busi", data_dir)
    normal = {sp: sum(s.label == "normal" for s in ss) for sp, ss in samples.items()}
    assert normal == dict(train=93, valid=20, test=20)
    assert sum(s.label != "normal" for ss in samples.values() for s in ss) == 647
    few = [s for c in DIAGNOSIS_CLASSES for s in [t for t in samples["test"] if t.label == c][:2]]
    table, refused = descriptor_table(few, None, 64, cache_dir=tmp_path)
    assert not refused and table.lesion_found.tolist() == [0, 0, 1, 1, 1, 1]   # ground truth: normal images have no lesion

# ---- issue 32: test_dedup, selection on validation, intervals, words -------------------------------------------------

def _preds(malignancy, ids="abcde", labels=(1, 1, 2, 2, 0)):
    "A prediction table by hand: benign a, b; malignant c, d; normal e; the abnormal images' p_malignant is `malignancy`."
    q = list(malignancy)
    return pd.DataFrame(dict(id=list(ids), label=list(labels), p_normal=[0, 0, 0, 0, .9], p_benign=[1 - v for v in q] + [.05], p_malignant=q + [.05]))

def test_seed_ensemble_beside_single_seeds_by_hand():
    # seed 1 ranks 3 of the 4 benign-malignant pairs right, seed 2 too; their mean (.4, .4, .6, .6) ranks all 4 right
    cols = auc_columns([_preds([.2, .6, .4, .8]), _preds([.6, .2, .8, .4])], n_resamples=100)["benign_vs_malignant"]
    assert (cols["auc"], cols["auc_seed_mean"], cols["auc_seed_sd"], cols["n"]) == (1.0, 0.75, 0.0, 4)
    # without b: seed 1 gets 2 of 2 pairs, seed 2 gets 1 of 2; SD of (1, 0.5) is sqrt(1/8)
    cols = auc_columns([_preds([.2, .6, .4, .8]), _preds([.6, .2, .8, .4])], ids=["a", "c", "d", "e"], suffix="_dedup", n_resamples=100)["benign_vs_malignant"]
    assert cols["auc_dedup_seed_mean"] == pytest.approx(0.75) and cols["auc_dedup_seed_sd"] == pytest.approx(np.sqrt(1/8)) and cols["n_dedup"] == 3

def test_paired_difference_prints_p_below_resolution_as_a_bound():
    r = paired_auc_difference([0, 0, 1, 1], [.1, .2, .8, .9], [.9, .8, .2, .1], n_resamples=2000)   # AUC 1 against AUC 0 in every resample
    assert (r["delta"], r["ci_low"], r["ci_high"], r["p"]) == (1.0, 1.0, 1.0, 0.0)
    assert p_cell(r["p"], 1/2000) == "< 0.0005"
    same = paired_auc_difference([0, 0, 1, 1], [.1, .2, .8, .9], [.1, .2, .8, .9], n_resamples=200)
    assert (same["delta"], same["ci_low"], same["ci_high"], same["p"]) == (0.0, 0.0, 0.0, 1.0)

def test_test_sets_come_from_the_duplicates_module(monkeypatch):
    import types
    fake = types.SimpleNamespace(dedup_test_ids=lambda d: ["a", "c"], label_conflicts=lambda d: ["b", "z"])
    monkeypatch.setitem(sys.modules, "radiomicnet.data.duplicates", fake)
    assert diagnosis_test_sets("busi", list("abcd")) == ({"test": list("abcd"), "test_dedup": ["a", "c"], "test_no_conflicts": ["a", "c", "d"]}, "")
    monkeypatch.setitem(sys.modules, "radiomicnet.data.duplicates", None)
    sets, why = diagnosis_test_sets("busi", ["a"])
    assert sets == {"test": ["a"]} and "radiomicnet.data.duplicates gave no lists" in why

def _deep_run(folder, name, seed, valid_auc, preds, commit="aaaaaaa"):
    run = folder/"runs"/f"{name}-s{seed}"; run.mkdir(parents=True)
    (run/"summary.json").write_text(json.dumps(dict(seed=seed, valid_auc=valid_auc, git_commit=commit, command=f"radiomicnet-diagnose {name} {seed}")))
    preds.to_csv(run/"test_predictions.csv", index=False)

def test_the_selected_arm_is_the_best_on_validation_not_on_test(tmp_path):
    folder = tmp_path/"busi"/"cpu"/"diagnosis"
    for seed in (0, 1):   # "test-best" ranks every test pair right but scores lower on validation (mean 0.6 against 0.85)
        _deep_run(folder, "test-best", seed, 0.6, _preds([.1, .2, .8, .9]))
        _deep_run(folder, "valid-best", seed, [0.8, 0.9][seed], _preds([.1, .9, .8, .2]))
    tables = diagnosis_tables(folder, n_resamples=100, sets=({"test": list("abcde")}, "made up"))
    assert tables["diagnosis_selected"].method.unique().tolist() == ["valid-best"]
    metrics = tables["diagnosis_metrics"].set_index(["method", "task"])
    assert metrics.loc[("valid-best", "benign_vs_malignant"), "selected"] == "deep arms" and metrics.loc[("test-best", "benign_vs_malignant"), "auc"] == 1.0
    assert tables["diagnosis_test_sets"].note.iloc[-1] == "not computed: made up"

def _verdict_folder(tmp_path, delta, low, high, p, seeds_b=1):
    "Made-up tables: the selected deep arm 'arm-x' (3 seeds) against the selected classical model ('classical-gbt (predicted masks)', `seeds_b` seeds)."
    t = tmp_path/"busi"/"cpu"/"diagnosis"/"tables"; t.mkdir(parents=True)
    b, task = "classical-gbt (predicted masks)", dict(task="benign_vs_malignant")
    pd.DataFrame([dict(family="deep arms", method="arm-x", selected_on="validation AUC", selection_auc=0.9, n_seeds=3, **task),
                  dict(family="classical, predicted masks", method=b, selected_on="CV AUC", selection_auc=0.8, n_seeds=seeds_b, **task)]).to_csv(t/"diagnosis_selected.csv", index=False)
    pd.DataFrame([dict(method="arm-x", n_seeds=3, auc=0.9, auc_low=0.85, auc_high=0.95, n=98, auc_dedup=0.8, auc_dedup_low=0.7, auc_dedup_high=0.9, n_dedup=60,
                       auc_seed_mean=0.88, auc_seed_sd=0.01, commits="aaaaaaa", **task),
                  dict(method=b, n_seeds=seeds_b, auc=0.85, auc_low=0.8, auc_high=0.9, n=98, auc_dedup=0.75, auc_dedup_low=0.65, auc_dedup_high=0.85, n_dedup=60,
                       commits="aaaaaaa", **task)]).to_csv(t/"diagnosis_metrics.csv", index=False)
    pd.DataFrame([dict(method="arm-x", reference=b, delta=delta, delta_low=low, delta_high=high, p=p, delta_dedup=delta, delta_dedup_low=low, delta_dedup_high=high,
                       p_dedup=p, **task)]).to_csv(t/"diagnosis_paired.csv", index=False)
    return diagnosis_verdict(t.parent)

def test_verdict_leads_with_the_selected_arm_on_test_dedup(tmp_path):
    text = _verdict_folder(tmp_path, 0.05, 0.01, 0.09, "0.021")
    first = text.splitlines()[1]
    assert first.startswith("- **arm-x**, selected among the deep arms by its validation AUC, 0.900 (3 seeds, probabilities averaged over seeds).")
    assert first.index("AUC 0.80 (95% CI 0.70 to 0.90; 60 images) on the deduplicated test split")  # half-width 0.1: 2 decimals < first.index("AUC 0.900 (95% CI 0.850 to 0.950; 98 images) on the full test split")

def test_verdict_significant_difference(tmp_path):
    text = _verdict_folder(tmp_path, 0.05, 0.01, 0.09, "< 0.0005")   # the CI excludes 0
    assert "arm-x higher: Δ = +0.050 (95% CI +0.010 to +0.090), p < 0.0005 on the full test split" in text

def test_verdict_no_detectable_difference(tmp_path):
    text = _verdict_folder(tmp_path, 0.02, -0.03, 0.07, "0.43")      # the CI includes 0
    assert "no detectable difference: Δ = +0.020 (95% CI −0.030 to +0.070), p = 0.43 on the deduplicated test split" in text
    assert "higher" not in text and "lower" not in text

def test_verdict_mixed_seeds(tmp_path):
    text = _verdict_folder(tmp_path, 0.02, -0.03, 0.07, "0.43", seeds_b=1)
    assert "(3 seeds against 1 seed;" in text and "**classical-gbt (predicted masks)**, selected among the classical models on predicted masks by its CV AUC, 0.800 (1 seed)." in text

def test_committed_busi_tables_agree_with_their_run_files():
    folder = REPO/"results"/"busi"/"cpu"/"diagnosis"
    if not (folder/"tables"/"diagnosis_selected.csv").exists(): pytest.skip("no committed diagnosis tables")
    runs = pd.read_csv(folder/"tables"/"diagnosis_runs.csv")
    for r in runs.itertuples():
        s = json.loads((folder/"runs"/f"{r.method}-s{r.seed}"/"summary.json").read_text())
        assert (r.kept_epoch_from_1, r.commits) == (s["best_epoch"] + 1, s["git_commit"])
    valid = pd.DataFrame([dict(method=f.parent.name.rsplit("-s", 1)[0], auc=json.loads(f.read_text())["valid_auc"]) for f in folder.glob("runs/*/summary.json")])
    selected = pd.read_csv(folder/"tables"/"diagnosis_selected.csv").query("family == 'deep arms'").method.unique().tolist()
    assert selected == [valid.groupby("method").auc.mean().idxmax()]
    paired = pd.read_csv(folder/"tables"/"diagnosis_paired.csv", dtype=str)
    assert not paired.filter(regex="^p(_|$)").isin(["0", "0.0", "0.000"]).any().any()   # a p below the resolution is a bound, never 0
