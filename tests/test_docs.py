"""The documentation site: built from the real notebooks plus a small results folder, then every page
opened in headless Debian Chromium (served over http on 127.0.0.1)."""
import functools, http.server, shutil, subprocess, sys, tempfile, threading, time, urllib.request
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlparse, unquote
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt, nbformat, numpy as np, pandas as pd, pytest, yaml
from radiomicnet.core import RadiomicNetError
from radiomicnet.docs.site import build_site, mathjax_dir, page_name, sidebar_sections
from conftest import headless_chromium

REPO = Path(__file__).resolve().parent.parent
NBS = REPO/"nbs"
TABLE_VALUES = {"model": ["radiomicnet-demo", "unet-demo"], "dice": [0.812, 0.779], "iou": [0.701, 0.654]}

def copy_nbs(dst:Path, keep=None)->Path:
    "Copy nbs/ to `dst` with a sidebar.yml listing only the notebooks that exist (or only those in `keep`)."
    shutil.copytree(NBS, dst, ignore=shutil.ignore_patterns("_cleancheck_*", ".ipynb_checkpoints"))
    cfg = yaml.safe_load((dst/"sidebar.yml").read_text())
    wanted = lambda p: (dst/p).exists() and (keep is None or p in keep)
    contents = []
    for entry in cfg["website"]["sidebar"]["contents"]:
        if isinstance(entry, str) and wanted(entry): contents.append(entry)
        elif isinstance(entry, dict) and (kept := [p for p in entry["contents"] if wanted(p)]):
            contents.append(dict(entry, contents=kept))
    cfg["website"]["sidebar"]["contents"] = contents
    (dst/"sidebar.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return dst

def fake_results(root:Path, dataset:str="synthetic")->Path:
    "A results folder as `radiomicnet-paper` writes it: one table, one figure (matplotlib) and one executed notebook."
    run = root/dataset
    for kind in ("tables", "figures", "notebooks"): (run/kind).mkdir(parents=True)
    pd.DataFrame(TABLE_VALUES).to_csv(run/"tables"/"comparison.csv", index=False)
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot(np.linspace(0, 1, 20) ** 0.5)
    fig.tight_layout()
    fig.savefig(run/"figures"/"dice_curve.png", dpi=150)
    plt.close(fig)
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Evaluation\n> An executed run."),
        nbformat.v4.new_markdown_cell("The gate: $$g = \\sigma(\\gamma)$$"),
        nbformat.v4.new_code_cell("#| default_exp eval.evaluate"),
        nbformat.v4.new_code_cell('#| export\ndef demo_metric(x):\n    "A made-up metric."\n    return x'),
        nbformat.v4.new_code_cell("1 + 1", execution_count=1, outputs=[
            nbformat.v4.new_output("execute_result", {"text/plain": "2"}, execution_count=1)]),
        # A record of a run: building the docs must not execute it again.
        nbformat.v4.new_code_cell(f"import pathlib\npathlib.Path({str(run/'rerun-marker')!r}).write_text('ran')", execution_count=2)])
    nb.metadata = {"kernelspec": {"display_name": "python3", "language": "python", "name": "python3"},
                   "language_info": {"name": "python"}}
    nbformat.write(nb, run/"notebooks"/"16_evaluation.ipynb")
    return run

def fake_budget_results(root:Path)->Path:
    "results/busi/cpu/ and long/ as `radiomicnet-paper` writes them: one run each (made-up metrics) and Tables I-IV built from it."
    from radiomicnet.study import tables
    for protocol in ("long", "cpu"):
        folder = root/"busi"/protocol
        run = folder/"runs"/"radiomicnet-full-s0"; run.mkdir(parents=True)
        pd.DataFrame(dict(image_id=["a", "b"], dsc=[0.7, 0.8], iou=[0.6, 0.7])).to_csv(run/"per_image.csv", index=False)
        (run/"metrics.json").write_text('{"dsc_mean": 0.75, "dsc_std": 0.07, "iou_mean": 0.65, "iou_std": 0.07, "ece": 0.1}')
        (run/"summary.json").write_text(f'{{"protocol": "{protocol}", "epochs_run": 30, "train_seconds_total": 900, "weights": "from scratch", '
                                        f'"device_name": "CPU (demo)", "config": {{"protocol": "{protocol}", "img_size": 128, "schedule": "one_cycle", '
                                        '"lr": 0.002, "epochs": 30, "bs": 8, "seed": 0}}')
        tables.build_results(folder, "busi")
    return folder

@pytest.fixture(scope="module")
def site(tmp_path_factory):
    "The real notebooks (those that exist) plus a fake synthetic results folder, built once for this module."
    root = tmp_path_factory.mktemp("docs")
    nbs = copy_nbs(root/"nbs")
    fake_results(root/"results")
    fake_budget_results(root/"results")
    start = time.perf_counter()
    pages = build_site(root/"_site", nbs, root/"results")
    return SimpleNamespace(out=root/"_site", nbs=nbs, results=root/"results", pages=pages, build_s=time.perf_counter() - start)

def test_one_page_per_sidebar_entry_plus_results(site):
    expected = [page_name(p) for _, ps in sidebar_sections(site.nbs) for p in ps]
    expected += ["results-busi.html", "results-synthetic.html", "results-synthetic-16_evaluation.html"]
    assert [p.name for p in site.pages] == expected
    assert sorted(p.name for p in site.out.glob("*.html")) == sorted(expected)
    for f in ["figures/dice_curve.png", "tables/comparison.csv"]: assert (site.out/"results"/"synthetic"/f).is_file()
    assert not (site.results/"synthetic"/"rerun-marker").exists(), "an executed notebook was run again"
    index = (site.out/"index.html").read_text(encoding="utf-8")
    assert '<h4>Results</h4>\n<a href="results-busi.html">BUSI</a>\n<a href="results-synthetic.html">Synthetic</a>' in index
    assert (site.out/"results"/"busi"/"cpu"/"tables"/"table1_2_methods.csv").is_file()
    # the front page's markers are filled from the site's results, and its links into the published site stay in this one
    assert "<!-- measured results" not in index and "<!-- gates verdict" not in index and "Paper: RadiomicNet DSC" in index
    assert 'href="use.html"' in index and 'href="results-busi.html"' in index and "results-kvasir-seg.html" not in index

def test_missing_results_give_no_results_pages(tmp_path):
    nbs = copy_nbs(tmp_path/"nbs", keep={"index.ipynb"})
    pages = build_site(tmp_path/"_site", nbs, tmp_path/"no-such-results")
    assert [p.name for p in pages] == ["index.html"]
    assert "Results" not in (tmp_path/"_site"/"index.html").read_text(encoding="utf-8")
    # Datasets without a folder have no page; those present come busi, kvasir-seg, synthetic, then others.
    for d in ["zoo", "synthetic", "busi"]: (tmp_path/"results"/d).mkdir(parents=True)
    pages = build_site(tmp_path/"_site", nbs)
    assert [p.name for p in pages] == ["index.html", "results-busi.html", "results-synthetic.html", "results-zoo.html"]
    assert "No tables, figures or executed notebooks" in (tmp_path/"_site"/"results-busi.html").read_text(encoding="utf-8")

@pytest.mark.parametrize("content", [b"", b"model,dice\n", b"model,dice\na,0.5\nb,0.6,7,8\n", b"\x89PNG\r\n\x1a\n\xff\xfe\x00"],
                         ids=["empty", "header-only", "ragged", "binary"])
def test_bad_table_names_the_file(tmp_path, content):
    nbs = copy_nbs(tmp_path/"nbs", keep={"index.ipynb"})
    build_site(tmp_path/"_site", nbs, tmp_path/"no-such-results")
    bad = fake_results(tmp_path/"results")/"tables"/"broken.csv"
    bad.write_bytes(content)
    with pytest.raises(RadiomicNetError, match="broken.csv: "): build_site(tmp_path/"_site", nbs)
    assert (tmp_path/"_site"/"index.html").exists(), "a failed build must leave the previous site in place"

def test_cli_results_flag(tmp_path):
    from radiomicnet.cli import radiomicnet_docs
    nbs = copy_nbs(tmp_path/"nbs", keep={"index.ipynb"})
    fake_results(tmp_path/"elsewhere")
    radiomicnet_docs(nbs=str(nbs), out=str(tmp_path/"_site"), results_root=str(tmp_path/"elsewhere"))
    assert (tmp_path/"_site"/"results-synthetic.html").exists() and (tmp_path/"README.md").exists()
    # From the command line: `--results-root` is read, and a broken table is one line on stderr and exit status 1.
    bad = tmp_path/"elsewhere"/"synthetic"/"tables"/"comparison.csv"
    bad.write_text("")
    script = tmp_path/"docs_cli.py"
    script.write_text("from radiomicnet.cli import radiomicnet_docs\nradiomicnet_docs()\n")
    cmd = [sys.executable, str(script), "--nbs", str(nbs), "--out", str(tmp_path/"_site"), "--results-root", str(tmp_path/"elsewhere")]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith(f"error: {bad}: ") and done.stderr.count("\n") == 1, done.stderr

# --- the browser test ---------------------------------------------------------------------------

class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args): pass

class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        "Requests the browser drops when it leaves a page are not errors of the site."
        if not isinstance(sys.exc_info()[1], ConnectionError): super().handle_error(request, client_address)

@pytest.fixture(scope="module")
def served(site):
    "The built site served over http on 127.0.0.1 (a free port) from a thread."
    server = _QuietServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(site.out)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()

@pytest.fixture(scope="module")
def browser():
    "Headless Debian Chromium driven by selenium through Debian's chromedriver."
    with headless_chromium() as driver:
        driver.set_script_timeout(60)
        yield driver

BROKEN_IMAGES_JS = "return [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src.slice(0, 100));"
LINKS_JS = "return [...document.querySelectorAll(arguments[0])].map(a => a.href);"
MATH_JS = """const done = arguments[arguments.length - 1];
const ready = window.MathJax && MathJax.startup && MathJax.startup.promise ? MathJax.startup.promise : Promise.resolve();
ready.then(() => document.fonts.ready).then(() => done({
  rendered: document.querySelectorAll('mjx-container').length,
  errors: [...document.querySelectorAll('mjx-merror')].map(e => e.getAttribute('data-mjx-error') || e.textContent).concat(
          [...document.querySelectorAll('mtext[mathcolor="red"]')].map(e => 'undefined macro ' + e.textContent))}));"""

def _local_page(url:str, base:str, out:Path)->Path|None:
    "The file in the site that a same-site URL points at (None for other sites and in-page anchors)."
    if not url.startswith(base): return None
    return out/unquote(urlparse(url).path).lstrip("/")

def test_every_page_in_chromium(site, served, browser):
    start, local_mathjax = time.perf_counter(), mathjax_dir() is not None
    pages = sorted(p.name for p in site.out.glob("*.html"))
    sidebar_links, problems, rendered = set(), [], {}
    for name in pages:
        browser.get(served + name)
        title = browser.title
        if not title.endswith(" – radiomicnet") or not browser.find_elements("css selector", "main#content h1.title"):
            problems.append(f"{name}: not our page (title {title!r})")
        if broken := browser.execute_script(BROKEN_IMAGES_JS): problems.append(f"{name}: images not loaded: {broken}")
        nav = browser.execute_script(LINKS_JS, "#sidebar a")
        sidebar_links.update(nav)
        if served + "results-synthetic.html" not in nav: problems.append(f"{name}: sidebar lacks the Results section")
        for url in browser.execute_script(LINKS_JS, "#content a[href]"):
            target = _local_page(url.split("#")[0], served, site.out)
            if target is not None and target != site.out/"" and not target.is_file(): problems.append(f"{name}: dead link {url}")
        if local_mathjax:
            math = browser.execute_async_script(MATH_JS)
            rendered[name] = math["rendered"]
            if math["errors"]: problems.append(f"{name}: TeX errors {math['errors']}")
        severe = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        if not local_mathjax: severe = [m for m in severe if "cdn.jsdelivr.net" not in m]
        if severe: problems.append(f"{name}: browser errors {severe}")
    for url in sorted(sidebar_links):
        target = _local_page(url, served, site.out)
        if target is None or target.name not in pages: problems.append(f"sidebar link {url} is not a page of the site")
        else:
            with urllib.request.urlopen(url) as resp: assert resp.status == 200
    print(f"\nsite build {site.build_s:.1f} s; {len(pages)} pages opened in Chromium in {time.perf_counter() - start:.1f} s")
    assert not problems, "\n".join(problems)
    if local_mathjax:
        assert rendered["results-synthetic-16_evaluation.html"] >= 1 and rendered["site.html"] >= 1, rendered

    browser.get(served + "results-synthetic.html")
    cells = browser.execute_script("return [...document.querySelectorAll('table.results-table td')].map(td => td.textContent);")
    for values in TABLE_VALUES.values(): assert {str(v) for v in values} <= set(cells)
    assert browser.find_element("css selector", "h3#comparison").text == "Comparison"
    fig = browser.find_element("css selector", "figure img")
    assert fig.get_attribute("src") == served + "results/synthetic/figures/dice_curve.png"
    assert fig.get_attribute("alt") and browser.execute_script("return arguments[0].naturalWidth;", fig) == 450
    assert browser.find_element("link text", "16_evaluation.ipynb").get_attribute("href") == served + "results-synthetic-16_evaluation.html"

def test_results_tables_are_readable_in_chromium(site, served, browser):
    "The paper's titles, readable headers, 3 decimals, '–' for missing values, and wide tables scrolling inside their box."
    browser.set_window_size(1000, 800)
    browser.get(served + "results-busi.html")
    titles = [h.text for h in browser.find_elements("css selector", "h3")]
    assert "Table I. Segmentation on BUSI: methods, on the deduplicated and the full test split" in titles and any(t.startswith("Table III.") for t in titles), titles
    assert browser.find_element("css selector", "h2").text == "Headline"                          # the page opens with long on test_dedup
    assert "DSC, test_dedup" in browser.find_element("css selector", "h2 ~ table").text
    captions = [p.text for p in browser.find_elements("css selector", "p.caption")]
    assert any("Protocol cpu: from scratch, 128 px, one_cycle schedule" in c for c in captions), captions
    table = browser.find_element("css selector", "#cpu-table1_2_methods ~ div.table-wrap table")
    heads = [th.text for th in table.find_elements("css selector", "th")]
    assert heads[0] == "Method" and {"Seeds", "Params (M)"} <= set(heads) and "Paper: DSC" in heads and "DSC, test_dedup" in heads \
        and not any("_" in h.replace("test_dedup", "") for h in heads), heads   # readable headers; test_dedup is the test set's name
    cells = [td.text for td in table.find_elements("css selector", "td")]
    assert "0.750" in cells and "–" in cells and not any(c in ("nan", "NaN") for c in cells), cells
    assert all(len(c.split(".")[-1].split(" ")[0]) == 3 for c in cells if c.replace(".", "").replace(" ± ", "").isdigit() and "." in c)
    geometry = browser.execute_script("""const w = arguments[0].closest('.table-wrap'), main = document.querySelector('main#content');
        return {overflow: getComputedStyle(w).overflowX, box: w.getBoundingClientRect().right, text: main.getBoundingClientRect().right,
                scroll: w.scrollWidth, client: w.clientWidth, page: document.documentElement.scrollWidth, view: window.innerWidth};""", table)
    assert geometry["overflow"] == "auto" and geometry["box"] <= geometry["text"] + 1, geometry     # the box stays in the text column
    assert geometry["scroll"] > geometry["client"], geometry                                        # the wide table scrolls inside it
    assert geometry["page"] <= geometry["view"], geometry                                           # and the page itself does not
