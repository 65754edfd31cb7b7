"Tests of radiomicnet.data.images, .datasets and .loaders: the genuine data sets, committed splits, bad input, the feature cache, DataLoaders, download."
import functools, http.server, io, os, subprocess, sys, threading, zipfile
from collections import Counter
from pathlib import Path
import numpy as np, pandas as pd, pytest, torch
from PIL import Image
import radiomicnet.data.loaders as rl
from radiomicnet.core import DataError
from radiomicnet.data.images import FileSample, read_image, read_mask, synthetic_pair, synthetic_samples
from radiomicnet.data.datasets import (DATASETS, SPLITS, SPLITS_DIR, dataset_root, download_dataset, load_split, make_split_table,
                                       read_split_file, scan_dataset, split_csv)
from radiomicnet.data.loaders import cached_radiomics, get_dls
from radiomicnet.cli import radiomicnet_download
from radiomicnet.features import FEATURE_NAMES

REPO = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------- helpers: tiny fake data sets
def _save_grey(path, size=(20, 24), seed=0):
    img, mask = synthetic_pair(seed, size)
    Image.fromarray(img[..., 0]).save(path)
    return mask

def fake_busi(data_dir: Path, n=2, size=(20, 24)) -> Path:
    "data_dir/BUSI/Dataset_BUSI_with_GT with `n` image/mask pairs per class."
    root = data_dir/"BUSI"/"Dataset_BUSI_with_GT"
    for k, cls in enumerate(("benign", "malignant", "normal")):
        (root/cls).mkdir(parents=True, exist_ok=True)
        for i in range(1, n+1):
            mask = _save_grey(root/cls/f"{cls} ({i}).png", size, 10*k + i)
            Image.fromarray(mask).save(root/cls/f"{cls} ({i})_mask.png")
    return root

def fake_kvasir(data_dir: Path, n=3, size=(24, 32)) -> Path:
    root = data_dir/"Kvasir-SEG"
    for sub in ("images", "masks"): (root/sub).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img, mask = synthetic_pair(i, size)
        Image.fromarray(img).save(root/"images"/f"k{i}.jpg")
        Image.fromarray((mask*255).astype(np.uint8)).save(root/"masks"/f"k{i}.jpg")
    return root


# ---------------------------------------------------------------- the genuine data
def test_busi_on_disk(data_dir):
    table = scan_dataset("busi", data_dir)
    assert table["class"].value_counts()[["benign", "malignant", "normal"]].tolist() == [437, 210, 133]
    assert (table["class"] != "normal").sum() == 647
    n_masks = table.masks.str.count(";") + 1
    assert Counter(n_masks[table["class"] == "benign"]) == {1: 421, 2: 15, 3: 1}
    assert Counter(n_masks[table["class"] == "malignant"]) == {1: 209, 2: 1}

def test_kvasir_on_disk(data_dir):
    table = scan_dataset("kvasir-seg", data_dir)
    assert len(table) == 1000 and set(table["class"]) == {"polyp"}

def test_busi_masks_are_merged_by_or(data_dir):
    s = next(s for s in load_split("busi", data_dir=data_dir) if len(s.masks) == 3)
    image, mask = s.load()
    union = np.logical_or.reduce([np.asarray(Image.open(m)) > 0 for m in s.masks])
    assert image.shape == mask.shape + (3,) and image.dtype == np.uint8
    assert (mask == union).all() and mask.sum() > max((np.asarray(Image.open(m)) > 0).sum() for m in s.masks)

def test_kvasir_masks_are_thresholded_at_128(data_dir):
    s = load_split("kvasir-seg", "test", data_dir=data_dir)[0]
    image, mask = s.load()
    grey = np.asarray(Image.open(s.masks[0]).convert("L"))
    assert image.shape[:2] == mask.shape and mask.dtype == bool and 0 < mask.mean() < 1
    assert (mask == (grey >= 128)).mean() > 0.999

def test_committed_splits_are_regenerated_byte_for_byte(data_dir):
    "The generator in 09_datasets reproduces radiomicnet/splits/*.csv exactly (reads all 1780 images once)."
    for d in DATASETS:
        assert split_csv(make_split_table(d, data_dir)) == (SPLITS_DIR/f"{d}.csv").read_text(), d

def test_every_split_file_entry_exists(data_dir):
    for d in DATASETS:
        assert len(load_split(d, data_dir=data_dir, include_normal=True)) == len(read_split_file(d))

def test_dataloaders_on_genuine_data(data_dir, tmp_path):
    for d in DATASETS:
        dls = get_dls(d, data_dir=data_dir, img_size=64, bs=4, subset=4, cache_dir=tmp_path, device="cpu")
        image, radiomics, mask = dls.one_batch()
        assert (image.shape, radiomics.shape, mask.shape) == ((4, 3, 64, 64), (4, 13), (4, 1, 64, 64))
        assert torch.isfinite(radiomics).all() and set(mask.unique().tolist()) <= {0., 1.}
        assert len(dls.test.dataset) == 4 and dls.dataset == d


# ---------------------------------------------------------------- committed splits (no images needed)
def test_committed_split_sizes_and_groups():
    busi, kvasir = read_split_file("busi"), read_split_file("kvasir-seg")
    paper = busi[busi["class"] != "normal"]
    assert paper.split.value_counts()[list(SPLITS)].tolist() == [452, 97, 98]
    assert kvasir.split.value_counts()[list(SPLITS)].tolist() == [800, 100, 100]
    by_class = paper.groupby(["class", "split"]).size().unstack()[list(SPLITS)]
    assert by_class.loc["benign"].tolist() == [305, 66, 66] and by_class.loc["malignant"].tolist() == [147, 31, 32]
    for t in (busi, kvasir):
        assert t.id.is_unique and t.image.is_unique
        assert t.groupby("pixel_hash").split.nunique().max() == 1
    twins = busi.set_index("id").loc[["benign (433)", "malignant (145)"]]
    assert twins.pixel_hash.nunique() == 1 and twins.split.nunique() == 1

def test_split_file_errors(tmp_path):
    with pytest.raises(DataError, match="busi.csv: split file missing"): read_split_file("busi", tmp_path)
    (tmp_path/"busi.csv").write_text("id,split\nx,train\n")
    with pytest.raises(DataError, match="busi.csv: columns"): read_split_file("busi", tmp_path)
    with pytest.raises(DataError, match="unknown data set 'mnist'"): load_split("mnist")
    with pytest.raises(DataError, match="unknown split 'val'"): load_split("synthetic", "val")


# ---------------------------------------------------------------- formats are converted, not refused
@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "LA", "I;16", "I"])
def test_image_modes_read_the_same(tmp_path, mode):
    grey = np.random.default_rng(0).integers(0, 256, (12, 16)).astype(np.uint8)
    if mode == "I;16": im = Image.fromarray(grey.astype(np.uint16)*257)
    elif mode == "I": im = Image.fromarray(grey.astype(np.int32)*257)
    else: im = Image.fromarray(grey).convert(mode)
    path = tmp_path/("x.tif" if mode == "I" else "x.png")        # PNG cannot hold 32-bit integers
    im.save(path)
    assert Image.open(path).mode == mode
    assert read_image(path).tolist() == np.dstack([grey]*3).tolist()

def test_mask_modes_read_the_same(tmp_path):
    fg = np.zeros((10, 12), bool); fg[2:6, 3:9] = True
    u8 = fg.astype(np.uint8)*255
    Image.fromarray(fg).save(tmp_path/"bit.png")
    Image.fromarray(np.dstack([u8]*3)).save(tmp_path/"rgb.png")
    Image.fromarray(np.dstack([u8]*3 + [np.full_like(u8, 255)])).save(tmp_path/"rgba.png")
    Image.fromarray(u8.astype(np.uint16)*257).save(tmp_path/"deep.png")
    for name in ("bit.png", "rgb.png", "rgba.png", "deep.png"):
        assert (read_mask([tmp_path/name], fg.shape) == fg).all(), name


# ---------------------------------------------------------------- bad input: one line naming the file
def _one_line(excinfo): return "\n" not in str(excinfo.value)

def test_unreadable_image(tmp_path):
    (tmp_path/"x.png").write_text("not an image")
    with pytest.raises(DataError, match=r"x\.png: unreadable or truncated image") as e: read_image(tmp_path/"x.png")
    assert _one_line(e)

def test_truncated_image(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3)).astype(np.uint8)
    for ext in ("png", "jpg"):
        Image.fromarray(noise).save(tmp_path/f"full.{ext}")
        (tmp_path/f"cut.{ext}").write_bytes((tmp_path/f"full.{ext}").read_bytes()[:1500])
        with pytest.raises(DataError, match=rf"cut\.{ext}: unreadable or truncated image") as e: read_image(tmp_path/f"cut.{ext}")
        assert _one_line(e)

def test_missing_mask_when_scanning(tmp_path):
    root = fake_busi(tmp_path)
    (root/"benign"/"benign (2)_mask.png").unlink()
    with pytest.raises(DataError, match=r"benign \(2\)\.png: no mask file for this image"): scan_dataset("busi", tmp_path)
    kv = fake_kvasir(tmp_path)
    (kv/"masks"/"k1.jpg").unlink()
    with pytest.raises(DataError, match=r"k1\.jpg: no mask file for this image"): scan_dataset("kvasir-seg", tmp_path)

def test_missing_mask_listed_in_split_file(tmp_path):
    root = fake_busi(tmp_path)
    table = make_split_table("busi", tmp_path, sizes=(2, 1, 1))
    (tmp_path/"splits").mkdir(); (tmp_path/"splits"/"busi.csv").write_text(split_csv(table))
    assert len(load_split("busi", data_dir=tmp_path, splits_dir=tmp_path/"splits")) == 4
    (root/"malignant"/"malignant (1)_mask.png").unlink()
    with pytest.raises(DataError, match=r"malignant \(1\)_mask\.png: listed in the busi split file but missing"):
        load_split("busi", data_dir=tmp_path, splits_dir=tmp_path/"splits")

def test_mask_of_another_size(tmp_path):
    root = fake_busi(tmp_path)
    Image.fromarray(np.zeros((5, 5), bool)).save(root/"benign"/"benign (1)_mask.png")
    s = FileSample("benign (1)", "busi", "train", "benign", root/"benign"/"benign (1).png", (root/"benign"/"benign (1)_mask.png",))
    with pytest.raises(DataError, match=r"benign \(1\)_mask\.png: mask is 5x5 pixels but its image .*benign \(1\)\.png is 24x20") as e:
        s.load()
    assert _one_line(e)

def test_mask_without_image(tmp_path):
    root = fake_busi(tmp_path)
    (root/"normal"/"normal (1).png").unlink()
    with pytest.raises(DataError, match=r"normal \(1\)_mask\.png: mask without an image"): scan_dataset("busi", tmp_path)

def test_empty_folder(tmp_path):
    root = fake_busi(tmp_path)
    for p in (root/"malignant").iterdir(): p.unlink()
    with pytest.raises(DataError, match=r"malignant: no images found"): scan_dataset("busi", tmp_path)
    (tmp_path/"Kvasir-SEG"/"images").mkdir(parents=True); (tmp_path/"Kvasir-SEG"/"masks").mkdir()
    with pytest.raises(DataError, match=r"images: no images found"): scan_dataset("kvasir-seg", tmp_path)

def test_wrong_layout(tmp_path):
    with pytest.raises(DataError, match=r"no busi folder 'BUSI/Dataset_BUSI_with_GT/' or 'Dataset_BUSI_with_GT/'") as e:
        dataset_root("busi", tmp_path)
    assert _one_line(e) and "radiomicnet-download --dataset busi" in str(e.value)
    root = fake_busi(tmp_path)
    (root/"normal").rename(root/"Normal cases")
    with pytest.raises(DataError, match=r"normal: folder missing \(wrong layout\)"): scan_dataset("busi", tmp_path)
    (tmp_path/"Kvasir-SEG"/"images").mkdir(parents=True)
    with pytest.raises(DataError, match=r"Kvasir-SEG/masks: folder missing"): scan_dataset("kvasir-seg", tmp_path)

def test_busi_normal_class_is_optional(tmp_path):
    fake_busi(tmp_path)
    (tmp_path/"splits").mkdir()
    (tmp_path/"splits"/"busi.csv").write_text(split_csv(make_split_table("busi", tmp_path, sizes=(2, 1, 1))))
    kw = dict(data_dir=tmp_path, splits_dir=tmp_path/"splits")
    assert {s.label for s in load_split("busi", **kw)} == {"benign", "malignant"}
    assert {s.label for s in load_split("busi", include_normal=True, **kw)} == {"benign", "malignant", "normal"}


# ---------------------------------------------------------------- feature cache
def test_feature_cache_second_run_extracts_nothing(tmp_path, monkeypatch):
    fake_busi(tmp_path/"data")
    (tmp_path/"splits").mkdir()
    (tmp_path/"splits"/"busi.csv").write_text(split_csv(make_split_table("busi", tmp_path/"data", sizes=(2, 1, 1))))
    samples = load_split("busi", data_dir=tmp_path/"data", splits_dir=tmp_path/"splits", include_normal=True)
    calls, real = [], rl.radiomics_features_torch
    monkeypatch.setattr(rl, "radiomics_features_torch", lambda x: (calls.append(len(x)), real(x))[1])
    first = cached_radiomics(samples, 32, tmp_path/"cache")
    assert sum(calls) == len(samples) == 6
    second = cached_radiomics(samples, 32, tmp_path/"cache")
    assert sum(calls) == 6 and (first == second).all() and first.shape == (6, len(FEATURE_NAMES))
    os.utime(samples[0].image, ns=(1, 1))                        # a changed file is extracted again, alone
    cached_radiomics(samples, 32, tmp_path/"cache")
    assert sum(calls) == 7
    cached_radiomics(samples, 48, tmp_path/"cache")              # another input size is another cache file
    assert sum(calls) == 13 and len(list((tmp_path/"cache").glob("busi-*.npz"))) == 2

def test_feature_cache_survives_a_corrupt_file(tmp_path):
    samples = synthetic_samples(3, 32)
    path = rl.feature_cache_file("synthetic", 32, tmp_path)
    path.write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="unreadable feature cache"): feats = cached_radiomics(samples, 32, tmp_path)
    assert feats.shape == (3, 13) and np.isfinite(feats).all()

def test_feature_cache_that_cannot_be_written(tmp_path):
    (tmp_path/"a_file").write_text("")                           # the cache folder cannot be created
    with pytest.warns(UserWarning, match="cannot write the feature cache"):
        assert cached_radiomics(synthetic_samples(2, 32), 32, tmp_path/"a_file").shape == (2, 13)

def test_cache_dir_default(monkeypatch, tmp_path):
    monkeypatch.delenv(rl.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert rl.default_cache_dir() == tmp_path/"radiomicnet"
    monkeypatch.setenv(rl.CACHE_ENV, str(tmp_path/"c"))
    assert rl.default_cache_dir() == tmp_path/"c" and rl.default_cache_dir("/x") == Path("/x")


# ---------------------------------------------------------------- DataLoaders
def test_synthetic_dataloaders(tmp_path):
    dls = get_dls("synthetic", img_size=64, bs=4, n_synthetic=20, cache_dir=tmp_path, device="cpu", seed=3)
    again = get_dls("synthetic", img_size=64, bs=4, n_synthetic=20, cache_dir=tmp_path, device="cpu", seed=3)
    assert list(dls.train.get_idxs()) == list(again.train.get_idxs())       # the seed fixes the shuffling order
    assert np.array_equal(dls.radiomics.to_numpy(), again.radiomics.to_numpy())
    image, radiomics, mask = dls.one_batch()
    assert (image.shape, radiomics.shape, mask.shape) == ((4, 3, 64, 64), (4, 13), (4, 1, 64, 64))
    assert {image.dtype, radiomics.dtype, mask.dtype} == {torch.float32}
    assert dls.n_inp == 2 and [len(dls.samples[s]) for s in SPLITS] == [14, 3, 3]
    train = dls.radiomics[dls.radiomics.split == "train"][list(FEATURE_NAMES)].to_numpy()
    assert np.allclose(dls.scaler.transform(train).mean(0), 0, atol=1e-5)


# ---------------------------------------------------------------- download
class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args): pass

@pytest.fixture
def http_dir(tmp_path):
    "A folder served on 127.0.0.1; yields (folder, base URL)."
    folder = tmp_path/"served"; folder.mkdir()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(folder)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield folder, f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()

def _zip_folder(src: Path, archive: Path, prefix=""):
    with zipfile.ZipFile(archive, "w") as z:
        for p in sorted(src.rglob("*")):
            if p.is_file(): z.write(p, prefix + p.relative_to(src).as_posix())
        z.writestr("__MACOSX/._junk", b"")

def test_download_busi_and_kvasir(tmp_path, http_dir):
    folder, base = http_dir
    fake_busi(tmp_path/"src")
    _zip_folder(tmp_path/"src"/"BUSI", folder/"Dataset_BUSI.zip")           # zip root: Dataset_BUSI_with_GT/
    fake_kvasir(tmp_path/"src")
    _zip_folder(tmp_path/"src"/"Kvasir-SEG", folder/"kvasir-seg.zip", "kvasir-seg/")  # some mirrors rename the top folder
    dest = tmp_path/"data"
    assert download_dataset("busi", dest, f"{base}/Dataset_BUSI.zip", show_progress=False) == dest/"BUSI"/"Dataset_BUSI_with_GT"
    assert download_dataset("kvasir-seg", dest, f"{base}/kvasir-seg.zip", show_progress=False) == dest/"Kvasir-SEG"
    assert len(scan_dataset("busi", dest)) == 6 and len(scan_dataset("kvasir-seg", dest)) == 3
    assert sorted(p.name for p in dest.iterdir()) == ["BUSI", "Kvasir-SEG"]     # no temporary files left
    download_dataset("busi", dest, f"{base}/gone.zip", show_progress=False)       # already there: only checked

def test_download_errors(tmp_path, http_dir):
    folder, base = http_dir
    with pytest.raises(DataError, match=r"gone\.zip: download failed"): download_dataset("kvasir-seg", tmp_path/"a", f"{base}/gone.zip")
    (folder/"page.zip").write_text("<html>not a zip</html>")
    with pytest.raises(DataError, match=r"page\.zip: not a zip archive"): download_dataset("kvasir-seg", tmp_path/"b", f"{base}/page.zip")
    with zipfile.ZipFile(folder/"other.zip", "w") as z: z.writestr("readme.txt", "hello")
    with pytest.raises(DataError, match=r"holds no kvasir-seg data"): download_dataset("kvasir-seg", tmp_path/"c", f"{base}/other.zip")
    assert not (tmp_path/"c"/"Kvasir-SEG").exists() and list((tmp_path/"c").iterdir()) == []

def test_download_cli(tmp_path, http_dir, capsys):
    folder, base = http_dir
    fake_kvasir(tmp_path/"src")
    _zip_folder(tmp_path/"src", folder/"k.zip")
    script = tmp_path/"radiomicnet-download"                      # what the console-script wrapper does
    script.write_text("import sys\nfrom radiomicnet.cli import radiomicnet_download\nsys.exit(radiomicnet_download())\n")
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONWARNINGS="ignore")
    ok = subprocess.run([sys.executable, str(script), "--dataset", "kvasir-seg", "--data-root", str(tmp_path/"d"), "--url", f"{base}/k.zip"],
                        capture_output=True, text=True, env=env)
    assert ok.returncode == 0, ok.stderr
    assert "kvasir-seg: 3 polyp images" in ok.stdout and (tmp_path/"d"/"Kvasir-SEG"/"masks"/"k0.jpg").is_file()
    with pytest.raises(SystemExit) as e:                           # errors: one line on stderr, exit status 1
        radiomicnet_download(dataset="busi", data_root=str(tmp_path/"e"), url=f"{base}/none.zip")
    err = capsys.readouterr().err
    assert e.value.code == 1 and err.startswith("error: ") and err.count("\n") == 1 and "none.zip: download failed (HTTP Error 404" in err
    with pytest.raises(SystemExit) as e: radiomicnet_download()
    assert e.value.code == 1 and "which data set? pass --dataset busi or --dataset kvasir-seg" in capsys.readouterr().err
