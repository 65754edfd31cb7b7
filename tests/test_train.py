"Training: resume after an interruption, bad checkpoints, the CLI, and a smoke run on the genuine data."
import subprocess, shutil
import numpy as np, pandas as pd, pytest, torch
from radiomicnet.core import CheckpointError
from radiomicnet.model import load_checkpoint
from radiomicnet.data import load_split, resized_pair, cached_radiomics
from radiomicnet import train

TINY = dict(dataset="synthetic", img_size=64, bs=8, subset=16)

def test_interrupted_run_resumes_from_its_last_epoch(tmp_path, monkeypatch):
    original = train.RunCheckpoint.after_epoch
    def crash_after_epoch_1(self):
        original(self)
        if self.epoch == 1: raise KeyboardInterrupt("power cut")
    monkeypatch.setattr(train.RunCheckpoint, "after_epoch", crash_after_epoch_1)
    with pytest.raises(KeyboardInterrupt): train.train_run(**TINY, epochs=4, out_dir=tmp_path)
    assert not (tmp_path/"summary.json").exists()
    assert torch.load(tmp_path/"last.pt", weights_only=True)["extra"]["epoch"] == 1
    monkeypatch.setattr(train.RunCheckpoint, "after_epoch", original)
    started = []
    monkeypatch.setattr(train.Learner, "fit", lambda self, *a, **kw: (started.append(kw["start_epoch"]), original_fit(self, *a, **kw))[1])
    summary = train.train_run(**TINY, epochs=4, out_dir=tmp_path)
    assert started == [2]
    history = pd.read_csv(tmp_path/"history.csv")
    assert history.epoch.tolist() == [0, 1, 2, 3] and summary["epochs_run"] == 4

original_fit = train.Learner.fit

def test_run_folder_of_another_config_is_refused(tmp_path):
    train.train_run(**TINY, epochs=1, out_dir=tmp_path)
    (tmp_path/"summary.json").unlink()
    with pytest.raises(CheckpointError, match="last.pt: written by a run with another configuration"):
        train.train_run(**TINY, epochs=2, out_dir=tmp_path)

def test_corrupt_last_checkpoint_is_a_clear_error(tmp_path):
    (tmp_path/"last.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="last.pt"):
        train.train_run(**TINY, epochs=1, out_dir=tmp_path)

def test_cli_bad_variant_is_one_line(tmp_path):
    out = subprocess.run([shutil.which("radiomicnet-run"), "--variant", "nope", "--out", str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1] == "error: unknown variant 'nope': choose one of full, no_rag, no_rc, no_bnd, rag_spatial, rag_channel"

def test_baseline_trains_with_the_same_learner(tmp_path):
    summary = train.train_run(**TINY, epochs=1, model_name="unet", out_dir=tmp_path)
    assert summary["config"]["model_name"] == "unet" and 0 <= summary["valid_dice"] <= 1

@pytest.mark.parametrize("dataset", ["busi", "kvasir-seg"])
def test_real_data_smoke(dataset, data_dir, tmp_path):
    "2 epochs on 16 images per split at 128 px: the loss goes down and the checkpoint reloads to identical predictions."
    summary = train.train_run(dataset, data_dir, img_size=128, epochs=2, bs=8, subset=16, out_dir=tmp_path)
    history = pd.read_csv(tmp_path/"history.csv")
    assert history.train_loss.iloc[-1] < history.train_loss.iloc[0], history
    model, scaler, ckpt = load_checkpoint(tmp_path/"best.pt")
    again, _, _ = load_checkpoint(tmp_path/"best.pt")
    samples = load_split(dataset, "test", data_dir, subset=4)
    image = torch.from_numpy(np.stack([resized_pair(s, 128)[0] for s in samples])).permute(0, 3, 1, 2).float()/255
    z = torch.from_numpy(scaler.transform(cached_radiomics(samples, 128))).float()
    with torch.no_grad(): assert torch.equal(model(image, z), again(image, z))
    assert ckpt["extra"]["config"]["dataset"] == dataset and summary["test_dice"] is not None
