"Shared pytest fixtures: where the genuine BUSI / Kvasir-SEG data are, or a clear skip."
import os, shutil, tempfile
from contextlib import contextmanager
from pathlib import Path
import pytest

REPO = Path(__file__).resolve().parent.parent

def shared_data_dir():
    "The genuine data folder: $RADIOMICNET_DATA, else ../shared/data beside the repo; None when neither exists."
    for cand in (os.environ.get("RADIOMICNET_DATA"), REPO.parent/"shared"/"data"):
        if cand and (Path(cand)/"BUSI").is_dir() and (Path(cand)/"Kvasir-SEG").is_dir(): return Path(cand)
    return None

@pytest.fixture(scope="session")
def data_dir():
    "Path of the genuine datasets, or skip the test saying why."
    d = shared_data_dir()
    if d is None: pytest.skip("real data absent: set RADIOMICNET_DATA to a folder holding BUSI/ and Kvasir-SEG/")
    return d

@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    "A checkpoint from a tiny synthetic training run (1 epoch, 16 images of 64x64, seconds): real plumbing, meaningless masks."
    from radiomicnet.train.learner import train_run
    out = tmp_path_factory.mktemp("tiny-run")
    train_run("synthetic", img_size=64, epochs=1, bs=8, subset=16, out_dir=out, device="cpu")
    return out/"best.pt"

@pytest.fixture(scope="module")
def one_torch_thread():
    "One torch thread for a module's tests (they run beside nbdev-test on 2 cores), restored afterwards."
    import torch
    n = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
# The flags headless Chromium needs on our machines (closed network, running as root).
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage"]

@contextmanager
def headless_chromium(extra_flags:tuple=(), # Flags beyond `CHROMIUM_FLAGS` (e.g. a window size)
                      logs:tuple=("browser",), # The logs to record ('browser', 'performance')
                     ):
    "Debian's Chromium, headless, driven by selenium through Debian's chromedriver (a skip without them); its profile is removed afterwards."
    if not Path(CHROMIUM).exists(): pytest.skip("no chromium binary installed (apt-get install chromium chromium-driver, as .ci/run does)")
    assert Path(CHROMEDRIVER).exists(), f"{CHROMEDRIVER} missing: apt-get install chromium-driver"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    profile = tempfile.mkdtemp(prefix="radiomicnet-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in [*CHROMIUM_FLAGS, *extra_flags, f"--user-data-dir={profile}"]: opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {k: "ALL" for k in logs})
    driver = webdriver.Chrome(options=opts, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    try: yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
