"The paper runner: papermill runs, reuse, failures recorded, tables with missing runs shown as missing."
import json, shutil, subprocess
import pandas as pd, pytest
from radiomicnet.core import RadiomicNetError
from radiomicnet import compare

@pytest.fixture(scope="module")
def quick_results(tmp_path_factory):
    "One real quick run (RadiomicNet full, through notebooks 05-07) plus one that fails, on synthetic data."
    root = tmp_path_factory.mktemp("results")
    status = compare.run_paper("synthetic", "quick", root, runs=[("radiomicnet", "full"), ("unet", "no_such_variant")])
    return root/"synthetic", status

def test_runs_are_done_or_failed_with_their_error(quick_results):
    root, status = quick_results
    rows = status.set_index("run")
    assert rows.loc["radiomicnet-full", "status"] == "done"
    assert rows.loc["unet-no_such_variant", "status"] == "failed"
    assert "unknown variant 'no_such_variant'" in rows.loc["unet-no_such_variant", "error"]
    assert pd.read_csv(root/"status.csv").run.tolist() == ["radiomicnet-full", "unet-no_such_variant"]
    for nb in ["05_training", "06_evaluation", "07_interpretability"]:
        assert (root/"notebooks"/f"radiomicnet-full-{nb}.ipynb").exists()

def test_tables_show_missing_runs_as_missing(quick_results):
    root, _ = quick_results
    methods = pd.read_csv(root/"tables"/"table1_2_methods.csv").set_index("method")
    assert methods.loc["RadiomicNet", "status"] == "done" and 0 <= methods.loc["RadiomicNet", "dsc"] <= 1
    assert methods.loc["U-Net", "status"] == "missing" and pd.isna(methods.loc["U-Net", "dsc"])
    assert methods.loc["RadiomicNet", "paper_dsc"] == 0.763 or pd.isna(methods.loc["RadiomicNet", "paper_dsc"])
    ablation = pd.read_csv(root/"tables"/"table3_ablation.csv")
    assert (ablation.status == "missing").sum() == 5
    for t in ["table4_calibration", "table5_efficiency"]: assert (root/"tables"/f"{t}.csv").exists()
    assert any((root/"figures").glob("radiomicnet-full-*.png"))

def test_complete_runs_are_reused(quick_results):
    root, _ = quick_results
    status = compare.run_paper("synthetic", "quick", root.parent, runs=[("radiomicnet", "full")])
    assert status.reused.tolist() == [True]

def test_bad_budget_and_unknown_run_are_clear_errors(tmp_path):
    with pytest.raises(RadiomicNetError, match="unknown budget 'huge'"): compare.run_paper("synthetic", "huge", tmp_path)
    out = subprocess.run([shutil.which("radiomicnet-paper"), "--only", "nope-full", "--results", str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 1 and out.stderr.strip().splitlines()[-1].startswith("error: unknown run(s) ['nope-full']")

def test_missing_notebooks_are_a_clear_error_before_any_run(tmp_path):
    with pytest.raises(RadiomicNetError, match="notebooks are not there.*pip install -e"):
        compare.run_paper("synthetic", "quick", tmp_path/"results", nbs_path=tmp_path/"site-packages")
    assert not (tmp_path/"results").exists()                      # nothing written, no run recorded as failed

def test_paper_numbers_only_in_paper_columns(tmp_path):
    tables = compare.results_tables(tmp_path, "busi", img_size=64, repeats=1)
    for table in tables.values():
        assert all(c.startswith("paper_") for c in table.columns if "paper" in c)
    t1 = tables["table1_2_methods"].set_index("method")
    assert t1.loc["RadiomicNet", "paper_dsc"] == 0.763 and t1.dsc.isna().all()
    t5 = tables["table5_efficiency"].set_index("method")
    assert abs(t5.loc["RadiomicNet", "params_M"] - 3.27) < 0.033 and t5.loc["RadiomicNet", "paper_infer_ms"] == 8.85
