"The benchmark scripts run end to end and keep their results file (their timings are not tested: benchmarks are not tests)."
import csv, subprocess, sys
from pathlib import Path
import pytest, torch

BENCH = Path(__file__).resolve().parents[1]/"bench"

def test_features_bench_appends_rows_and_keeps_older_ones(tmp_path):
    out = tmp_path/"features.csv"
    out.write_text("timestamp,speedup\n2020-01-01T00:00:00+00:00,3.00\n")   # a row written before columns were added
    cmd = [sys.executable, str(BENCH/"features.py"), "--n-images", "4", "--size", "32", "--repeats", "1",
           "--workers", "2", "--pool-workers", "2", "--data-dir", str(tmp_path), "--out", str(out)]
    run = subprocess.run(cmd, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "speed-up" in run.stdout
    old, new = csv.DictReader(open(out))
    assert (old["timestamp"], old["speedup"], old["workers"]) == ("2020-01-01T00:00:00+00:00", "3.00", "")
    assert (new["images"], new["n_images"], new["workers"], new["within_tolerance"]) == ("synthetic", "4", "2", "True")
    assert float(new["seconds_torch"]) > 0 and float(new["speedup"]) > 0
    assert new["pool_workers"] == "2" and float(new["seconds_pool"]) > 0 and float(new["cpu_seconds_pool"]) > 0
    assert "vs the pool" in run.stdout and new["reliable"] in ("True", "False")
    assert ("UNRELIABLE" in run.stdout) == (new["reliable"] == "False")

@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_features_bench_rejects_cuda_without_a_device(tmp_path):
    run = subprocess.run([sys.executable, str(BENCH/"features.py"), "--device", "cuda", "--out", str(tmp_path/"f.csv")],
                         capture_output=True, text=True)
    assert run.returncode != 0 and "CUDA is not available" in run.stderr and "Traceback" not in run.stderr

def test_reliability_flags_a_loaded_machine():
    sys.path.insert(0, str(BENCH))
    from common import LOAD_LIMIT, reliability
    assert reliability(0.1, 2.0, threads=2) == (True, "")
    ok, why = reliability(LOAD_LIMIT + 0.3, 2.0, threads=2)
    assert not ok and "UNRELIABLE" in why and f"{LOAD_LIMIT + 0.3:.2f}" in why
    ok, why = reliability(0.1, 6.0, threads=2)                  # quiet at the start, someone else started during the run
    assert not ok and "rose" in why

def test_inference_bench_writes_one_row_per_model_and_batch_size(tmp_path):
    out = tmp_path/"inference-cpu.csv"
    models = ["radiomicnet-e2e", "radiomicnet-e2e-fast", "radiomicnet-features", "no-such-model"]
    cmd = [sys.executable, str(BENCH/"inference.py"), "--size", "64", "--batch-sizes", "1,2", "--models", ",".join(models),
           "--warmup", "1", "--min-repeats", "1", "--max-repeats", "1", "--min-seconds", "0", "--calibration", "2",
           "--data-dir", str(tmp_path), "--out", str(out)]
    run = subprocess.run(cmd, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    rows = list(csv.DictReader(open(out)))
    assert [(r["model"], r["batch_size"]) for r in rows] == [(m, b) for m in models for b in ("1", "2")]
    fast = {r["batch_size"]: r for r in rows if r["model"] == "radiomicnet-e2e-fast"}
    assert all(r["times_slower_than_e2e_fast"] == "1.0" for r in fast.values())
    e2e = [r for r in rows if r["model"] == "radiomicnet-e2e"]
    assert all(float(r["latency_ms"]) > 0 and 0 < float(r["features_share"]) and int(r["params"]) > 1e6 and float(r["peak_rss_mb"]) > 0 for r in e2e)
    assert all(r["note"].startswith("failed: ") for r in rows if r["model"] == "no-such-model")   # recorded, not fatal
    assert len({r["run_id"] for r in rows}) == 1 and "faster than radiomicnet-e2e" in run.stdout

def test_train_bench_measures_throughput_and_data_wait(tmp_path):
    out = tmp_path/"train.csv"
    cmd = [sys.executable, str(BENCH/"train.py"), "--dataset", "synthetic", "--sizes", "64", "--steps", "2", "--warmup", "1", "--out", str(out)]
    run = subprocess.run(cmd, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    (row,) = csv.DictReader(open(out))
    assert (row["size_px"], row["bs"], row["steps"]) == ("64", "8", "2")
    assert float(row["images_per_s"]) > 0 and 0 <= float(row["data_wait_share"]) < 1 and "waiting for data" in run.stdout

@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_gpu_script_says_when_there_is_no_cuda_device():
    run = subprocess.run(["bash", str(BENCH/"gpu.sh")], capture_output=True, text=True)
    assert run.returncode == 2 and "no CUDA device" in run.stderr

@pytest.mark.parametrize("script,flag", [("fast_accuracy.py", "--checkpoint"), ("video.py", "--backends")])
def test_video_and_fast_accuracy_benches_answer_help(script, flag):
    run = subprocess.run([sys.executable, str(BENCH/script), "--help"], capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.startswith("usage:") and flag in run.stdout, run.stderr

def test_startup_bench_answers_help():
    run = subprocess.run([sys.executable, str(BENCH/"startup.py"), "--help"], capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.startswith("usage:") and "--runs" in run.stdout and "--out" in run.stdout, run.stderr

def test_fast_accuracy_bench_compares_the_two_paths(tmp_path, tiny_checkpoint):
    "A smoke run on the tiny synthetic checkpoint's own test split (4 images): one row, both paths scored, the target checked."
    out = tmp_path/"fast-accuracy.csv"
    run = subprocess.run([sys.executable, str(BENCH/"fast_accuracy.py"), "--checkpoint", str(tiny_checkpoint), "--n-images", "4", "--out", str(out)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    (row,) = csv.DictReader(open(out))
    assert (row["dataset"], row["n_images"], row["split"]) == ("synthetic", "4", "test")
    assert 0 <= float(row["dsc_plain"]) <= 1 and 0 <= float(row["dsc_fast"]) <= 1 and 0.9 <= float(row["pixel_agreement"]) <= 1
    assert abs(float(row["dsc_fast"]) - float(row["dsc_plain"]) - float(row["dsc_diff"])) < 1e-4
    assert float(row["ms_per_image_plain"]) > 0 and float(row["ms_per_image_fast"]) > 0 and "target: drop <= 0.005" in run.stdout
