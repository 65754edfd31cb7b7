"Distributed training through fastai: `train_run` under `torchrun` with 2 CPU processes (gloo) against the same run in one process."
import os, subprocess, sys, textwrap
import numpy as np, pytest, torch
from radiomicnet.data.loaders import get_dls
from radiomicnet.model.net import load_checkpoint
from radiomicnet.train import learner as train

TINY = dict(dataset="synthetic", img_size=64, bs=4, subset=16, epochs=2, seed=0, device="cpu")  # 16 training images: 4 batches, or 2 per rank

# Each process records the training images it was given (an image is known by its radiomics z-scores, which augmentation leaves alone),
# the files it wrote (every file of the run folder is written through `atomic_path`, which ends in `os.replace`), and its final weights.
PROBE = textwrap.dedent(f"""
    import os, sys, torch
    from fastai.callback.core import Callback
    from radiomicnet.train import learner as train
    writes, seen, learners = [], [], []
    _replace = os.replace
    os.replace = lambda src, dst: (writes.append(str(dst)), _replace(src, dst))[1]
    class SeenImages(Callback):
        def before_batch(self):
            if self.training: seen.extend((self.epoch, tuple(row)) for row in self.xb[1].cpu().numpy().round(5).tolist())
    def build_learner(*args, **kwargs):
        learners.append(train.build_learner_(*args, **kwargs)); learners[-1].add_cb(SeenImages()); return learners[-1]
    train.build_learner_, train.build_learner = train.build_learner, build_learner
    summary = train.train_run(**{TINY!r}, out_dir=sys.argv[1])
    learn = learners[0]
    torch.save(dict(state=learn.model.state_dict(), seen=seen, writes=writes, summary=summary, values=learn.recorder.values),
               os.path.join(sys.argv[2], f"rank{{os.environ.get('RANK', '0')}}.pt"))
""")

def run_probe(tmp_path, name, launcher):
    probe, run_dir, report = tmp_path/"probe.py", tmp_path/name, tmp_path/f"{name}-report"
    probe.write_text(PROBE); report.mkdir()
    env = dict(os.environ, OMP_NUM_THREADS="1", RADIOMICNET_CACHE=str(tmp_path/"cache"), MPLBACKEND="Agg")
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"): env.pop(k, None)
    done = subprocess.run([*launcher, str(probe), str(run_dir), str(report)], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return run_dir, [torch.load(p, weights_only=False) for p in sorted(report.glob("rank*.pt"))]

@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("distributed")
    single = run_probe(tmp, "single", [sys.executable])
    double = run_probe(tmp, "double", [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"])
    return single, double

def test_both_ranks_end_with_identical_weights(runs):
    (_, _), (_, ranks) = runs
    assert len(ranks) == 2
    a, b = ranks[0]["state"], ranks[1]["state"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

def test_final_weights_are_the_best_checkpoint(runs):
    (_, _), (run_dir, ranks) = runs
    best = load_checkpoint(run_dir/"best.pt")[0].state_dict()
    assert all(torch.equal(best[k], ranks[1]["state"][k]) for k in best)

def test_run_folder_is_written_once_by_rank_0(runs):
    (_, _), (run_dir, ranks) = runs
    assert [w for w in ranks[1]["writes"] if w.startswith(str(run_dir))] == []
    names = sorted(os.path.basename(w) for w in ranks[0]["writes"] if w.startswith(str(run_dir)))
    assert names == sorted(["best.pt"]*names.count("best.pt") + ["last.pt", "history.csv"]*2 + ["curves.png", "summary.json"])
    assert sorted(p.name for p in run_dir.iterdir()) == ["best.pt", "curves.png", "history.csv", "last.pt", "summary.json"]
    assert ranks[0]["summary"]["processes"] == 2 and ranks[1]["summary"] == dict(rank=1, world_size=2)

def test_each_training_image_is_seen_once_per_epoch_across_ranks_as_in_one_process(runs):
    (_, single), (_, ranks) = runs
    for epoch in range(TINY["epochs"]):
        one = [img for e, img in single[0]["seen"] if e == epoch]
        per_rank = [[img for e, img in r["seen"] if e == epoch] for r in ranks]
        assert len(one) == len(set(one)) == TINY["subset"]                       # one process: every image once
        assert [len(p) for p in per_rank] == [TINY["subset"] // 2]*2              # an even split
        assert sorted(per_rank[0] + per_rank[1]) == sorted(one)                   # together: the same images, each once

def test_metrics_are_synchronised_and_match_one_process_on_the_same_weights(runs):
    (_, _), (run_dir, ranks) = runs
    assert ranks[0]["values"] == ranks[1]["values"]                               # losses and Dice gathered over all ranks
    dls = get_dls(TINY["dataset"], img_size=TINY["img_size"], bs=TINY["bs"], seed=TINY["seed"], subset=TINY["subset"], device="cpu")
    learn = train.build_learner(dls)
    learn.model.load_state_dict(load_checkpoint(run_dir/"best.pt")[0].state_dict())
    np.testing.assert_allclose(ranks[0]["summary"]["test_dice"], learn.validate(dl=dls.test)[1], rtol=1e-9)
