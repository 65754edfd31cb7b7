"radiomicnet-predict and radiomicnet-export: every input mode, a corpus of bad files, ONNX parity and the same masks, on real BUSI and Kvasir-SEG images."
import shutil, struct, subprocess, zlib
from pathlib import Path
import numpy as np, pandas as pd, pytest, torch
from PIL import Image
from radiomicnet.data.images import read_image, synthetic_pair
from radiomicnet.data.datasets import DATASETS, load_split
from radiomicnet.infer.report import MIN_LESION_AREA, lesion_columns
from radiomicnet.infer.predictor import Predictor, preprocess, upsample_probs
from radiomicnet.infer.predict import export_onnx, read_prob_png
from radiomicnet.infer.video import predict_files
from radiomicnet.cli import radiomicnet_predict

pytestmark = pytest.mark.usefixtures("one_torch_thread")   # conftest: one torch thread per module

@pytest.fixture(scope="module")
def checkpoint(tiny_checkpoint):
    "The tiny synthetic run of conftest (seconds): its masks mean nothing, its plumbing is real."
    return tiny_checkpoint

def run(*args):
    exe = shutil.which(args[0])
    assert exe, f"{args[0]} is not installed: pip install -e ."
    return subprocess.run([exe, *map(str, args[1:])], capture_output=True, text=True)

def png_claiming(width, height):
    "A PNG whose header claims width x height 8-bit grey pixels, followed by a few bytes of pixel data."
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))

def write_modes(folder):
    "One synthetic image in every mode the command must read: {file name: (height, width)}."
    rgb = np.array(synthetic_pair(1, (70, 90))[0])
    grey = rgb[..., 0]
    files = {"grey.png": Image.fromarray(grey), "rgb.png": Image.fromarray(rgb), "rgba.png": Image.fromarray(rgb).convert("RGBA"),
             "palette.png": Image.fromarray(rgb).convert("P"), "grey16.png": Image.fromarray(grey.astype(np.uint16) * 257),
             "photo.jpg": Image.fromarray(rgb), "bitmap.BMP": Image.fromarray(rgb), "grey16.tif": Image.fromarray(grey.astype(np.uint16) * 257),
             "small16.png": Image.fromarray(grey[:16, :16])}  # smaller than the 32-px stride: predicted (the network sees it resized)
    for name, im in files.items(): im.save(folder/name)
    return {name: (im.height, im.width) for name, im in files.items()}

def write_bad_files(folder):
    "The corpus of bad files: {file name: words its one error line must contain}."
    good = folder/"good.png"; Image.fromarray(np.array(synthetic_pair(2, 64)[0])).save(good)
    data = good.read_bytes()
    (folder/"truncated.png").write_bytes(data[:len(data) // 2])
    (folder/"empty.png").write_bytes(b"")
    (folder/"text.png").write_text("this is not an image\n")
    Image.new("L", (1, 1)).save(folder/"one_pixel.png")
    (folder/"huge.png").write_bytes(png_claiming(100_000, 100_000))   # 10^10 px: PIL's DecompressionBombError
    (folder/"big.png").write_bytes(png_claiming(10_000, 10_000))      # 10^8 px: only PIL's warning, an error here
    good.unlink()
    return {"truncated.png": "truncated", "empty.png": "unreadable", "text.png": "unreadable", "one_pixel.png": "1x1 pixels",
            "huge.png": "decompression bomb", "big.png": "decompression bomb"}

def test_every_mode_and_every_bad_file(checkpoint, tmp_path):
    inputs = tmp_path/"inputs"; inputs.mkdir()
    sizes, bad = write_modes(inputs), write_bad_files(inputs)
    (inputs/"notes.txt").write_text("not an image suffix: not an input")
    out = tmp_path/"out"
    res = run("radiomicnet-predict", "--checkpoint", checkpoint, inputs, "--out", out)
    assert res.returncode == 1, res.stderr
    errors = [l for l in res.stderr.splitlines() if l.startswith("error:")]
    assert len(errors) == len(bad) and "Traceback" not in res.stderr, res.stderr
    for name, words in bad.items():
        line, = [l for l in errors if f"/{name}:" in l]
        assert words in line, line
    assert f"{len(sizes)} succeeded, {len(bad)} failed" in res.stdout
    report = pd.read_csv(out/"report.csv")
    assert sorted(report.image.map(lambda p: p.split("/")[-1])) == sorted(sizes)
    for name, (h, w) in sizes.items():
        stem = name.rsplit(".", 1)[0]
        with Image.open(out/f"{stem}_mask.png") as m, Image.open(out/f"{stem}_prob.png") as p, Image.open(out/f"{stem}_overlay.png") as o:
            assert m.size == p.size == (w, h) and m.mode == "L" and set(np.unique(np.asarray(m))) <= {0, 255}
            assert p.mode in ("I;16", "I") and o.format == "PNG"
        assert ((read_prob_png(out/f"{stem}_prob.png") > 0.5) == (np.asarray(Image.open(out/f"{stem}_mask.png")) > 0)).mean() > 0.999
    assert sorted(pd.read_csv(out/"failed.csv").image.map(lambda p: p.split("/")[-1])) == sorted(bad)
    lesions = pd.read_csv(out/"lesions.csv")   # the tiny model's masks mean nothing: each image's lesions are its mask's components
    for image, mask_file, n in zip(report.image, report.mask_file, report.n_lesions):
        _, sizes = components(np.asarray(Image.open(out/mask_file)) > 0)
        assert n == (lesions.image == image).sum() == (sizes >= MIN_LESION_AREA).sum(), image
    assert list(lesions.columns) == (["image", *lesion_columns(4)] if len(lesions) else ["image"])

def components(mask):
    "(labels, pixel count of each) of the 8-connected components of a boolean mask, with scipy (not the code under test)."
    from scipy import ndimage
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), int))
    return labels, np.bincount(labels.ravel(), minlength=n + 1)[1:]

def test_a_known_lesion_is_found_and_measured(data_dir, tmp_path, capsys):
    """The shipped Kvasir-SEG model through radiomicnet-predict, on genuine test images that each hold one polyp: every image
    has a lesion row, and its largest lesion lies on the polyp (centroid inside the true mask) with an area within a factor of 2
    of the polyp's."""
    inputs = tmp_path/"in"; inputs.mkdir()
    truths = {}
    for s in load_split("kvasir-seg", "test", data_dir, subset=12):  # the first three whose true mask is one polyp
        truth = s.load()[1]
        if len(components(truth)[1]) != 1 or len(truths) == 3: continue
        shutil.copy(s.image, inputs/s.image.name)
        truths[str(inputs/s.image.name)] = truth
    assert len(truths) == 3
    status, stdout, err = predict_in_process(capsys, inputs, model="kvasir-seg", out=tmp_path/"out")
    assert status == 0 and "3 succeeded, 0 failed" in stdout, err
    lesions = pd.read_csv(tmp_path/"out"/"lesions.csv")
    assert list(lesions.columns) == ["image", *lesion_columns(4)] and set(lesions.image) == set(truths), lesions.image
    for image, truth in truths.items():
        largest = lesions[lesions.image == image].sort_values("area").iloc[-1]
        assert truth[int(round(largest.centroid_row)), int(round(largest.centroid_col))], (image, largest.centroid_row, largest.centroid_col)
        assert 0.5 <= largest.area / truth.sum() <= 2, (image, largest.area, truth.sum())
    report = pd.read_csv(tmp_path/"out"/"report.csv").set_index("image")
    assert (report.loc[list(truths), "n_lesions"] >= 1).all()

def test_same_pixels_whatever_the_mode(checkpoint, tmp_path):
    "Grey, palette-free RGB/RGBA and 16-bit files of one picture give one probability map (lossless modes only)."
    write_modes(tmp_path)
    net = Predictor.from_checkpoint(checkpoint, device="cpu")
    probs = {n: net.predict_proba(read_image(tmp_path/n)) for n in ("grey.png", "grey16.png", "grey16.tif")}
    np.testing.assert_array_equal(probs["grey.png"], probs["grey16.png"]); np.testing.assert_array_equal(probs["grey.png"], probs["grey16.tif"])
    np.testing.assert_array_equal(net.predict_proba(read_image(tmp_path/"rgb.png")), net.predict_proba(read_image(tmp_path/"rgba.png")))

def predict_in_process(capsys, *inputs, **options):
    "radiomicnet-predict called in this process (no interpreter start-up): (exit status, stdout, stderr)."
    try: radiomicnet_predict(*map(str, inputs), **{k: str(v) if isinstance(v, Path) else v for k, v in options.items()}); status = 0
    except SystemExit as e: status = e.code
    out = capsys.readouterr()
    return status, out.out, out.err

def test_clear_errors_for_the_model_and_the_options(checkpoint, tmp_path, capsys):
    Image.fromarray(np.array(synthetic_pair(3, 64)[0])).save(tmp_path/"a.png")
    (tmp_path/"bad.pt").write_text("not a checkpoint")
    (tmp_path/"text.onnx").write_text("no")
    a, out = tmp_path/"a.png", tmp_path/"out"
    for inputs, options, words in [((a,), dict(checkpoint=tmp_path/"missing.pt"), "missing.pt: file not found"),
                                   ((a,), dict(checkpoint=tmp_path/"bad.pt"), "bad.pt: not a readable torch file"),
                                   ((a,), dict(checkpoint=tmp_path/"bad.onnx"), "bad.onnx: file not found"),
                                   ((a,), dict(checkpoint=tmp_path/"text.onnx"), "text.onnx: not an ONNX file written by radiomicnet-export"),
                                   ((a,), {}, "give --model NAME"),
                                   ((a,), dict(model=tmp_path/"nowhere"), "nowhere: no such model"),
                                   ((a,), dict(model="busi", checkpoint=checkpoint), "not both"),
                                   ((a,), dict(checkpoint=checkpoint, threshold=2.0), "--threshold 2.0"),
                                   ((a,), dict(checkpoint=checkpoint, spacing=0.0), "--spacing 0.0"),
                                   ((), dict(checkpoint=checkpoint), "no input")]:
        status, _, err = predict_in_process(capsys, *inputs, out=out, **options)
        assert status == 1 and err.strip().splitlines() == [err.strip()] and words in err, (options, err)
    assert not out.exists()

def test_a_missing_file_and_an_empty_folder_are_counted(checkpoint, tmp_path, capsys):
    Image.fromarray(np.array(synthetic_pair(3, 64)[0])).save(tmp_path/"a.png")
    (tmp_path/"empty").mkdir()
    status, out, err = predict_in_process(capsys, tmp_path/"a.png", tmp_path/"nothing.png", tmp_path/"empty", checkpoint=checkpoint, out=tmp_path/"out")
    assert status == 1 and "1 succeeded, 2 failed" in out
    assert "nothing.png: image file missing" in err and f"{tmp_path/'empty'}: no png/" in err and len(err.strip().splitlines()) == 2

def test_tta_spacing_and_threshold(checkpoint, tmp_path):
    "--tta is the mean of the network's probabilities on the image and on its mirror (same z-scores), mirrored back; --spacing scales lesion areas by s^2."
    rgb = np.array(synthetic_pair(4, (80, 100))[0])
    net = Predictor.from_checkpoint(checkpoint, device="cpu")
    x = preprocess(rgb, net.img_size, net.scaler)
    with torch.no_grad(): both = torch.sigmoid(net.model(x.image, x.radiomics)) + torch.sigmoid(net.model(x.image.flip(-1), x.radiomics)).flip(-1)
    expected = upsample_probs((both / 2)[0, 0].numpy(), rgb.shape[:2])
    np.testing.assert_allclose(net.predict_proba(rgb, tta=True), expected, atol=1e-6)
    Image.fromarray(rgb).save(tmp_path/"a.png")
    threshold = float(np.median(expected))  # about half the pixels foreground, whatever the tiny model learnt
    _, px, _ = predict_files(net, [tmp_path/"a.png"], tmp_path/"px", threshold=threshold, tta=True, min_area=1)
    _, mm, _ = predict_files(net, [tmp_path/"a.png"], tmp_path/"mm", threshold=threshold, tta=True, min_area=1, spacing=0.5)
    assert len(px) > 0 and (mm.unit == "mm").all() and (px.unit == "px").all()
    np.testing.assert_allclose(mm.area, px.area * 0.25); np.testing.assert_allclose(mm.perimeter, px.perimeter * 0.5)
    assert px.area.sum() == pytest.approx(((expected > threshold).sum()), rel=0.02)  # lesions cover the mask (specks aside)

def test_onnx_parity_and_same_masks_on_real_images(checkpoint, data_dir, tmp_path):
    summary = export_onnx(checkpoint, tmp_path/"model.onnx", data_dir, n_images=2)
    assert summary["max_abs_diff"] <= 1e-4 and summary["not_checked"] == []
    assert sum(i.startswith("busi/") for i in summary["images"]) == 2 and sum(i.startswith("kvasir-seg/") for i in summary["images"]) == 2
    inputs = tmp_path/"real"; inputs.mkdir()
    for ds in DATASETS:
        for s in load_split(ds, "test", data_dir, subset=2): shutil.copy(s.image, inputs/s.image.name)
    for model, out in ((checkpoint, "torch"), (tmp_path/"model.onnx", "onnx")):
        res = run("radiomicnet-predict", "--checkpoint", model, inputs, "--out", tmp_path/out)
        assert res.returncode == 0 and "4 succeeded, 0 failed" in res.stdout, res.stderr
    for mask in (tmp_path/"torch").glob("*_mask.png"):
        a, b = np.asarray(Image.open(mask)), np.asarray(Image.open(tmp_path/"onnx"/mask.name))
        assert a.shape == read_image(inputs/next(p.name for p in inputs.iterdir() if p.stem == mask.name[:-9])).shape[:2]
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(read_prob_png(mask.with_name(mask.name.replace("_mask", "_prob"))),
                                   read_prob_png(tmp_path/"onnx"/mask.name.replace("_mask", "_prob")), atol=2 / 65535)
    t, o = pd.read_csv(tmp_path/"torch"/"report.csv"), pd.read_csv(tmp_path/"onnx"/"report.csv")
    pd.testing.assert_frame_equal(t.drop(columns="mean_probability"), o.drop(columns="mean_probability"))

def test_export_command(checkpoint, tmp_path):
    res = run("radiomicnet-export", "--checkpoint", checkpoint, "--out", tmp_path/"m.onnx", "--n-images", "1")
    assert res.returncode == 0 and (tmp_path/"m.onnx").is_file() and '"max_abs_diff"' in res.stdout, res.stderr
    res = run("radiomicnet-export", "--checkpoint", checkpoint, "--out", tmp_path/"never.onnx", "--n-images", "1", "--atol", "-1")
    assert res.returncode == 1 and "never.onnx: not written" in res.stderr and not (tmp_path/"never.onnx").exists()

@pytest.mark.parametrize("script", ["radiomicnet-predict", "radiomicnet-export"])
def test_help(script):
    res = run(script, "--help")
    assert res.returncode == 0 and "usage:" in res.stdout and "--checkpoint" in res.stdout

def write_trio(folder):
    "a/x.png, b/x.png and c/x_2.png: three different pictures whose names collide in a flat output folder."
    for i, rel in enumerate(("a/x.png", "b/x.png", "c/x_2.png")):
        (folder/rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.array(synthetic_pair(10 + i, (64 + 16 * i, 80))[0])).save(folder/rel)
    return [folder/"a"/"x.png", folder/"b"/"x.png", folder/"c"/"x_2.png"]

@pytest.mark.parametrize("given", ["files", "folder"])
def test_no_output_overwrites_another(checkpoint, tmp_path, given):
    "Each of the trio keeps its own mask, probability map, overlay and report row, whether the files or their folder are given."
    files = write_trio(tmp_path/"in")
    inputs = files if given == "files" else [tmp_path/"in"]
    res = run("radiomicnet-predict", "--checkpoint", checkpoint, *inputs, "--out", tmp_path/"out")
    assert res.returncode == 0 and "3 succeeded, 0 failed" in res.stdout, res.stderr
    report = pd.read_csv(tmp_path/"out"/"report.csv")
    expected = ["x", "x_3", "x_2"] if given == "files" else ["a/x", "b/x", "c/x_2"]
    assert report.mask_file.tolist() == [f"{s}_mask.png" for s in expected]
    assert len(set(report.image)) == 3 and len(list((tmp_path/"out").rglob("*.png"))) == 9
    net = Predictor.from_checkpoint(checkpoint, device="cpu")
    for image, mask_file, prob_file in zip(report.image, report.mask_file, report.prob_file):
        prob = net.predict_proba(read_image(image))
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path/"out"/mask_file)) > 0, prob > 0.5)
        np.testing.assert_allclose(read_prob_png(tmp_path/"out"/prob_file), prob, atol=1 / 65535)

def test_an_interrupted_run_keeps_the_rows_it_finished(checkpoint, tmp_path):
    files = write_trio(tmp_path/"in")
    net, calls = Predictor.from_checkpoint(checkpoint, device="cpu"), []
    class Interrupted:  # the predictor `net`, stopped (as by Ctrl-C) when the third image is being predicted
        def __getattr__(self, name): return getattr(net, name)
        def predict_batch(self, *args, **kwargs):
            calls.append(1)
            if len(calls) == 3: raise KeyboardInterrupt
            return net.predict_batch(*args, **kwargs)
    with pytest.raises(KeyboardInterrupt): predict_files(Interrupted(), files, tmp_path/"out")
    report = pd.read_csv(tmp_path/"out"/"report.csv")
    assert report.image.tolist() == [str(f) for f in files[:2]] and (tmp_path/"out"/"lesions.csv").is_file()
    assert not list((tmp_path/"out").glob(".*.tmp"))  # no half-written table left behind

def write_video(path, frames, rate=25, codec="png", pix_fmt="rgb24"):
    "A video of `frames` ((H,W,3) uint8): losslessly by default (PNG codec), so each decoded frame is the image itself."
    import av
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=rate); s.width, s.height, s.pix_fmt = frames[0].shape[1], frames[0].shape[0], pix_fmt
        for f in frames:
            for pkt in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")): c.mux(pkt)
        for pkt in s.encode(): c.mux(pkt)
    return path

@pytest.fixture(scope="module")
def kvasir_frames(data_dir):
    "Six Kvasir-SEG test images at one size (320x256), as a colonoscopy clip's frames."
    return [np.asarray(Image.fromarray(read_image(s.image)).resize((320, 256), Image.Resampling.BILINEAR))
            for s in load_split("kvasir-seg", "test", data_dir, subset=6)]

def decoded(path):
    "(frame count, (height, width) of every frame) of a video, decoded with PyAV."
    import av
    with av.open(str(path)) as c: shapes = [f.to_ndarray(format="rgb24").shape[:2] for f in c.decode(video=0)]
    return len(shapes), set(shapes)

def test_video_in_video_out(checkpoint, kvasir_frames, tmp_path):
    from radiomicnet.infer.video import frame_row
    clip = write_video(tmp_path/"clip.mov", kvasir_frames)
    res = run("radiomicnet-predict", "--checkpoint", checkpoint, clip, "--out", tmp_path/"out", "--batch", "4")
    assert res.returncode == 0 and "1 succeeded, 0 failed" in res.stdout, res.stderr
    assert decoded(tmp_path/"out"/"clip_overlay.mp4") == (6, {(256, 320)})         # the source's frame count and size
    frames = pd.read_csv(tmp_path/"out"/"clip_frames.csv")
    assert frames.frame.tolist() == list(range(6)) and np.allclose(frames.time_s, np.arange(6) / 25)
    net = Predictor.from_checkpoint(checkpoint, device="cpu")
    for k in (0, 3, 5):  # the frame's mask is the still image's: the same lesions, the same largest area
        still = frame_row(k, k / 25, net.predict_proba(kvasir_frames[k]))
        got = frames.iloc[k]
        assert (got.lesion_present, got.lesion_count, got.largest_area_px) == (still["lesion_present"], still["lesion_count"], still["largest_area_px"])
        assert np.isclose(got.mean_confidence, still["mean_confidence"], atol=1e-6, equal_nan=True)
    report = pd.read_csv(tmp_path/"out"/"report.csv")
    assert report.n_frames.tolist() == [6] and report.overlay_file.tolist() == ["clip_overlay.mp4"]

def test_every_nth_frame_and_the_fast_path(checkpoint, kvasir_frames, tmp_path):
    clip = write_video(tmp_path/"clip.mp4", kvasir_frames * 2, codec="libx264", pix_fmt="yuv420p")
    res = run("radiomicnet-predict", "--fast", "--checkpoint", checkpoint, clip, "--out", tmp_path/"out", "--every", "3")
    assert res.returncode == 0, res.stderr
    assert pd.read_csv(tmp_path/"out"/"clip_frames.csv").frame.tolist() == [0, 3, 6, 9]
    assert decoded(tmp_path/"out"/"clip_overlay.mp4") == (4, {(256, 320)})
    assert len(list(Path(checkpoint).parent.glob("best.int8-*.onnx"))) == 1      # cached beside the checkpoint for the next call

def test_a_truncated_video_keeps_the_frames_that_decode(checkpoint, kvasir_frames, tmp_path):
    whole = write_video(tmp_path/"whole.avi", kvasir_frames, codec="mjpeg", pix_fmt="yuvj420p")
    data = whole.read_bytes()
    (tmp_path/"cut.avi").write_bytes(data[:int(len(data) * 0.6)])
    res = run("radiomicnet-predict", "--checkpoint", checkpoint, tmp_path/"cut.avi", "--out", tmp_path/"out")
    errors = [l for l in res.stderr.splitlines() if l.startswith("error:")]
    assert res.returncode == 1 and len(errors) == 1 and "Traceback" not in res.stderr, res.stderr
    kept = len(pd.read_csv(tmp_path/"out"/"cut_frames.csv"))
    assert 0 < kept < 6 and f"cut.avi: decoding stopped at frame {kept}" in errors[0], errors
    assert decoded(tmp_path/"out"/"cut_overlay.mp4")[0] == kept
    (tmp_path/"junk.mp4").write_bytes(b"\x00" * 1000)
    res = run("radiomicnet-predict", "--checkpoint", checkpoint, tmp_path/"junk.mp4", "--out", tmp_path/"out2")
    assert res.returncode == 1 and res.stderr.strip().startswith(f"error: {tmp_path/'junk.mp4'}: unreadable video"), res.stderr
