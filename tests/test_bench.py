"The benchmark scripts run end to end and keep their results file (their timings are not tested: benchmarks are not tests)."
import csv, subprocess, sys
from pathlib import Path
import pytest, torch

BENCH = Path(__file__).resolve().parents[1]/"bench"

def test_features_bench_appends_rows_and_keeps_older_ones(tmp_path):
    out = tmp_path/"features.csv"
    out.write_text("timestamp,speedup\n2020-01-01T00:00:00+00:00,3.00\n")   # a row written before columns were added
    cmd = [sys.executable, str(BENCH/"features.py"), "--n-images", "4", "--size", "32", "--repeats", "1",
           "--workers", "2", "--data-dir", str(tmp_path), "--out", str(out)]
    run = subprocess.run(cmd, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "speed-up" in run.stdout
    old, new = csv.DictReader(open(out))
    assert (old["timestamp"], old["speedup"], old["workers"]) == ("2020-01-01T00:00:00+00:00", "3.00", "")
    assert (new["images"], new["n_images"], new["workers"], new["within_tolerance"]) == ("synthetic", "4", "2", "True")
    assert float(new["seconds_torch"]) > 0 and float(new["speedup"]) > 0

@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_features_bench_rejects_cuda_without_a_device(tmp_path):
    run = subprocess.run([sys.executable, str(BENCH/"features.py"), "--device", "cuda", "--out", str(tmp_path/"f.csv")],
                         capture_output=True, text=True)
    assert run.returncode != 0 and "CUDA is not available" in run.stderr and "Traceback" not in run.stderr
