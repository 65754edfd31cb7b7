"Shared pytest fixtures: where the genuine BUSI / Kvasir-SEG data are, or a clear skip."
import os
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
