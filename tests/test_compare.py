"The paper runner: papermill runs over seeds, reuse, failures recorded, tables over seeds from the run files alone."
import json, shutil, subprocess
import numpy as np, pandas as pd, pytest
from scipy import stats
from radiomicnet.core import RadiomicNetError
from radiomicnet import compare
from conftest import REPO

@pytest.fixture(scope="module")
def quick_results(tmp_path_factory):
    "One real run (RadiomicNet full, 1 epoch, through notebooks 05-07) plus one that fails, on synthetic data."
    root = tmp_path_factory.mktemp("results")
    mp = pytest.MonkeyPatch()
    mp.setitem(compare.BUDGETS, "quick", dict(protocol="cpu", img_size=64, epochs=1))
    status = compare.run_paper("synthetic", "quick", root, runs=[("radiomicnet", "full"), ("unet", "no_such_variant")], measure=False)
    mp.undo()
    return root/"synthetic"/"quick", status

def test_runs_are_done_or_failed_with_their_error(quick_results):
    root, status = quick_results
    rows = status.set_index("run")
    assert rows.loc["radiomicnet-full-s0", "status"] == "done"
    assert rows.loc["unet-no_such_variant-s0", "status"] == "failed"
    assert "unknown variant 'no_such_variant'" in rows.loc["unet-no_such_variant-s0", "error"]
    assert pd.read_csv(root/"status.csv").run.tolist() == ["radiomicnet-full-s0", "unet-no_such_variant-s0"]
    for nb in ["05_training", "06_evaluation", "07_interpretability"]:
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
    status = compare.run_paper("synthetic", "quick", root.parent.parent, runs=[("radiomicnet", "full")], measure=False)
    assert status.reused.tolist() == [True]

def test_bad_budget_seeds_and_unknown_run_are_clear_errors(tmp_path):
    with pytest.raises(RadiomicNetError, match="unknown budget 'huge'"): compare.run_paper("synthetic", "huge", tmp_path)
    out = subprocess.run([shutil.which("radiomicnet-paper"), "--only", "nope-full", "--results", str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 1 and out.stderr.strip().splitlines()[-1].startswith("error: unknown run(s) ['nope-full']")
    out = subprocess.run([shutil.which("radiomicnet-paper"), "--seeds", "0,one", "--results", str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 1 and out.stderr.strip().splitlines()[-1] == "error: --seeds '0,one': give comma-separated integers, e.g. 0,1,2"

def test_missing_notebooks_are_a_clear_error_before_any_run(tmp_path):
    with pytest.raises(RadiomicNetError, match="notebooks are not there.*pip install -e"):
        compare.run_paper("synthetic", "quick", tmp_path/"results", nbs_path=tmp_path/"site-packages")
    assert not (tmp_path/"results").exists()                      # nothing written, no run recorded as failed

def test_paper_numbers_only_in_paper_columns(tmp_path):
    tables = compare.results_tables(tmp_path, "busi")
    for table in tables.values():
        assert all(c.startswith("paper_") for c in table.columns if "paper" in c)
    t1 = tables["table1_2_methods"].set_index("method")
    assert t1.loc["RadiomicNet", "paper_dsc"] == 0.763 and t1.dsc_mean.isna().all()
    assert t1.loc["U-Net", "paper_dsc"] == 0.726 and pd.isna(t1.loc["U-Net", "paper_precision"])
    assert compare.results_tables(tmp_path, "kvasir-seg")["table1_2_methods"].set_index("method").loc["RadiomicNet", "paper_dsc"] == 0.854

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
    t3 = compare.ablation_table(tmp_path, "busi").set_index("variant")
    row = t3.loc["RadiomicNet (full)"]
    means = [f.mean() for f in full]
    assert row.n_seeds == 3 and row.dsc_mean == pytest.approx(np.mean(means)) and row.dsc_std == pytest.approx(np.std(means, ddof=1))
    p = stats.wilcoxon(np.mean(no_rag, axis=0), np.mean(full, axis=0)).pvalue
    assert t3.loc["w/o RAG (MobileNetV2 baseline)", "p_vs_full"] == pytest.approx(p)
    t4 = compare.calibration_table(tmp_path, "busi").set_index("variant")
    assert t4.loc["RadiomicNet (with L_RC)", "ece_mean"] == pytest.approx(0.11) and t4.loc["w/o L_RC", "n_seeds"] == 0

def test_a_folder_mixing_protocols_is_refused(tmp_path):
    _fake_run(tmp_path, "radiomicnet-full-s0", [0.5, 0.6], protocol="cpu")
    _fake_run(tmp_path, "radiomicnet-full-s1", [0.5, 0.6], protocol="paper")
    with pytest.raises(RadiomicNetError, match="different protocols"): compare.methods_table(tmp_path, "busi")

def test_tables_cli_rebuilds_from_the_run_files(tmp_path):
    budget = tmp_path/"busi"/"cpu"
    _fake_run(budget, "radiomicnet-full-s0", [0.5, 0.7, 0.9])
    out = subprocess.run([shutil.which("radiomicnet-tables"), "--results", str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    t1 = pd.read_csv(budget/"tables"/"table1_2_methods.csv").set_index("method")
    assert t1.loc["RadiomicNet", "dsc_mean"] == pytest.approx(0.7)
    out = subprocess.run([shutil.which("radiomicnet-tables"), "--results", str(tmp_path/"empty")], capture_output=True, text=True)
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
    t = compare.methods_table(tmp_path, "busi").set_index("method")
    averaged = np.mean(full, axis=0)
    ci = stats.bootstrap((averaged,), np.mean, n_resamples=10_000, method="percentile", rng=np.random.default_rng(0)).confidence_interval
    assert (t.loc["RadiomicNet", "dsc_ci95_low"], t.loc["RadiomicNet", "dsc_ci95_high"]) == pytest.approx((ci.low, ci.high))
    assert t.loc["U-Net", "p_vs_radiomicnet"] == pytest.approx(stats.wilcoxon(unet, averaged).pvalue)
    assert t.loc["U-Net", "hd95_mean"] == pytest.approx(hd.mean()) and t.loc["U-Net", "scored_at"] == "native"
    row = t.loc["U-Net"]
    assert (row.time_budget_min, row.epochs, row.train_minutes, row.machine, row.note) == (15.0, 3, 20.0, "CPU (fake, 2 cores)", "")
    assert np.isnan(t.loc["RadiomicNet", "time_budget_min"]) and t.loc["RadiomicNet", "epochs"] == 10
    assert all(c.startswith("paper_") for c in t.columns if "paper" in c) and t.loc["U-Net", "paper_dsc"] == 0.726

def test_a_baseline_without_one_epoch_in_its_budget_is_said_in_words(tmp_path):
    _fake_run(tmp_path, "radiomicnet-full-s0", [0.7, 0.8, 0.9])
    _budgeted_run(tmp_path, "transunet-full-s0", [0.1, 0.2, 0.3], budget=15.0, epoch_seconds=1200, epochs=1)   # 20 min > 15
    t = compare.methods_table(tmp_path, "busi").set_index("method")
    row = t.loc["TransUNet"]
    assert row.note == "could not finish one epoch within its time budget (transunet-full-s0: first epoch 20.0 min)"
    numbers = [c for c in t.columns if c.endswith(("_mean", "_std", "_low", "_high")) or c in ("epochs", "train_minutes", "p_vs_radiomicnet")]
    assert row[numbers].isna().all() and row.n_seeds == 0 and row.time_budget_min == 15.0
    assert row.paper_dsc == 0.748                                                      # the paper's number stays, in its own column
    _budgeted_run(tmp_path, "transunet-full-s1", [0.4, 0.5, 0.6], budget=15.0, epoch_seconds=300, epochs=4)
    row = compare.methods_table(tmp_path, "busi").set_index("method").loc["TransUNet"]
    assert row.n_seeds == 1 and row.dsc_mean == pytest.approx(0.5) and row.epochs == 4
    assert row.note.startswith("could not finish one epoch within its time budget in some seeds (the others are pooled)")
    _budgeted_run(tmp_path, "transunet-full-s2", [0.4, 0.5, 0.6], budget=30.0, epoch_seconds=300, epochs=4)
    with pytest.raises(RadiomicNetError, match="different time budgets"): compare.methods_table(tmp_path, "busi")

# --- the committed results -------------------------------------------------------------------------------------

COMMITTED = compare.budget_folders(REPO/"results")

def test_the_committed_results_are_there():
    "The parametrised checks below never pass vacuously: the four real-data protocols they cover are committed."
    assert {("busi", "cpu"), ("busi", "long"), ("kvasir-seg", "cpu"), ("kvasir-seg", "long")} <= {(d, f.name) for d, f in COMMITTED}

@pytest.mark.parametrize("dataset,folder", [(d, f) for d, f in COMMITTED if d != "synthetic"], ids=lambda x: str(x).rsplit("/", 2)[-1] if isinstance(x, type(REPO)) else x)
def test_committed_tables_report_both_test_sets(dataset, folder):
    "Every DSC table has test_dedup beside test, with fewer or as many images, and every comparison carries its interval and commits."
    for name in ("table1_2_methods", "table3_ablation", "table3b_radiomics", "table4_calibration"):
        t = pd.read_csv(folder/"tables"/f"{name}.csv").query("n_seeds > 0")
        assert {"dsc_dedup_mean", "dsc_mean", "n_test", "n_test_dedup", "commits"} <= set(t.columns), name
        assert (t.n_test_dedup <= t.n_test).all() and (t.n_test_dedup > 0).all() and t.commits.str.len().gt(0).all(), name
    c = pd.read_csv(folder/"tables"/"comparisons.csv")
    assert set(c.test_set) == {"test", "test_dedup"} and (c.ci_low <= c.delta).all() and (c.delta <= c.ci_high).all()
    assert c.commits_a.str.len().gt(0).all() and c.commits_b.str.len().gt(0).all()

@pytest.mark.parametrize("dataset,folder", COMMITTED, ids=[f"{d}/{f.name}" for d, f in COMMITTED])
def test_committed_tables_come_from_the_run_files(dataset, folder, tmp_path):
    "Every number of the committed Tables I-IV is recomputed here from the runs' metrics.json and per_image.csv."
    for name in compare.TABLE_FILES:
        rebuilt = compare.TABLE_FILES[name](folder, dataset)
        if not (folder/"tables"/f"{name}.csv").exists():
            assert rebuilt.empty, f"{folder.name}: {name}.csv is not committed but its table has rows"
            continue
        committed = pd.read_csv(folder/"tables"/f"{name}.csv")
        pd.testing.assert_frame_equal(committed, pd.read_csv(pd.io.common.StringIO(rebuilt.to_csv(index=False))), check_dtype=False)
    t1 = pd.read_csv(folder/"tables"/"table1_2_methods.csv").set_index("method")
    for method, label in compare.METHOD_LABELS.items():
        files = sorted((folder/"runs").glob(f"{method}-full-s*/metrics.json"))
        values = [json.loads(f.read_text())["dsc_mean"] for f in files]
        assert t1.loc[label, "n_seeds"] == len(values)
        if values: assert t1.loc[label, "dsc_mean"] == pytest.approx(np.mean(values))

def test_a_renamed_notebook_parameter_stops_the_runner_before_any_run(tmp_path):
    "A copy of the notebooks whose 05_training calls `epochs` `n_epochs`: one line naming the notebook and the parameter, nothing run."
    nbs = tmp_path/"nbs"; nbs.mkdir()
    for nb in ("05_training.ipynb", "06_evaluation.ipynb", "07_interpretability.ipynb"): shutil.copy(REPO/"nbs"/nb, nbs)
    nb = json.loads((nbs/"05_training.ipynb").read_text())
    cell, = [c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", [])]
    assert any(l.startswith("epochs ") for l in cell["source"])
    cell["source"] = ["n_" + l if l.startswith("epochs ") else l for l in cell["source"]]
    (nbs/"05_training.ipynb").write_text(json.dumps(nb))
    with pytest.raises(RadiomicNetError) as e:
        compare.run_paper("synthetic", "quick", tmp_path/"results", runs=[("radiomicnet", "full")], nbs_path=nbs, measure=False)
    assert str(e.value).startswith(f"{nbs/'05_training.ipynb'}: the paper runner passes parameter(s) epochs that its parameters cell does not define")
    assert "\n" not in str(e.value) and not (tmp_path/"results").exists()

def test_the_paper_command_exits_non_zero_after_recording_a_failed_run(tmp_path, monkeypatch, capsys):
    "unet-full alone under a matched budget fails (no RadiomicNet run to match): recorded in status.csv, tables built, exit status 1."
    monkeypatch.setattr(compare, "measure_efficiency", lambda *a, **k: None)  # Table V's timing is not what this test is about
    built = []
    monkeypatch.setattr(compare, "build_results", lambda root, dataset: built.append(root))
    with pytest.raises(SystemExit) as e: compare.radiomicnet_paper(dataset="synthetic", only="unet-full", results=str(tmp_path))
    assert e.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: 1 of 1 runs failed: unet-full-s0 (errors in ") and err[-1].endswith("status.csv)")
    status = pd.read_csv(tmp_path/"synthetic"/"quick"/"status.csv")
    assert status.run.tolist() == ["unet-full-s0"] and status.status.tolist() == ["failed"]
    assert built == [tmp_path/"synthetic"/"quick"]
