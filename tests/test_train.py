"Training: resume after an interruption, bad checkpoints, the CLI, and a smoke run on the genuine data."
import subprocess, shutil
import numpy as np, pandas as pd, pytest, torch
from radiomicnet.core import CheckpointError
from radiomicnet.model.net import load_checkpoint
from radiomicnet.data.datasets import DATASETS, load_split
from radiomicnet.data.loaders import resized_pair, cached_radiomics, get_dls
from radiomicnet.train import learner as train
from conftest import REPO

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
    assert out.returncode == 2 and "Traceback" not in out.stderr   # the parser refuses it (argparse's status 2), naming the choices
    assert out.stderr.strip().splitlines()[-1] == ("radiomicnet-run: error: argument --variant: invalid choice: 'nope' (choose from 'full', 'no_rag', "
                                                   "'no_rc', 'no_bnd', 'rag_spatial', 'rag_channel', 'rag_shuffled', 'rag_mean', 'rag_local')")
    assert not list(tmp_path.iterdir())                             # and nothing was written

def test_baseline_trains_with_the_same_learner(tmp_path):
    summary = train.train_run(**TINY, epochs=1, model_name="unet", out_dir=tmp_path)
    assert summary["config"]["model_name"] == "unet" and 0 <= summary["valid_dice"] <= 1

def dice(pred:np.ndarray, truth:np.ndarray)->float:
    "Dice of two boolean masks, written out here (not radiomicnet.eval.metrics): 2|P&T| / (|P| + |T|), 1 when both are empty."
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    total = pred.sum() + truth.sum()
    return 1.0 if total == 0 else float(2 * (pred & truth).sum() / total)

def test_dice_helper_known_answers():
    a = np.zeros((4, 4), bool); a[:2] = True                 # 8 pixels
    b = np.zeros((4, 4), bool); b[1:3] = True                # 8 pixels, 4 shared
    assert dice(a, b) == 0.5 and dice(a, a) == 1.0 and dice(a, ~a) == 0.0 and dice(a, np.zeros_like(a)) == 0.0
    assert dice(np.zeros_like(a), np.zeros_like(a)) == 1.0 and dice(np.ones_like(a), a) == pytest.approx(2 * 8 / (16 + 8))

def network_masks(model, scaler, samples, img_size):
    "Foreground masks (N,S,S) bool of a network on samples at its input size, fed as in training; and the resized true masks."
    pairs = [resized_pair(s, img_size) for s in samples]
    image = torch.from_numpy(np.stack([p[0] for p in pairs])).permute(0, 3, 1, 2).float() / 255
    z = torch.from_numpy(scaler.transform(cached_radiomics(samples, img_size))).float()
    with torch.no_grad(): probs = torch.sigmoid(model.eval()(image, z))[:, 0]
    return (probs > 0.5).numpy(), np.stack([p[1] > 0 for p in pairs])

@pytest.mark.parametrize("dataset", list(DATASETS))
def test_real_data_smoke(dataset, data_dir, tmp_path):
    """2 epochs on 16 images per split at 128 px: the loss goes down, and the reloaded best.pt gives masks whose Dice, computed
    here in numpy, is the Dice the run recorded: on the validation split at the best epoch, and on the test split in the summary."""
    summary = train.train_run(dataset, data_dir, img_size=128, epochs=2, bs=8, subset=16, out_dir=tmp_path)
    history = pd.read_csv(tmp_path/"history.csv")
    assert history.train_loss.iloc[-1] < history.train_loss.iloc[0], history
    model, scaler, ckpt = load_checkpoint(tmp_path/"best.pt")
    assert ckpt["extra"]["config"]["dataset"] == dataset and ckpt["extra"]["epoch"] == summary["best_epoch"]
    for split, recorded in (("valid", ckpt["extra"]["dice"]), ("test", summary["test_dice"])):
        samples = load_split(dataset, split, data_dir, subset=16)
        pred, truth = network_masks(model, scaler, samples, 128)
        assert len(samples) == 16 and truth.any(axis=(1, 2)).all()        # lesion images only: every Dice is defined by its lesion
        assert recorded == pytest.approx(np.mean([dice(p, t) for p, t in zip(pred, truth)]), abs=1e-6), split

@pytest.fixture
def one_thread():
    "One torch thread for one test (its time is stated for one core), restored afterwards."
    n = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

def test_the_model_learns_the_synthetic_lesions(tmp_path, one_thread):
    """10 epochs on the embedded synthetic data set (70 training images of 64 px; about 20 s on one core) give masks on the 15
    held-out test images (never used to train or to pick the checkpoint) whose mean Dice, computed here, beats by 0.3 or more
    both masks that need no learning: all background (Dice 0 on a lesion) and all foreground (2|T| / (|T| + H*W), about 0.18)."""
    summary = train.train_run("synthetic", img_size=64, epochs=10, bs=8, seed=0, out_dir=tmp_path, device="cpu")
    model, scaler, _ = load_checkpoint(tmp_path/"best.pt")
    samples = load_split("synthetic", "test", size=64, seed=0)
    pred, truth = network_masks(model, scaler, samples, 64)
    assert len(samples) == 15 and truth.any(axis=(1, 2)).all() and not truth.all(axis=(1, 2)).any()
    learnt = np.mean([dice(p, t) for p, t in zip(pred, truth)])
    background = np.mean([dice(np.zeros_like(t), t) for t in truth])
    foreground = np.mean([dice(np.ones_like(t), t) for t in truth])
    assert background == 0 and 0 < foreground < 0.4, foreground
    assert learnt >= max(background, foreground) + 0.3, (learnt, background, foreground, summary["epochs_run"])
    assert np.mean([dice(p, t) > dice(np.ones_like(t), t) for p, t in zip(pred, truth)]) >= 0.8   # not a few lucky images

# --- protocols, schedules and the time budget -------------------------------------------------------------------

def _recorded_lrs(learn):
    "The learning rate of each parameter group at every training step, as fastai's Recorder saw them (group 0)."
    return np.array(learn.recorder.lrs)

def test_one_cycle_schedule_matches_fastais_fit_one_cycle():
    "Independent answer: fastai's own `fit_one_cycle` on an identical Learner records the same rates and momentums."
    torch.manual_seed(0)
    dls = get_dls("synthetic", img_size=64, bs=8, subset=16)
    ours, theirs = (train.build_learner(dls, lr=3e-3) for _ in range(2))
    for l in (ours, theirs): l.remove_cb(l.progress) if hasattr(l, "progress") else None
    ours.fit(3, lr=ours.peak_lrs, cbs=train.schedule_callback("one_cycle", ours.peak_lrs, 3))
    theirs.fit_one_cycle(3, lr_max=theirs.peak_lrs)
    np.testing.assert_allclose(_recorded_lrs(ours), _recorded_lrs(theirs), rtol=1e-12)
    np.testing.assert_allclose(np.array(ours.recorder.moms), np.array(theirs.recorder.moms), rtol=1e-12)
    assert _recorded_lrs(ours).max() == pytest.approx(3e-3, rel=0.05)

def test_unknown_schedule_and_protocol_are_clear_errors(tmp_path):
    with pytest.raises(train.RadiomicNetError, match="unknown schedule 'linear'"): train.train_run(**TINY, epochs=1, schedule="linear", out_dir=tmp_path)
    with pytest.raises(train.RadiomicNetError, match="unknown protocol 'gpu'"): train.train_run(**TINY, epochs=1, protocol="gpu", out_dir=tmp_path)

def test_summary_records_protocol_seed_command_and_commit(tmp_path):
    summary = train.train_run(**TINY, epochs=1, seed=3, out_dir=tmp_path, command="radiomicnet-run --seed 3")
    assert summary["protocol"] == "cpu" and summary["seed"] == 3 and summary["command"] == "radiomicnet-run --seed 3"
    assert summary["config"]["schedule"] == train.PROTOCOLS["cpu"]["schedule"] and summary["config"]["epochs"] == 1  # an override is recorded
    assert summary["radiomicnet"] and summary["device"] == "cpu" and summary["train_seconds_total"] > 0 and summary["stopped_by"] == "epochs"
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    if head.returncode == 0: assert summary["git_commit"].startswith(head.stdout.strip())

def test_time_budget_stops_at_the_first_epoch_end_after_it(tmp_path):
    summary = train.train_run(**TINY, epochs=5, time_budget=1e-4, out_dir=tmp_path)  # 6 ms: spent within the first epoch
    assert summary["epochs_run"] == 1 and summary["stopped_by"] == "time budget"
    lr = pd.read_csv(tmp_path/"history.csv").filter(like="lr").iloc[0]   # so the schedule ended with it: the one-cycle's last rate
    assert np.allclose(lr, summary["config"]["lr"]/1e5)
    assert torch.load(tmp_path/"last.pt", weights_only=True)["extra"]["epoch"] == 0 and (tmp_path/"best.pt").exists()

def test_time_used_before_a_resume_counts_against_the_budget(tmp_path, monkeypatch):
    original = train.RunCheckpoint.after_epoch
    def crash_after_epoch_0(self):
        original(self)
        if self.epoch == 0: raise KeyboardInterrupt("power cut")
    monkeypatch.setattr(train.RunCheckpoint, "after_epoch", crash_after_epoch_0)
    with pytest.raises(KeyboardInterrupt): train.train_run(**TINY, epochs=4, time_budget=10, out_dir=tmp_path)
    monkeypatch.setattr(train.RunCheckpoint, "after_epoch", original)
    history = pd.read_csv(tmp_path/"history.csv")
    history.loc[0, "seconds"] = 601.0  # the first epoch "took" 10 min 1 s
    history.to_csv(tmp_path/"history.csv", index=False)
    started = []
    monkeypatch.setattr(train.Learner, "fit", lambda self, *a, **kw: started.append(kw))
    summary = train.train_run(**TINY, epochs=4, time_budget=10, out_dir=tmp_path)
    assert started == [] and summary["stopped_by"] == "time budget" and summary["epochs_run"] == 1
    assert summary["train_seconds_total"] == pytest.approx(601.0)

def _first_lr(minutes, used):
    "The rate of the first training batch of a tiny one-cycle run (peak 1e-2, 20 epochs) whose budget has `used` seconds spent."
    class FirstBatchOnly(train.Callback):
        order = train.ParamScheduler.order + 1
        def after_batch(self): raise train.CancelFitException()
    learn = train.build_learner(get_dls(**TINY), lr=1e-2)
    budget = train.TimeBudget(minutes, used)
    sched = train.BudgetScheduler(train.schedule_callback("one_cycle", learn.peak_lrs, 20).scheds, budget)
    learn.fit(20, cbs=[sched, budget, FirstBatchOnly()])
    return sched.hps["lr"][0]

def test_the_schedule_ends_with_the_budget_when_that_comes_first():
    """fastai's one-cycle (warm-up to peak over the first 25%, then cosine to peak/1e5): with half of a 1-minute budget
    spent the first batch is at 50% of the schedule, peak/1e5 + (peak - peak/1e5)(1 + cos(pi/3))/2 = 0.75 peak (ours
    within the ms the batch takes to start); with the budget spent, the schedule's end; without a budget, its start (peak/25)."""
    peak = 1e-2
    assert _first_lr(None, 0.) == pytest.approx(peak/25, rel=1e-6)
    assert _first_lr(1., 30.) == pytest.approx(peak/1e5 + (peak - peak/1e5)*0.75, rel=0.02)
    assert _first_lr(1., 90.) == pytest.approx(peak/1e5, rel=1e-6)

def test_patience_stops_after_exactly_patience_epochs_without_gain(tmp_path, monkeypatch):
    "Validation Dice that never improves after epoch 0: with patience 2 the run stops after epoch 2."
    monkeypatch.setattr(train.MeanDice, "value", property(lambda self: 0.5))
    summary = train.train_run(**TINY, epochs=10, patience=2, protocol="paper", pretrained=False, out_dir=tmp_path)
    assert summary["stopped_by"] == "patience" and summary["best_epoch"] == 0
    assert summary["epochs_run"] == 3  # epoch 0 best, epochs 1 and 2 without gain

# --- the pretrained path -------------------------------------------------------------------------------------------

@pytest.fixture
def hub_dir(tmp_path, monkeypatch):
    "An empty torch hub cache for the test, restored afterwards."
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path/"hub"))
    yield tmp_path/"hub"
    torch.hub.set_dir(old)

def test_paper_protocol_uses_imagenet_weights_when_on_disk(tmp_path, hub_dir):
    from torchvision.models import mobilenet_v2
    from radiomicnet.model import net as M
    torch.manual_seed(1)
    weights = mobilenet_v2().state_dict()
    path = M.hub_file(M.IMAGENET_WEIGHTS[0]); path.parent.mkdir(parents=True); torch.save(weights, path)
    summary = train.train_run(**TINY, epochs=1, protocol="paper", out_dir=tmp_path/"run")
    assert summary["weights"] == "ImageNet-pretrained encoder" and summary["config"]["pretrained"] is True
    learn = train.build_learner(get_dls("synthetic", img_size=64, subset=16), pretrained=True, lr=1e-4, encoder_lr=1e-5)
    assert learn.peak_lrs.tolist() == [1e-5, 1e-4]  # the encoder's own rate, used only with pretrained weights
    assert torch.equal(learn.model.encoder.features[0][0].weight, weights["features.0.0.weight"])

def test_paper_protocol_without_weights_warns_once_and_trains_from_scratch(tmp_path, hub_dir):
    from radiomicnet.model import net as M
    M.warn_training_from_scratch.cache_clear()
    with pytest.warns(UserWarning, match="FROM SCRATCH") as record:
        summary = train.train_run(**TINY, epochs=1, protocol="paper", out_dir=tmp_path)
    assert sum("FROM SCRATCH" in str(w.message) for w in record) == 1
    assert summary["weights"] == "from scratch"

@pytest.mark.parametrize("model_name", ["unet", "unetpp", "ukan"])
def test_pretrained_flag_is_ignored_by_models_without_a_pretrained_encoder(model_name, tmp_path):
    assert not train.model_meta(model_name)["pretrained_encoder"]
    summary = train.train_run(**TINY, epochs=1, model_name=model_name, pretrained=True, out_dir=tmp_path)
    assert summary["weights"] == "from scratch"

@pytest.mark.parametrize("protocol,sqr_mom,eps", [("paper", 0.999, 1e-8), ("cpu", 0.99, 1e-5)])
def test_optimiser_is_adamw_with_the_protocols_moments(protocol, sqr_mom, eps):
    "Known answer for decoupled weight decay, inside `Learner.fit`: with zero gradients one step multiplies every weight by (1 - lr*wd)."
    from fastai.callback.core import Callback, CancelFitException
    s = train.protocol_settings(protocol)
    learn = train.build_learner(get_dls("synthetic", img_size=64, subset=16), wd=0.1, sqr_mom=s["sqr_mom"], eps=s["eps"])
    class ZeroGradStep(Callback):
        order = 100  # after GradientClip
        def before_step(self):
            self.params = [p for p in self.model.parameters() if p.grad is not None]
            self.before = [p.detach().clone() for p in self.params]
            for p in self.params: p.grad.zero_()
        def after_step(self): raise CancelFitException()
    cb = ZeroGradStep()
    learn.fit(1, lr=1e-2, cbs=cb)
    assert {h["sqr_mom"] for h in learn.opt.hypers} == {sqr_mom} and {h["eps"] for h in learn.opt.hypers} == {eps}
    assert {h["wd"] for h in learn.opt.hypers} == {0.1}
    from fastai.torch_core import norm_bias_params
    exempt = {id(p) for p in norm_bias_params(learn.model)}          # fastai's default (wd_bn_bias=False): no decay on norms and biases
    assert 0 < len(exempt) < len(cb.params)
    for b, p in zip(cb.before, cb.params):
        torch.testing.assert_close(p.detach(), b if id(p) in exempt else b * (1 - 1e-2 * 0.1), rtol=1e-6, atol=1e-9)

class _Rates(__import__("fastai.callback.core", fromlist=["Callback"]).Callback):
    "Records every group's learning rate at each optimiser step, and the gradient norm before and after clipping."
    def __init__(self): self.lrs, self.norms = [], []
    def before_fit(self): self.lrs, self.norms = [], []
    def after_step(self): self.lrs.append([h["lr"] for h in self.opt.hypers])

def _grad_norm(params): return float(torch.norm(torch.stack([p.grad.norm() for p in params if p.grad is not None])))

def test_paper_schedule_rates_per_group_inside_a_learner(tmp_path, hub_dir):
    "Known answers of the paper's schedule over 10 epochs: 1% of each peak at the first step, the peaks at the end of the "
    "5-epoch warm-up, and (1 + cos(0.9 pi))/2 of them at the last step (pct 0.95, 90% down the cosine)."
    from torchvision.models import mobilenet_v2
    from radiomicnet.model import net as M
    path = M.hub_file(M.IMAGENET_WEIGHTS[0]); path.parent.mkdir(parents=True); torch.save(mobilenet_v2().state_dict(), path)
    learn = train.build_learner(get_dls("synthetic", img_size=64, bs=8, subset=16), pretrained=True, lr=1e-4, encoder_lr=1e-5)
    rec = _Rates()
    learn.fit(10, lr=learn.peak_lrs, cbs=[train.schedule_callback("cosine", learn.peak_lrs, 10), rec])
    lrs = np.array(rec.lrs)
    n = len(lrs); assert n == 10 * len(learn.dls.train)
    np.testing.assert_allclose(lrs[0], [1e-7, 1e-6], rtol=1e-9)
    np.testing.assert_allclose(lrs[n // 2], [1e-5, 1e-4], rtol=1e-9)
    np.testing.assert_allclose(lrs[-1], np.array([1e-5, 1e-4]) * (1 + np.cos(np.pi * (1 - 2 / n))) / 2, rtol=1e-6)

def test_gradient_clipping_clips_to_norm_one():
    from fastai.callback.core import Callback, CancelFitException
    class Norms(Callback):
        def __init__(self, order): self.order, self.norms = order, []
        def before_step(self): self.norms.append(_grad_norm(list(self.model.parameters())))
    before, after = Norms(order=5), Norms(order=50)      # GradientClip runs at order 11
    class Stop(Callback):
        order = 60
        def after_step(self):
            if len(after.norms) == 2: raise CancelFitException()
    learn = train.build_learner(get_dls("synthetic", img_size=64, bs=8, subset=16))
    learn.loss_func = (lambda f: lambda *a: 1000 * f(*a))(learn.loss_func)   # gradients far above norm 1
    learn.fit(1, lr=1e-3, cbs=[before, after, Stop()])
    assert min(before.norms) > 1 and after.norms == pytest.approx([1.0] * 2, rel=1e-4)
