"""The local web app (`radiomicnet-app`, notebook 26): started as a command on a free port, driven in headless Debian
Chromium as a user drives it, and called through gradio_client; bad input of every kind, and the server keeps serving.

With RADIOMICNET_SCREENSHOTS=1 the browser test also saves the documentation's screenshots to nbs/images/app-*.png."""
import json, os, re, shutil, signal, socket, subprocess, sys, tempfile, time, urllib.request
from pathlib import Path
import numpy as np, pandas as pd, pytest
from PIL import Image

pytest.importorskip("gradio", reason="the app extra is not installed: pip install -e '.[app]'")
from radiomicnet.app import AppResult, ModelCache, segment_request
from conftest import headless_chromium

REPO = Path(__file__).resolve().parent.parent
MAX_MB = 5  # the test server's upload limit: small, so that a file over it is quick to make
SHOTS = REPO/"nbs"/"images"

def predict_reads_dicom()->bool:
    "Whether `radiomicnet.infer.video.predict_files` routes DICOM files (the app shows whatever it writes)."
    import radiomicnet.infer.video
    return "is_dicom" in Path(radiomicnet.infer.video.__file__).read_text()

NO_DICOM = "radiomicnet.infer.video.predict_files does not route DICOM yet: the app's DICOM input arrives with it"

# --- inputs -----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def busi_images(data_dir):
    "Two BUSI test images (a benign and a malignant one, from the committed split)."
    from radiomicnet.data.datasets import load_split
    samples = load_split("busi", "test", data_dir)
    return [next(s.image for s in samples if c in str(s.image)) for c in ("benign", "malignant")]

@pytest.fixture(scope="module")
def kvasir_frames(data_dir):
    "Four Kvasir-SEG test images at one size (320x256): a cine loop's frames."
    from radiomicnet.data.datasets import load_split
    from radiomicnet.data.images import read_image
    return [np.asarray(Image.fromarray(read_image(s.image)).resize((320, 256), Image.Resampling.BILINEAR))
            for s in load_split("kvasir-seg", "test", data_dir, subset=4)]

def corrupt_png(folder:Path)->Path:
    "A file that says PNG and is not one."
    (path := folder/"corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    return path

def broken_video(folder:Path, frames:list)->Path:
    "An MJPEG AVI of the frames, cut at 60%: the first frames decode, then it breaks."
    import av
    whole = folder/"whole.avi"
    with av.open(str(whole), "w") as c:
        s = c.add_stream("mjpeg", rate=5); s.width, s.height, s.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuvj420p"
        for f in frames:
            for pkt in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")): c.mux(pkt)
        for pkt in s.encode(): c.mux(pkt)
    (cut := folder/"cut.avi").write_bytes(whole.read_bytes()[:int(whole.stat().st_size * 0.6)])
    return cut

# --- without a server: direct calls ------------------------------------------------------------------------------

def test_bad_input_by_direct_calls(tmp_path, busi_images, kvasir_frames):
    "A wrong type, an oversized file, a corrupt image and a video that breaks midway: one line each, the rest segmented."
    cache, notes, big = ModelCache(), tmp_path/"notes.txt", tmp_path/"big.png"
    notes.write_text("not an image"); big.write_bytes(b"\0" * (2 * 2**20))
    cut = broken_video(tmp_path, kvasir_frames * 2)
    res = segment_request([busi_images[0], notes, big, corrupt_png(tmp_path), cut], "busi", False, None, tmp_path/"req", cache, max_mb=1)
    lines = res.status.splitlines()
    assert lines[0].startswith("Segmented 2 file(s) with **busi** (torch)"), res.status   # the image, and the video up to its break
    problems = [l.removeprefix("- ⚠ ") for l in lines if l.startswith("- ⚠ ")]
    assert [p.split(":")[0] for p in problems] == ["notes.txt", "big.png", "corrupt.png", "cut.avi"], problems
    assert "over this app's limit of 1 MB" in problems[1] and "decoding stopped at frame" in problems[3], problems
    assert not any(str(tmp_path) in p for p in problems), problems          # file names, never the temporary paths
    assert res.video and Path(res.video).name == "cut_overlay.mp4" and len(res.overlays) == 1 and len(res.attention) == 4
    assert {"cut_frames.csv", "failed.csv"} <= {Path(f).name for f in res.downloads}
    kept = len(pd.read_csv(tmp_path/"req"/"outputs"/"cut_frames.csv"))
    assert 0 < kept < 8 and f"{kept} frames at 5 frames/s" in res.status, res.status

def test_start_up_errors_are_one_line(tmp_path):
    "A model that does not exist, or a port that is taken: one line on stderr, exit status 1, and no temporary folder left."
    exe = shutil.which("radiomicnet-app")
    if exe is None: pytest.skip("radiomicnet-app is not installed: pip install -e '.[app]'")
    env = dict(os.environ, TMPDIR=str(tmp_path), OMP_NUM_THREADS="1")
    run = lambda *a: subprocess.run([exe, *a], capture_output=True, text=True, env=env, timeout=120)
    res = run("--model", "no-such-model")
    assert (res.returncode, res.stderr.count("\n")) == (1, 1) and res.stderr.startswith("error: no-such-model: no such model"), res.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0)); taken.listen()
        res = run("--port", str(taken.getsockname()[1]))
    assert res.returncode == 1 and res.stderr.endswith("cannot serve there (the port is taken, or the address is not this machine's): "
                                                      "choose another --port or --host\n"), res.stderr
    assert not list(tmp_path.glob("radiomicnet-app-*")), "the temporary folder was left behind"

@pytest.mark.skipif(not predict_reads_dicom(), reason=NO_DICOM)
def test_a_dicom_image_is_measured_in_mm(tmp_path, busi_images):
    "A BUSI image as single-frame ultrasound DICOM with its spacing in an ultrasound region: lesions in mm², the source named, a SEG to download."
    from radiomicnet.data.dicom import write_test_dicom
    from radiomicnet.data.images import read_image
    dcm = write_test_dicom(tmp_path/"IM0001", read_image(busi_images[0]), spacing_mm=0.08, ultrasound_regions=True)  # no suffix, as PACS exports
    res = segment_request([dcm], "busi", False, None, tmp_path/"req", ModelCache())
    assert res.status.startswith("Segmented 1 file(s)") and len(res.lesions) and set(res.lesions.unit) == {"mm"}, res
    assert res.units.startswith("- IM0001: lengths in mm, areas in mm² (pixel side 0.08 mm; mm from the ultrasound region"), res.units
    assert {"IM0001_seg.dcm", "IM0001_mask.png"} <= {Path(f).name for f in res.downloads}

# --- the server ----------------------------------------------------------------------------------------------------

def free_port()->int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]

@pytest.fixture(scope="module")
def server(data_dir, tmp_path_factory):
    "`radiomicnet-app` on a free port, in its own process, answering; stopped with SIGTERM at the end (and checked to clean up)."
    exe = shutil.which("radiomicnet-app")
    if exe is None: pytest.skip("radiomicnet-app is not installed: pip install -e '.[app]'")
    port, log = free_port(), tmp_path_factory.mktemp("server")/"server.log"
    gradio_default = Path(tempfile.gettempdir())/"gradio"
    before = set(gradio_default.rglob("*")) if gradio_default.is_dir() else set()
    env = dict(os.environ, RADIOMICNET_DATA=str(data_dir), OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    with open(log, "w") as out:
        proc = subprocess.Popen([exe, "--port", str(port), "--max-mb", str(MAX_MB)], stdout=out, stderr=subprocess.STDOUT, env=env)
    url, start = f"http://127.0.0.1:{port}/", time.perf_counter()
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200: break
        except OSError: pass
        if proc.poll() is not None or time.perf_counter() - start > 120:
            proc.kill(); pytest.fail(f"radiomicnet-app did not answer on {url}:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)
    root = Path(re.search(r"temporary files in (\S+)", log.read_text())[1])
    assert root.is_dir() and str(root).startswith(tempfile.gettempdir())
    yield url
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0, log.read_text()[-3000:]
    assert not root.exists(), f"{root}: the app's temporary folder was left behind"
    after = set(gradio_default.rglob("*")) if gradio_default.is_dir() else set()
    assert after <= before, f"gradio wrote outside the app's temporary folder: {sorted(after - before)[:5]}"

def test_bad_input_through_gradio_client(server, tmp_path, busi_images):
    "The page's API, as gradio_client calls it: a corrupt file and a wrong type are lines in the status, an upload over the limit is refused, and the server goes on."
    from gradio_client import Client, handle_file
    client = Client(server, verbose=False, download_files=False)   # downloading would write to the client's own temporary folder
    segment = lambda *files: client.predict([handle_file(str(f)) for f in files], "busi", "", False, 0, api_name="/segment")
    notes = tmp_path/"notes.txt"; notes.write_text("not an image")
    status = segment(corrupt_png(tmp_path), notes)[0]
    assert status.startswith("**Nothing was segmented.**") and "- ⚠ corrupt.png: unreadable" in status and "- ⚠ notes.txt: not an image" in status, status
    big = tmp_path/"big.png"; big.write_bytes(b"\0" * ((MAX_MB + 1) * 2**20))
    with pytest.raises(Exception, match="(?i)size|large|exceed"): segment(big)
    out = segment(busi_images[1])
    assert out[0].startswith("Segmented 1 file(s) with **busi** (torch)") and len(out[1]["value"]) == 1 and len(out[4]) == 4, out[0]
    stem = Path(busi_images[1]).stem
    assert sorted(Path(f["path"]).name for f in out[9]) == ["lesions.csv", *(f"{stem}_{k}.png" for k in ("mask", "overlay", "prob")), "report.csv"], out[9]

# --- the browser --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    "Headless Debian Chromium driven by selenium, recording every request the page makes."
    with headless_chromium(["--window-size=1280,1000"], logs=("browser", "performance")) as driver: yield driver

class Page:
    "The app's page in the browser: upload files, set the model folder, wait for what it shows."
    def __init__(self, driver, url): self.d = driver; driver.get(url); self.wait(lambda: self.d.find_elements("css selector", "#uploads input[type=file]"))

    def wait(self, ready, timeout:float=90, what:str="the page"):
        start = time.perf_counter()
        while time.perf_counter() - start < timeout:
            if result := ready(): return result
            time.sleep(0.3)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}; status: {self.text('#status')!r}")

    def text(self, css:str)->str:
        found = self.d.find_elements("css selector", css)
        return found[0].text if found else ""

    def count(self, css:str)->int: return len(self.d.find_elements("css selector", css))

    WATCH_JS = """const el = document.querySelector('#status'); window.statusChanges = 0; if (window.statusWatch) window.statusWatch.disconnect();
        window.statusWatch = new MutationObserver(() => window.statusChanges++);
        window.statusWatch.observe(el, {subtree: true, childList: true, characterData: true, attributes: true});"""
    IDLE_JS = "return window.statusChanges > 0 && document.querySelector('#status [data-testid=status-tracker]').classList.contains('hide');"

    def result(self)->str:
        "The status once the request started after `WATCH_JS` has finished: it starts with 'Segmented', 'Nothing' or 'Error'."
        done = re.compile(r"^(Segmented \d+ file|Nothing was segmented|Error:)")
        return self.wait(lambda: self.d.execute_script(self.IDLE_JS) and done.match(s := self.text("#status")) and s, what="a result")

    def upload(self, *paths, wait:bool=True):
        "Clear the upload box, then choose the files (which runs the prediction); the status once it has finished."
        for b in self.d.find_elements("css selector", "#uploads button[aria-label=Clear]"): b.click()
        self.wait(lambda: self.count("#uploads .file-preview") == 0, 10, "the upload box to clear")
        self.d.execute_script(self.WATCH_JS)
        self.d.find_element("css selector", "#uploads input[type=file]").send_keys("\n".join(map(str, paths)))
        return self.result() if wait else None

    def set_folder(self, folder:str):
        box = self.d.find_element("css selector", "#model-folder textarea, #model-folder input")
        box.clear(); box.send_keys(folder)

    def segment(self)->str:
        "Click Segment; the status once the request has finished."
        self.d.execute_script(self.WATCH_JS)
        self.d.find_element("css selector", "#run").click()
        return self.result()

    def downloads(self)->str: return self.text("#downloads").replace("\n", "")   # 'report.csv902.0 B ⇣...': name, size, link

    def hosts(self)->set:
        "Every host the page sent an http(s) or websocket request to, from Chromium's performance log."
        urls = [m["params"]["request"]["url"] for e in self.d.get_log("performance")
                if (m := json.loads(e["message"])["message"])["method"] == "Network.requestWillBeSent"]
        urls += self.d.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        return {u.split("/")[2].rsplit(":", 1)[0] for u in urls if re.match(r"(https?|wss?)://", u)}

def screenshot(driver, name:str):
    "Save the page as nbs/images/app-<name>.png, at most 1000 px wide in a 256-colour palette (under ~150 KB), when RADIOMICNET_SCREENSHOTS=1."
    if os.environ.get("RADIOMICNET_SCREENSHOTS") != "1": return
    SHOTS.mkdir(exist_ok=True)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, min(max(height, 800), 1400))
    time.sleep(0.5)
    png = tempfile.mktemp(suffix=".png"); driver.save_screenshot(png)
    im = Image.open(png).convert("RGB"); os.unlink(png)
    im = im.resize((1000, round(im.height * 1000 / im.width)), Image.Resampling.LANCZOS)
    im.quantize(256).save(SHOTS/f"app-{name}.png", optimize=True)
    driver.set_window_size(1280, 1000)
    assert (SHOTS/f"app-{name}.png").stat().st_size < 200_000

def test_the_page_in_chromium(server, browser, busi_images, kvasir_frames, tmp_path):
    page = Page(browser, server)
    assert browser.title == "RadiomicNet"
    # A BUSI test image: the overlay, the probability map, four attention levels, a lesion row in pixels, the downloads
    status = page.upload(busi_images[0])
    assert status.startswith("Segmented 1 file(s) with busi (torch)"), status
    page.wait(lambda: page.count("#overlays img") == 1 and page.count("#probs img") == 1 and page.count("#attention img") == 4, what="the pictures")
    table = page.wait(lambda: Path(busi_images[0]).name in (t := page.text("#lesions")) and t, 30, "a lesion row")
    row = table.splitlines()[table.splitlines().index(Path(busi_images[0]).name):]
    assert row[1:3] == ["1", "px"] and float(row[3]) > 0, row   # lesion 1, measured in pixels, its area
    assert "lengths and areas in pixels" in page.text("#units")
    assert all(f in page.downloads() for f in ("report.csv", "lesions.csv", f"{Path(busi_images[0]).stem}_mask.png")), page.downloads()
    assert not page.count("#diagnosis") or not browser.find_element("css selector", "#diagnosis").is_displayed()
    screenshot(browser, "busi")
    # A corrupt file: one line in the status; the server goes on and the next image gets a result
    status = page.upload(corrupt_png(tmp_path))
    assert status.startswith("Nothing was segmented.") and "corrupt.png: unreadable" in status, status
    assert page.count("#overlays img") == 0
    status = page.upload(busi_images[1])
    assert status.startswith("Segmented 1 file(s)"), status
    page.wait(lambda: page.count("#overlays img") == 1, what="the overlay")
    # The diagnosis model, as a model folder typed in: the three class probabilities
    page.set_folder(str(REPO/"models"/"busi-diagnosis"))
    status = page.segment()
    assert status.startswith("Segmented 1 file(s) with busi-diagnosis (torch)"), status
    label = page.wait(lambda: page.text("#diagnosis"), what="the class probabilities")
    assert all(c in label for c in ("normal", "benign", "malignant")), label
    screenshot(browser, "diagnosis")
    # An upload over the limit: gradio refuses it before it reaches the app, with a message in the page
    big = tmp_path/"big.png"; big.write_bytes(b"\0" * ((MAX_MB + 1) * 2**20))
    page.upload(big, wait=False)
    toast = page.wait(lambda: " ".join(e.text for e in browser.find_elements("css selector", ".toast-body, [data-testid=toast-body]")), 30, "the size message")
    assert "exceed the maximum allowed size" in toast and "big.png" in toast, toast
    # Offline: the page asked nothing of any host but the app's
    assert page.hosts() <= {"127.0.0.1", "localhost"}, page.hosts()
    severe = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE" and "413" not in e["message"]]
    assert not severe, severe

@pytest.mark.skipif(not predict_reads_dicom(), reason=NO_DICOM)
def test_a_dicom_cine_loop_in_chromium(server, browser, kvasir_frames, tmp_path):
    "A generated multi-frame DICOM (Kvasir-SEG frames, 0.2 mm pixels) with the kvasir-seg model: the overlay video, frames.csv and the SEG."
    from radiomicnet.data.dicom import write_test_dicom
    dcm = write_test_dicom(tmp_path/"loop.dcm", kvasir_frames, spacing_mm=0.2, rate=5)
    page = Page(browser, server)
    page.set_folder(str(REPO/"models"/"kvasir-seg"))
    status = page.upload(dcm)
    assert status.startswith("Segmented 1 file(s) with kvasir-seg (torch)"), status
    assert "loop.dcm: 4 frames at 5 frames/s" in status and "areas in mm² (mm from PixelSpacing)" in status, status
    page.wait(lambda: page.count("#video video"), what="the overlay video")
    assert all(f in page.downloads() for f in ("loop_frames.csv", "loop_overlay.mp4", "loop_seg.dcm", "report.csv")), page.downloads()
    screenshot(browser, "dicom")
