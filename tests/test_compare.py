"The paper runner: papermill runs over seeds, reuse, failures recorded, tables over seeds from the run files alone."
import json, os, re, shutil, subprocess
from pathlib import Path
import numpy as np, pandas as pd, pytest
from scipy import stats
from radiomicnet.core import RadiomicNetError
from radiomicnet.study import runs as study_runs, tables as study_tables
from conftest import REPO

@pytest.fixture(scope="module")
def quick_results(tmp_path_factory):
    "One real run (RadiomicNet full, 1 epoch, through notebooks 12, 16 and 18) plus one that fails, on synthetic data."
    root = tmp_path_factory.mktemp("results")
    mp = pytest.MonkeyPatch()
    mp.setitem(study_runs.BUDGETS, "quick", dict(protocol="cpu", img_size=64, epochs=1))
    status = study_tables.run_paper("synthetic", "quick", root, runs=[("radiomicnet", "full"), ("unet", "no_such_variant")], measure=False)
    mp.undo()
    return root/"synthetic"/"quick", status

def test_runs_are_done_or_failed_with_their_error(quick_results):
    root, status = quick_results
    rows = status.set_index("run")
    assert rows.loc["radiomicnet-full-s0", "status"] == "done"
    assert rows.loc["unet-no_such_variant-s0", "status"] == "failed"
    assert "unknown variant 'no_such_variant'" in rows.loc["unet-no_such_variant-s0", "error"]
    assert pd.read_csv(root/"status.csv").run.tolist() == ["radiomicnet-full-s0", "unet-no_such_variant-s0"]
    for nb in ["12_training", "16_evaluation", "18_interpretability"]:
        assert (root/"notebooks"/f"radiomicnet-full-s0-{nb}.ipynb").exists()
    summary = json.loads((root/"runs"/"radiomicnet-full-s0"/"summary.json").read_text())
    assert summary["protocol"] == "cpu" and summary["seed"] == 0 and summary["config"]["epochs"] == 1

def test_tables_show_missing_runs_as_missing(quick_results):
    root, _ = quick_results
    methods = pd.read_csv(root/"tables"/"table1_2_methods.csv").set_index("method")
    metrics = json.loads((root/"runs"/"radiomicnet-full-s0"/"metrics.json").read_text())
    assert methods.loc["RadiomicNet", "n_seeds"] == 1 and methods.loc["RadiomicNet", "dsc_mean"] == pytest.approx(metrics["dsc_mean"])
    assert pd.isna(methods.loc["RadiomicNet", "dsc_std"])                     # one seed: no spread to report
    assert methods.loc["U-Net", "n_seeds"] == 0 and pd.isna(methods.loc["U-Net", "dsc_mean"])
    ablation = pd.read_csv(root/"tables"/"table3_ablation.csv")
    assert (ablation.n_seeds == 0).sum() == 5
    assert (root/"figures"/"validation_dice.png").exists()

def test_complete_runs_are_reused(quick_results):
    root, _ = quick_results
    status = study_tables.run_paper("synthetic", "quick", root.parent.parent, runs=[("radiomicnet", "full")], measure=False)
    assert status.reused.tolist() == [True]

def test_bad_budget_seeds_and_unknown_run_are_clear_errors(tmp_path):
    with pytest.raises(RadiomicNetError, match="unknown budget 'huge'"): study_tables.run_paper("synthetic", "huge", tmp_path)
    out = subprocess.run([shutil.which("radiomicnet-paper"), "--only", "nope-full", "--out", str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 1 and out.stderr.strip().splitlines()[-1].startswith("error: unknown run(s) ['nope-full']")
    out = subprocess.run([shutil.which("radiomicnet-paper"), "--seeds", "0,one", "--out", str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 1 and out.stderr.strip().splitlines()[-1] == "error: --seeds '0,one': give comma-separated integers, e.g. 0,1,2"

def test_missing_notebooks_are_a_clear_error_before_any_run(tmp_path):
    with pytest.raises(RadiomicNetError, match="notebooks are not there.*pip install -e"):
        study_tables.run_paper("synthetic", "quick", tmp_path/"results", nbs_path=tmp_path/"site-packages")
    assert not (tmp_path/"results").exists()                      # nothing written, no run recorded as failed

# --- the paper's numbers, read from the paper's own text ----------------------------------------------------------

PAPER_FILE = "radiomicnet-arxiv-2607.02185.txt"

def paper_dir():
    "The folder of the paper's text: ../shared/paper beside the clone (as on CI), else beside $RADIOMICNET_DATA; None when absent."
    for cand in (REPO.parent/"shared"/"paper", os.environ.get("RADIOMICNET_DATA") and Path(os.environ["RADIOMICNET_DATA"]).parent/"paper"):
        if cand and (Path(cand)/PAPER_FILE).is_file(): return Path(cand)
    return None

@pytest.fixture(scope="module")
def paper():
    "Tables I-V parsed from the paper's text (the arXiv HTML rendered to text: each number is followed by its LaTeX source)."
    d = paper_dir()
    if d is None: pytest.skip(f"paper text absent: no {PAPER_FILE} in ../shared/paper beside the clone or beside $RADIOMICNET_DATA")
    return parse_paper_tables((d/PAPER_FILE).read_text())

def _table_rows(text, caption, n_rows):
    "The `n_rows` lines after the header line that follows the line starting with `caption` (no-break spaces made spaces)."
    lines = text.replace("\xa0", " ").splitlines()
    at, = [i for i, l in enumerate(lines) if l.startswith(caption)]
    return [l for l in lines[at + 2:] if l.strip() and not l.startswith(("Component ablation", "RAG stream decomposition"))][:n_rows]

def _leading_numbers(row):
    "The numbers of a table row, one per cell: a cell such as '0.763\\mathbf{0.763}^{*}' gives its first number only."
    return [float(m.group(1)) for m in (re.match(r"(\d+\.\d+)", tok) for tok in row.split()) if m]

PAPER_METHOD_ROWS = {"U-Net ": "unet", "UNet++ ": "unetpp", "TransUNet ": "transunet", "U-KAN ": "ukan", "RadiomicNet": "radiomicnet"}
PAPER_ABLATION_ROWS = {"w/o RAG": "no_rag", "w/o RC": "no_rc", "w/o bnd": "no_bnd", "RAG: spatial": "rag_spatial",
                       "RAG: channel": "rag_channel", "RAG: full": "rag_full", "RadiomicNet (full": "full"}

def _key(row, keys): (k,) = [v for prefix, v in keys.items() if row.startswith(prefix)]; return k

def parse_paper_tables(text):
    "{'methods': {dataset: {method: dict}}, 'ablation': {variant: dict}, 'calibration': {variant: dict}, 'efficiency': {method: dict}}."
    methods = {}
    for dataset, caption in (("busi", "TABLE I:"), ("kvasir-seg", "TABLE II:")):
        methods[dataset] = {}
        for row in _table_rows(text, caption, 5):
            nums = _leading_numbers(re.sub(r"\[\d+\]", "", row))       # drop citations such as [1]
            methods[dataset][_key(row, PAPER_METHOD_ROWS)] = dict(zip(("params_M", "dsc", "iou", "precision", "recall"), nums))
    ablation = {}
    for row in _table_rows(text, "TABLE III:", 7):                      # '0.731±0.240.731\pm 0.24': mean before ±, std after \pm
        means, stds = re.findall(r"(?:^|\s)(\d\.\d+)±", row), re.findall(r"\\pm\s*(\d+\.\d+)", row)
        assert len(means) == len(stds) == 2, row
        ablation[_key(row, PAPER_ABLATION_ROWS)] = dict(dsc=float(means[0]), dsc_std=float(stds[0]), iou=float(means[1]), iou_std=float(stds[1]))
    calibration = {}
    for row in _table_rows(text, "TABLE IV:", 2):
        ece, dsc = (float(x) for x in re.findall(r"\d+\.\d+", row)[-2:])
        calibration["no_rc" if row.startswith("w/o") else "full"] = dict(ece=ece, dsc=dsc)
    efficiency = {}
    for row in _table_rows(text, "TABLE V:", 5):
        nums = _leading_numbers(row)
        efficiency[_key(row + " ", PAPER_METHOD_ROWS)] = dict(zip(("params_M", "size_MB", "infer_ms"), nums))
    return dict(methods=methods, ablation=ablation, calibration=calibration, efficiency=efficiency)

def test_paper_parser_reads_a_known_row():
    "The parser on rows written like the paper's text, with the answers known."
    text = ("TABLE I: x\nMethod Params (M) DSC IoU Precision Recall\nU-Net\xa0[1] 31.0 0.5 0.25\nUNet++ [2] 9.0 0.1 0.2\nTransUNet [3] 93.0 0.1 0.2\n"
            "U-KAN [4] 14.0 0.1 0.2\nRadiomicNet (Ours) 3.27 0.763\\mathbf{0.763}^{*} 0.662 0.762 0.845\n"
            "TABLE III: y\nVariant DSC IoU\nComponent ablation\nw/o RAG (base) 0.731±0.240.731\\pm 0.24 0.628±0.250.628\\pm 0.25\n")
    assert _table_rows(text, "TABLE I:", 5)[0] == "U-Net [1] 31.0 0.5 0.25"
    assert _leading_numbers(_table_rows(text, "TABLE I:", 5)[-1]) == [3.27, 0.763, 0.662, 0.762, 0.845]
    row = _table_rows(text, "TABLE III:", 1)[0]
    assert re.findall(r"(?:^|\s)(\d\.\d+)±", row) == ["0.731", "0.628"] and re.findall(r"\\pm\s*(\d+\.\d+)", row) == ["0.24", "0.25"]

def test_paper_constants_are_the_papers_tables(paper):
    "Every number of the PAPER_* constants (radiomicnet.study.runs) is the one printed in the paper's Tables I-V (parsed from its text above)."
    assert set(paper["methods"]["busi"]) == set(paper["methods"]["kvasir-seg"]) == set(study_runs.METHODS)
    for dataset, rows in paper["methods"].items():
        for method, row in rows.items():
            assert study_runs.PAPER_PARAMS[method] == row["params_M"], method
            for k in ("dsc", "iou", "precision", "recall"):
                ours = study_runs.PAPER_METHODS.loc[method, f"{dataset}_{k}"]
                if k in row: assert ours == row[k], (dataset, method, k)
                else: assert pd.isna(ours), (dataset, method, k)          # the paper gives precision and recall for RadiomicNet only
    assert paper["ablation"]["rag_full"] == paper["ablation"]["full"]   # the paper prints the full model twice
    assert set(study_runs.PAPER_ABLATION_BUSI.index) == set(paper["ablation"]) - {"rag_full"}
    for variant, row in paper["ablation"].items():
        if variant != "rag_full": assert study_runs.PAPER_ABLATION_BUSI.loc[variant].to_dict() == row, variant
    assert {v: study_runs.PAPER_ECE_BUSI.loc[v].to_dict() for v in study_runs.PAPER_ECE_BUSI.index} == paper["calibration"]
    for method, row in paper["efficiency"].items():
        assert study_runs.PAPER_PARAMS[method] == row["params_M"] and study_runs.PAPER_EFFICIENCY.loc[method, "size_MB"] == row["size_MB"], method
        ms = study_runs.PAPER_EFFICIENCY.loc[method, "infer_ms"]
        assert ms == row["infer_ms"] if "infer_ms" in row else pd.isna(ms), method

def test_paper_numbers_only_in_paper_columns(tmp_path, paper):
    "The tables carry the paper's numbers (parsed from its text) in paper_* columns only, and only for the data sets the paper reports."
    for dataset in ("busi", "kvasir-seg"):
        tables = study_tables.results_tables(tmp_path, dataset)
        for table in tables.values():
            assert all(c.startswith("paper_") for c in table.columns if "paper" in c)
        t1 = tables["table1_2_methods"].set_index("method")
        assert t1.dsc_mean.isna().all()                                   # no runs: nothing of ours
        for method, row in paper["methods"][dataset].items():
            label = study_runs.METHOD_LABELS[method]
            for k in ("params_M", "dsc", "iou", "precision", "recall"):
                got = t1.loc[label, f"paper_{k}"]
                if k in row: assert got == row[k], (dataset, label, k)
                else: assert pd.isna(got), (dataset, label, k)
        t3 = tables["table3_ablation"].set_index("variant")
        t4 = tables["table4_calibration"].set_index("variant")
        for variant, label in study_runs.ABLATION_LABELS.items():
            for k in ("dsc", "dsc_std", "iou", "iou_std"):
                got = t3.loc[label, f"paper_{k}"]
                if dataset == "busi": assert got == paper["ablation"][variant][k], (label, k)
                else: assert pd.isna(got), (dataset, label, k)          # Table III is on BUSI only
        for variant, label in (("no_rc", "w/o L_RC"), ("full", "RadiomicNet (with L_RC)")):
            for k in ("ece", "dsc"):
                got = t4.loc[label, f"paper_{k}"]
                if dataset == "busi": assert got == paper["calibration"][variant][k], (label, k)
                else: assert pd.isna(got), (dataset, label, k)
        assert t4.loc[[l for l in t4.index if l.endswith("+ TS")], ["paper_ece", "paper_dsc"]].isna().all().all()   # the paper has no TS

# --- tables over seeds, from hand-made run folders with known answers ---------------------------------------------

def _fake_run(root, name, dsc_per_image, protocol="cpu", ece=0.1):
    d = root/"runs"/name; d.mkdir(parents=True)
    ids = [f"img{i}" for i in range(len(dsc_per_image))]
    pd.DataFrame(dict(image_id=ids, dsc=dsc_per_image, iou=np.array(dsc_per_image)/2)).to_csv(d/"per_image.csv", index=False)
    m = dict(dsc_mean=float(np.mean(dsc_per_image)), dsc_std=float(np.std(dsc_per_image, ddof=1)), iou_mean=float(np.mean(dsc_per_image))/2,
             iou_std=0.0, ece=ece)
    (d/"metrics.json").write_text(json.dumps(m))
    (d/"summary.json").write_text(json.dumps(dict(protocol=protocol, epochs_run=10, train_seconds_total=600.0)))

def test_rows_pool_seeds_and_paired_test_uses_seed_averaged_images(tmp_path):
    rng = np.random.default_rng(0)
    full = [rng.uniform(0.5, 0.9, 12) for _ in range(3)]
    no_rag = [f - rng.uniform(0.0, 0.2, 12) for f in full]
    for s in range(3):
        _fake_run(tmp_path, f"radiomicnet-full-s{s}", full[s], ece=0.1 + s/100)
        _fake_run(tmp_path, f"radiomicnet-no_rag-s{s}", no_rag[s])
    _fake_run(tmp_path, "radiomicnet-full-extra", full[0])   # not a seed folder: ignored
    t3 = study_tables.ablation_table(tmp_path, "busi").set_index("variant")
    row = t3.loc["RadiomicNet (full)"]
    means = [f.mean() for f in full]
    assert row.n_seeds == 3 and row.dsc_mean == pytest.approx(np.mean(means)) and row.dsc_std == pytest.approx(np.std(means, ddof=1))
    p = stats.wilcoxon(np.mean(no_rag, axis=0), np.mean(full, axis=0)).pvalue
    assert t3.loc["w/o RAG (MobileNetV2 baseline)", "p_vs_full"] == pytest.approx(p)
    t4 = study_tables.calibration_table(tmp_path, "busi").set_index("variant")
    assert t4.loc["RadiomicNet (with L_RC)", "ece_mean"] == pytest.approx(0.11) and t4.loc["w/o L_RC", "n_seeds"] == 0

def test_a_folder_mixing_protocols_is_refused(tmp_path):
    _fake_run(tmp_path, "radiomicnet-full-s0", [0.5, 0.6], protocol="cpu")
    _fake_run(tmp_path, "radiomicnet-full-s1", [0.5, 0.6], protocol="paper")
    with pytest.raises(RadiomicNetError, match="different protocols"): study_tables.methods_table(tmp_path, "busi")

def test_tables_cli_rebuilds_from_the_run_files(tmp_path):
    budget = tmp_path/"busi"/"cpu"
    _fake_run(budget, "radiomicnet-full-s0", [0.5, 0.7, 0.9])
    out = subprocess.run([shutil.which("radiomicnet-tables"), "--out", str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    t1 = pd.read_csv(budget/"tables"/"table1_2_methods.csv").set_index("method")
    assert t1.loc["RadiomicNet", "dsc_mean"] == pytest.approx(0.7)
    out = subprocess.run([shutil.which("radiomicnet-tables"), "--out", str(tmp_path/"empty")], capture_output=True, text=True)
    assert out.returncode == 1 and "no results/<dataset>/<budget>/runs folders" in out.stderr.strip().splitlines()[-1]

def _budgeted_run(root, name, dsc_per_image, budget, epoch_seconds, epochs, hd95=None, machine="CPU (fake, 2 cores)"):
    "A baseline run trained under a time budget (minutes): summary with its config and machine, history with epoch times."
    _fake_run(root, name, dsc_per_image)
    d = root/"runs"/name
    if hd95 is not None:
        pd.read_csv(d/"per_image.csv").assign(hd95=hd95).to_csv(d/"per_image.csv", index=False)
        m = json.loads((d/"metrics.json").read_text()); m.update(hd95_mean=float(np.mean(hd95)), hd95_std=float(np.std(hd95, ddof=1)), resolution="native")
        (d/"metrics.json").write_text(json.dumps(m))
    (d/"summary.json").write_text(json.dumps(dict(protocol="cpu", epochs_run=epochs, train_seconds_total=epoch_seconds*epochs, device_name=machine,
                                                  config=dict(seed=int(name.rsplit("-s", 1)[1]), time_budget=budget))))
    pd.DataFrame(dict(epoch=range(epochs), dice=0.5, seconds=float(epoch_seconds))).to_csv(d/"history.csv", index=False)

def test_methods_table_ci_hd95_wilcoxon_and_budgets(tmp_path):
    rng = np.random.default_rng(1)
    full = [rng.uniform(0.6, 0.9, 15) for _ in range(3)]
    for s in range(3): _fake_run(tmp_path, f"radiomicnet-full-s{s}", full[s])
    unet, hd = np.mean(full, axis=0) - rng.uniform(0.0, 0.1, 15), rng.uniform(5, 40, 15)
    _budgeted_run(tmp_path, "unet-full-s0", unet, budget=15.0, epoch_seconds=400, epochs=3, hd95=hd)
    t = study_tables.methods_table(tmp_path, "busi").set_index("method")
    averaged = np.mean(full, axis=0)
    ci = stats.bootstrap((averaged,), np.mean, n_resamples=10_000, method="percentile", rng=np.random.default_rng(0)).confidence_interval
    assert (t.loc["RadiomicNet", "dsc_ci95_low"], t.loc["RadiomicNet", "dsc_ci95_high"]) == pytest.approx((ci.low, ci.high))
    assert t.loc["U-Net", "p_vs_radiomicnet"] == pytest.approx(stats.wilcoxon(unet, averaged).pvalue)
    assert t.loc["U-Net", "hd95_mean"] == pytest.approx(hd.mean()) and t.loc["U-Net", "scored_at"] == "native"
    row = t.loc["U-Net"]
    assert (row.time_budget_min, row.epochs, row.train_minutes, row.machine, row.note) == (15.0, 3, 20.0, "CPU (fake, 2 cores)", "")
    assert np.isnan(t.loc["RadiomicNet", "time_budget_min"]) and t.loc["RadiomicNet", "epochs"] == 10
    assert all(c.startswith("paper_") for c in t.columns if "paper" in c) and t.loc["U-Net", "paper_dsc"] == study_runs.PAPER_METHODS.loc["unet", "busi_dsc"]

def test_a_baseline_without_one_epoch_in_its_budget_is_said_in_words(tmp_path):
    _fake_run(tmp_path, "radiomicnet-full-s0", [0.7, 0.8, 0.9])
    _budgeted_run(tmp_path, "transunet-full-s0", [0.1, 0.2, 0.3], budget=15.0, epoch_seconds=1200, epochs=1)   # 20 min > 15
    t = study_tables.methods_table(tmp_path, "busi").set_index("method")
    row = t.loc["TransUNet"]
    assert row.note == "could not finish one epoch within its time budget (transunet-full-s0: first epoch 20.0 min)"
    numbers = [c for c in t.columns if c.endswith(("_mean", "_std", "_low", "_high")) or c in ("epochs", "train_minutes", "p_vs_radiomicnet")]
    assert row[numbers].isna().all() and row.n_seeds == 0 and row.time_budget_min == 15.0
    assert row.paper_dsc == study_runs.PAPER_METHODS.loc["transunet", "busi_dsc"]         # the paper's number stays (checked against its text above)
    _budgeted_run(tmp_path, "transunet-full-s1", [0.4, 0.5, 0.6], budget=15.0, epoch_seconds=300, epochs=4)
    row = study_tables.methods_table(tmp_path, "busi").set_index("method").loc["TransUNet"]
    assert row.n_seeds == 1 and row.dsc_mean == pytest.approx(0.5) and row.epochs == 4
    assert row.note.startswith("could not finish one epoch within its time budget in some seeds (the others are pooled)")
    _budgeted_run(tmp_path, "transunet-full-s2", [0.4, 0.5, 0.6], budget=30.0, epoch_seconds=300, epochs=4)
    with pytest.raises(RadiomicNetError, match="different time budgets"): study_tables.methods_table(tmp_path, "busi")

# --- the committed results -------------------------------------------------------------------------------------

RESULTS = REPO/"results"
# Every budget folder the repository commits (the pages and the README read them). Each test below is parametrised over this
# list, not over what is on disk: a missing folder or file fails, and a folder committed but not listed here fails too.
EXPECTED_RESULTS = [("busi", "cpu"), ("busi", "long"), ("kvasir-seg", "cpu"), ("kvasir-seg", "long"), ("synthetic", "quick")]
REAL_RESULTS = [(d, b) for d, b in EXPECTED_RESULTS if d != "synthetic"]
_ids = lambda pairs: [f"{d}/{b}" for d, b in pairs]

# The columns of each committed CSV (extra columns are allowed; these are the ones the pages and the tests read).
DSC_COLUMNS = {"n_seeds", "dsc_mean", "dsc_std", "dsc_dedup_mean", "dsc_dedup_std", "n_test", "n_test_dedup", "commits"}
TABLE_COLUMNS = {
    "table1_2_methods": {"method", "protocol", "params_M", *DSC_COLUMNS, "dsc_ci95_low", "dsc_ci95_high", "iou_mean", "precision_mean",
                         "recall_mean", "hd95_mean", "p_vs_radiomicnet", "paper_params_M", "paper_dsc", "paper_iou", "paper_precision", "paper_recall"},
    "table3_ablation": {"variant", "protocol", *DSC_COLUMNS, "iou_mean", "delta_vs_full", "delta_vs_full_low", "delta_vs_full_high", "p_vs_full",
                        "paper_dsc", "paper_dsc_std", "paper_iou", "paper_iou_std"},
    "table3b_radiomics": {"variant", "protocol", *DSC_COLUMNS, "delta_vs_full", "p_vs_full", "delta_vs_no_rag", "p_vs_no_rag"},
    "table4_calibration": {"variant", "protocol", *DSC_COLUMNS, "ece_mean", "ece_std", "temperature", "paper_ece", "paper_dsc"},
    "table5_efficiency": {"method", "params_M", "size_MB", "infer_ms", "device", "img_size", "paper_params_M", "paper_size_MB", "paper_infer_ms"},
    "comparisons": {"a", "b", "test_set", "n_images", "delta", "ci_low", "ci_high", "p_wilcoxon", "commits_a", "commits_b"},
    "runs": {"run", "protocol", "seed", "img_size", "epochs", "best_epoch", "valid_dsc", "dsc", "dsc_dedup", "git_commit"},
}
REAL_ONLY_COLUMNS = {"gate_diagnostics": {"run", "level", "a_c_image_dependent", "mean_abs_rho", "max_abs_rho", "top_feature", "git_commit"}}
STATUS_COLUMNS = {"run", "status", "error", "seconds", "budget"}
PER_IMAGE_COLUMNS = {"image_id", "tp", "fp", "fn", "tn", "dsc", "iou", "precision", "recall", "specificity", "hd95"}
METRICS_KEYS = {"dataset", "split", "n_images", "dsc_mean", "dsc_std", "iou_mean", "precision_mean", "recall_mean", "ece", "hd95_mean"}
RUN_FILES = ("metrics.json", "per_image.csv", "summary.json", "history.csv", "done.json")

def _columns(path):
    assert path.is_file(), f"{path.relative_to(REPO)} is not committed"
    return set(pd.read_csv(path, nrows=0).columns)

def test_every_committed_results_folder_is_checked():
    "What is on disk is exactly the list the tests below cover: neither a folder missing, nor one committed unchecked."
    assert sorted((d, f.name) for d, f in study_tables.budget_folders(RESULTS)) == sorted(EXPECTED_RESULTS)

@pytest.mark.parametrize("dataset,budget", EXPECTED_RESULTS, ids=_ids(EXPECTED_RESULTS))
def test_committed_results_have_their_files_and_columns(dataset, budget):
    folder = RESULTS/dataset/budget
    assert (folder/"runs").is_dir(), f"results/{dataset}/{budget}/runs is not committed"
    expected = dict(TABLE_COLUMNS, **(REAL_ONLY_COLUMNS if dataset != "synthetic" else {}))
    for name, columns in expected.items():
        missing = columns - _columns(folder/"tables"/f"{name}.csv")
        assert not missing, f"results/{dataset}/{budget}/tables/{name}.csv lacks {sorted(missing)}"
    assert not STATUS_COLUMNS - _columns(folder/"status.csv")
    status = pd.read_csv(folder/"status.csv")
    runs = sorted(p.name for p in (folder/"runs").iterdir() if p.is_dir())
    assert sorted(status.run) == runs and (status.status == "done").all() and set(status.budget) == {budget}, status
    assert len(runs) >= 1 + (dataset != "synthetic") * 5                     # RadiomicNet and more than a handful of other runs

@pytest.mark.parametrize("dataset,budget", EXPECTED_RESULTS, ids=_ids(EXPECTED_RESULTS))
def test_committed_runs_score_the_whole_test_split(dataset, budget):
    """Every run folder holds its files; its per_image.csv covers exactly the test images of the committed split file (lesion
    classes; synthetic: the last 15 of 100), with DSC = 2TP / (2TP + FP + FN) from its own counts; metrics.json is their mean."""
    if dataset == "synthetic": test_ids = {f"synthetic-{i:04d}" for i in range(85, 100)}
    else:
        split = pd.read_csv(REPO/"radiomicnet"/"splits"/f"{dataset}.csv")
        test_ids = set(split.query("split == 'test' and `class` != 'normal'").id)
    assert (RESULTS/dataset/budget/"runs").is_dir(), f"results/{dataset}/{budget}/runs is not committed"
    runs = sorted(p for p in (RESULTS/dataset/budget/"runs").iterdir() if p.is_dir())
    assert runs
    for run in runs:
        for f in RUN_FILES: assert (run/f).is_file(), f"{run.relative_to(REPO)}/{f} is missing"
        assert not PER_IMAGE_COLUMNS - _columns(run/"per_image.csv"), run.name
        per_image = pd.read_csv(run/"per_image.csv")
        assert set(per_image.image_id) == test_ids and per_image.image_id.is_unique, run.name
        c = per_image[["tp", "fp", "fn", "tn"]].astype(float)
        assert (c.tp + c.fn > 0).all(), run.name                                  # every test image has a lesion
        np.testing.assert_allclose(per_image.dsc, 2 * c.tp / (2 * c.tp + c.fp + c.fn), rtol=1e-9, err_msg=run.name)
        np.testing.assert_allclose(per_image.iou, c.tp / (c.tp + c.fp + c.fn), rtol=1e-9, err_msg=run.name)
        metrics = json.loads((run/"metrics.json").read_text())
        assert not METRICS_KEYS - set(metrics), (run.name, METRICS_KEYS - set(metrics))
        assert (metrics["dataset"], metrics["split"], metrics["n_images"]) == (dataset, "test", len(test_ids)), run.name
        assert metrics["dsc_mean"] == pytest.approx(per_image.dsc.mean(), abs=1e-9) and 0 <= metrics["ece"] <= 1, run.name
        assert json.loads((run/"summary.json").read_text())["protocol"] == study_runs.BUDGETS[budget]["protocol"], run.name

@pytest.mark.parametrize("dataset,budget", REAL_RESULTS, ids=_ids(REAL_RESULTS))
def test_committed_tables_report_both_test_sets(dataset, budget):
    "Every DSC table has test_dedup beside test, with fewer or as many images, and every comparison carries its interval and commits."
    folder = RESULTS/dataset/budget
    for name in ("table1_2_methods", "table3_ablation", "table3b_radiomics", "table4_calibration"):
        t = pd.read_csv(folder/"tables"/f"{name}.csv").query("n_seeds > 0")
        assert len(t) > 0, name
        assert (t.n_test_dedup <= t.n_test).all() and (t.n_test_dedup > 0).all() and t.commits.str.len().gt(0).all(), name
    c = pd.read_csv(folder/"tables"/"comparisons.csv")
    assert len(c) > 0 and set(c.test_set) == {"test", "test_dedup"} and (c.ci_low <= c.delta).all() and (c.delta <= c.ci_high).all()
    assert c.commits_a.str.len().gt(0).all() and c.commits_b.str.len().gt(0).all()

@pytest.mark.parametrize("dataset,budget", EXPECTED_RESULTS, ids=_ids(EXPECTED_RESULTS))
def test_committed_tables_come_from_the_run_files(dataset, budget, tmp_path):
    "Every number of the committed Tables I-IV is recomputed here from the runs' metrics.json and per_image.csv."
    folder = RESULTS/dataset/budget
    assert (folder/"runs").is_dir(), f"results/{dataset}/{budget}/runs is not committed"
    for name in study_tables.TABLE_FILES:
        rebuilt = study_tables.TABLE_FILES[name](folder, dataset)
        if not (folder/"tables"/f"{name}.csv").exists():
            assert rebuilt.empty, f"{folder.name}: {name}.csv is not committed but its table has rows"
            continue
        committed = pd.read_csv(folder/"tables"/f"{name}.csv")
        pd.testing.assert_frame_equal(committed, pd.read_csv(pd.io.common.StringIO(rebuilt.to_csv(index=False))), check_dtype=False)
    t1 = pd.read_csv(folder/"tables"/"table1_2_methods.csv").set_index("method")
    assert t1.loc["RadiomicNet", "n_seeds"] >= 1
    for method, label in study_runs.METHOD_LABELS.items():
        files = sorted((folder/"runs").glob(f"{method}-full-s*/metrics.json"))
        values = [json.loads(f.read_text())["dsc_mean"] for f in files]
        assert t1.loc[label, "n_seeds"] == len(values)
        if values: assert t1.loc[label, "dsc_mean"] == pytest.approx(np.mean(values))

def test_a_renamed_notebook_parameter_stops_the_runner_before_any_run(tmp_path):
    "A copy of the notebooks whose 12_training calls `epochs` `n_epochs`: one line naming the notebook and the parameter, nothing run."
    nbs = tmp_path/"nbs"; nbs.mkdir()
    for nb in ("12_training.ipynb", "16_evaluation.ipynb", "18_interpretability.ipynb"): shutil.copy(REPO/"nbs"/nb, nbs)
    nb = json.loads((nbs/"12_training.ipynb").read_text())
    cell, = [c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", [])]
    assert any(l.startswith("epochs ") for l in cell["source"])
    cell["source"] = ["n_" + l if l.startswith("epochs ") else l for l in cell["source"]]
    (nbs/"12_training.ipynb").write_text(json.dumps(nb))
    with pytest.raises(RadiomicNetError) as e:
        study_tables.run_paper("synthetic", "quick", tmp_path/"results", runs=[("radiomicnet", "full")], nbs_path=nbs, measure=False)
    assert str(e.value).startswith(f"{nbs/'12_training.ipynb'}: the paper runner passes parameter(s) epochs that its parameters cell does not define")
    assert "\n" not in str(e.value) and not (tmp_path/"results").exists()

def test_the_paper_command_exits_non_zero_after_recording_a_failed_run(tmp_path, monkeypatch, capsys):
    "unet-full alone under a matched budget fails (no RadiomicNet run to match): recorded in status.csv, tables built, exit status 1."
    monkeypatch.setattr(study_tables, "measure_efficiency", lambda *a, **k: None)  # Table V's timing is not what this test is about
    built = []
    monkeypatch.setattr(study_tables, "build_results", lambda root, dataset: built.append(root))
    from radiomicnet.cli import radiomicnet_paper
    with pytest.raises(SystemExit) as e: radiomicnet_paper(dataset="synthetic", only="unet-full", out=str(tmp_path))
    assert e.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: 1 of 1 runs failed: unet-full-s0 (errors in ") and err[-1].endswith("status.csv)")
    status = pd.read_csv(tmp_path/"synthetic"/"quick"/"status.csv")
    assert status.run.tolist() == ["unet-full-s0"] and status.status.tolist() == ["failed"]
    assert built == [tmp_path/"synthetic"/"quick"]
