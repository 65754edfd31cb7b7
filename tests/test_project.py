"The notebook-first contract: README generated from the index notebook, clean notebooks, kept papermill tags."
import json, os, re, shutil, subprocess, sys
from pathlib import Path
import nbformat
import pytest
from radiomicnet.docs.readme import render_readme

REPO = Path(__file__).resolve().parent.parent
NBS = REPO/"nbs"

def test_readme_is_up_to_date():
    assert (REPO/"README.md").read_text(encoding="utf-8") == render_readme(NBS), \
        "README.md is stale: run `radiomicnet-docs --readme-only` and commit it"

def test_readme_states_the_two_commands():
    readme = (REPO/"README.md").read_text(encoding="utf-8")
    assert "```sh\npip install -e . && radiomicnet-run\n```" in readme and "```sh\nmake test\n```" in readme
    cli = "".join("".join(c.source) for c in nbformat.read(NBS/"34_cli.ipynb", as_version=4).cells if c.cell_type == "markdown")
    assert "pyproject.toml" in cli and "settings.ini" in cli, "the CLI reference's install section says where nbdev's configuration lives"

def test_readme_is_a_front_page():
    "Under 100 lines: what it is, the two commands, the data, one table of measured results, and links that each name a page of the site."
    from radiomicnet.docs.readme import results_page_name, site_url
    from radiomicnet.docs.site import diagnosis_folders, page_name, result_datasets, sidebar_sections
    readme = (REPO/"README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) < 100, f"README.md has {len(readme.splitlines())} lines: move the detail to a page of the site"
    heads = [l for l in readme.splitlines() if l.startswith("## ")]
    assert heads == ["## Two commands", "## Data", "## Measured: RadiomicNet with and without its gates", "## Read on"], heads
    assert sum(l.startswith("|---") for l in readme.splitlines()) == 1 and "| Paper: RadiomicNet DSC |" in readme and "| Protocol | Seeds |" in readme   # one table, the paper's columns labelled
    assert "**The radiomics gates " in readme and "data/README.md" in readme
    notebooks = [p for _, ps in sidebar_sections(NBS) for p in ps]
    pages = {page_name(p) for p in notebooks} | {results_page_name(d) for d in result_datasets(REPO/"results")}
    pages |= {results_page_name("diagnosis")} if diagnosis_folders(REPO/"results") else set()
    links = re.findall(r"\]\((" + re.escape(site_url("")) + r"[^)#]*)", readme)
    dead = [l for l in links if l.removeprefix(site_url("")) not in pages]
    assert not dead, f"README links to pages the site does not have: {dead}"
    linked = {l.removeprefix(site_url("")) for l in links}
    wanted = {"use": "27_use", "cli": "34_cli", "speed": "33_speed", "reproducing the paper": "28_"}
    for what, nb in wanted.items():
        assert any(page_name(p) in linked for p in notebooks if p.startswith(nb)), f"README lacks its link to {what} ({nb}*)"
    assert {results_page_name("busi"), results_page_name("kvasir-seg")} <= linked

def _clean_copy(path, tmp_path):
    "Run nbdev-clean on a copy of `path` inside the project (so it reads our [tool.nbdev]); return the cleaned JSON."
    dst = NBS/f"_cleancheck_{path.name}"
    shutil.copy(path, dst)
    try:
        subprocess.run(["nbdev-clean", "--fname", str(dst)], cwd=REPO, check=True, capture_output=True)
        return json.loads(dst.read_text())
    finally: dst.unlink(missing_ok=True)

@pytest.mark.parametrize("nb", sorted(p.name for p in NBS.glob("*.ipynb")))
def test_notebooks_are_clean(nb, tmp_path):
    path = NBS/nb
    assert _clean_copy(path, tmp_path) == json.loads(path.read_text()), f"{nb} is not clean: run `nbdev-clean --fname nbs/{nb}`"

def test_parameters_tag_survives_clean(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("epochs = 1", metadata={"tags": ["parameters"], "collapsed": True})]
    path = tmp_path/"params.ipynb"
    nbformat.write(nb, path)
    cleaned = _clean_copy(path, tmp_path)
    assert cleaned["cells"][0]["metadata"] == {"tags": ["parameters"]}

def test_every_sidebar_page_exists():
    from radiomicnet.docs.site import sidebar_sections
    listed = {p for _, ps in sidebar_sections(NBS) for p in ps}
    assert listed == {p.name for p in NBS.glob("*.ipynb")}, "nbs/sidebar.yml and the notebooks in nbs/ disagree"

@pytest.mark.parametrize("script", ["radiomicnet-docs", "radiomicnet-run", "radiomicnet-paper", "radiomicnet-download"])
def test_console_scripts_have_help(script):
    exe = shutil.which(script)
    assert exe, f"{script} is not installed: pip install -e ."
    out = subprocess.run([exe, "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "usage:" in out.stdout

EXTRAS_ONLY = ("nbdev", "nbconvert", "jupyterlab", "selenium", "torchmetrics", "mathjax", "pytest",   # in extras, not in a plain install
               "papermill", "ipykernel", "onnx", "onnxruntime", "av", "accelerate", "gradio", "pydicom", "highdicom")

def project_scripts()->dict:
    "{console script: 'module:function'} of this checkout's pyproject.toml."
    import tomllib
    return tomllib.loads((REPO/"pyproject.toml").read_text())["project"]["scripts"]

LAUNCHER = """import contextlib, importlib, io, json, sys
sys.modules.update(dict.fromkeys(EXTRAS_ONLY))  # as after a plain `pip install -e .`: the extras cannot be imported
results = {}
for script, target, args in CALLS:
    module, func = target.split(":")
    out, err, sys.argv = io.StringIO(), io.StringIO(), [script, *args]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try: code = getattr(importlib.import_module(module), func)() or 0
        except SystemExit as e: code = e.code
        except BaseException as e: code, _ = 'crash', print(f'Traceback: {type(e).__name__}: {e}', file=sys.stderr)
    results[script + ' ' + ' '.join(args)] = (code, out.getvalue(), err.getvalue())
print(json.dumps(results))
"""

def run_as_plain_install(tmp_path, calls:list)->dict:
    "Call console scripts of this checkout's pyproject.toml, [(script, args)], in one process as a console script file would: {call: (status, out, err)}."
    scripts = project_scripts()
    launcher = tmp_path/"launch.py"  # a file, as pip's console scripts are: fastcore's `call_parse` parses sys.argv only then
    launcher.write_text(f"EXTRAS_ONLY = {EXTRAS_ONLY!r}\nCALLS = {[(s, scripts[s], list(a)) for s, a in calls]!r}\n" + LAUNCHER)
    out = subprocess.run([sys.executable, str(launcher)], capture_output=True, text=True, cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert out.returncode == 0, out.stderr[-2000:]
    return {k: tuple(v) for k, v in json.loads(out.stdout.strip().splitlines()[-1]).items()}

def test_every_console_script_answers_help_without_the_extras(tmp_path):
    "After a plain `pip install -e .`: every --help answers, the README's main job trains, and a command that needs an extra says which, in one line."
    image = tmp_path/"scan.png"
    __import__("PIL.Image").Image.new("RGB", (40, 32)).save(image)
    line = lambda what, extra, package: f"{what} needs the optional '{extra}' dependencies ({package} is not installed): pip install -e '.[{extra}]'"
    onnx = "ONNX (radiomicnet-export, --fast, .onnx files)"
    needs = {  # a call without its extra: the one line it ends in
        ("radiomicnet-docs", ("--readme-only",)): "error: " + line("radiomicnet-docs", "docs", "nbdev"),
        ("radiomicnet-paper", ("--out", str(tmp_path/"results"))): "error: " + line("radiomicnet-paper", "paper", "papermill"),
        ("radiomicnet-export", ("--model", "busi", "--out", str(tmp_path/"m.onnx"))): "error: " + line(onnx, "deploy", "onnx"),
        ("radiomicnet-predict", ("--checkpoint", str(tmp_path/"m.onnx"), str(image), "--out", str(tmp_path/"p"))): "error: " + line(onnx, "deploy", "onnxruntime"),
        ("radiomicnet-predict", ("--model", "busi", str(tmp_path/"clip.mp4"), "--out", str(tmp_path/"v"))):
            f"error: {tmp_path/'clip.mp4'}: " + line("Video (MP4, AVI, MOV)", "deploy", "av"),
        ("radiomicnet-app", ("--port", "0")): "error: " + line("radiomicnet-app", "app", "gradio")}
    main_job = ("radiomicnet-run", ("--subset", "4", "--epochs", "1", "--img-size", "64", "--device", "cpu", "--out", str(tmp_path/"run")))
    results = run_as_plain_install(tmp_path, [(s, ["--help"]) for s in project_scripts()] + [(s, list(a)) for s, a in [*needs, main_job]])
    for call, (code, out, err) in results.items():
        if call.endswith("--help"): assert code == 0 and out.startswith("usage:") and "Traceback" not in err, (call, code, err[-1500:])
    assert "pip install -e '.[docs]'" in " ".join(results["radiomicnet-docs --help"][1].split())   # its --help says which extra it needs
    for (script, args), expected in needs.items():
        code, out, err = results[" ".join([script, *args])]
        assert code == 1 and expected in err.splitlines() and "Traceback" not in err, (script, args, err[-1500:])
    assert results["radiomicnet-docs --readme-only"] == (1, "", needs[("radiomicnet-docs", ("--readme-only",))] + "\n")
    code, out, err = results[" ".join([main_job[0], *main_job[1]])]   # the README's main job trains without any extra
    assert code == 0 and (tmp_path/"run"/"summary.json").is_file(), err[-1500:]

def test_wheel_without_the_source_tree_loads_splits_and_trains(tmp_path, data_dir):
    "A wheel installed into a fresh environment (reusing the installed dependencies) carries the splits and trains on BUSI."
    repo = Path(__file__).resolve().parent.parent
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(repo), "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path/"wheel")],
                   check=True, capture_output=True)
    wheel, = (tmp_path/"wheel").glob("radiomicnet-*.whl")
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(tmp_path/"env")], check=True)
    py = tmp_path/"env"/"bin"/"python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True, capture_output=True)
    work = tmp_path/"elsewhere"; work.mkdir()  # not the repository: nothing can be found through it
    env = dict(os.environ, RADIOMICNET_DATA=str(data_dir), RADIOMICNET_CACHE=str(tmp_path/"cache"), PYTHONPATH="")
    probe = ("import radiomicnet, radiomicnet.data.datasets as d; print(radiomicnet.__file__); "
             "print(*(len(d.read_split_file(s)) for s in d.DATASETS))")
    out = subprocess.run([str(py), "-c", probe], cwd=work, env=env, capture_output=True, text=True, check=True).stdout.split("\n")
    assert str(tmp_path/"env") in out[0] and str(repo) not in out[0], out    # the wheel's copy, not the repository's
    assert out[1] == "780 1000", out                                          # BUSI with its normal class, Kvasir-SEG
    run = subprocess.run([str(tmp_path/"env"/"bin"/"radiomicnet-run"), "--dataset", "busi", "--subset", "4", "--epochs", "1", "--img-size", "64",
                          "--out", str(work/"run")], cwd=work, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert json.loads((work/"run"/"summary.json").read_text())["config"]["dataset"] == "busi"

@pytest.mark.parametrize("nb", sorted((Path(__file__).resolve().parent.parent/"nbs").glob("*.ipynb")), ids=lambda p: p.name)
def test_notebooks_are_lean(nb):
    "Committed outputs stay small: each notebook under 250 KB (`radiomicnet-docs --lean --readme-only` shrinks their figures)."
    assert nb.stat().st_size < 250_000, f"{nb.name}: {nb.stat().st_size/1e3:.0f} KB; run `radiomicnet-docs --lean --readme-only`"

MACHINE_ROOTS = re.compile(r"(?<![\w.])/(?:work|root|home|tmp|Users|mnt|var|opt|srv|scratch|media)/")

def committed_result_files()->list:
    "The JSON and CSV files under results/ that git tracks (every one under results/ outside a checkout)."
    out = subprocess.run(["git", "ls-files", "results"], cwd=REPO, capture_output=True, text=True)
    files = [REPO/f for f in out.stdout.splitlines()] if out.returncode == 0 else list((REPO/"results").rglob("*"))
    return [f for f in files if f.suffix in (".json", ".csv") and f.is_file()]

def test_no_machine_paths_in_committed_results():
    files = committed_result_files()
    assert len(files) > 100
    held = [str(f.relative_to(REPO)) for f in files if MACHINE_ROOTS.search(f.read_text(encoding="utf-8"))]
    assert not held, f"{len(held)} result files hold machine paths, e.g. {held[:3]}: run `python tools/portable_results.py`"
    for f in files:
        if f.name == "summary.json":
            s = json.loads(f.read_text())
            assert not str(s.get("checkpoint") or "").startswith("/") and " /" not in str(s.get("command") or ""), f

def test_the_rewrite_tool_is_idempotent(tmp_path):
    "tools/portable_results.py on a copy of an old run folder: machine paths gone, the rest byte for byte; a second run changes nothing."
    run = tmp_path/"results"/"busi"/"cpu"/"runs"/"radiomicnet-no_rag-s0"; (run/"interpret").mkdir(parents=True)
    old = {"command": "radiomicnet-paper --dataset busi --results /home/alice/radiomicnet/results", "seed": 0, "note": "w/o RAG, d loss / d r"}
    (run/"summary.json").write_text(json.dumps(old, indent=2))
    (run/"interpret"/"summary.json").write_text(json.dumps({"checkpoint": "/work/main/results/busi/cpu/runs/radiomicnet-no_rag-s0/best.pt",
        "gates_skipped": "/work/main/results/busi/cpu/runs/radiomicnet-no_rag-s0/best.pt: its gates run in rag_mode 'none'"}, indent=2))
    (run/"per_image.csv").write_text("image_id,dsc\nbenign (1),0.5\n")
    tool = lambda *a: subprocess.run([sys.executable, str(REPO/"tools"/"portable_results.py"), "--results", str(tmp_path/"results"), *a],
                                     capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert tool("--check").returncode == 1
    assert tool().stdout.strip().endswith("2 file(s) rewritten")
    assert json.loads((run/"summary.json").read_text()) == dict(old, command="radiomicnet-paper --dataset busi --results results")
    assert json.loads((run/"interpret"/"summary.json").read_text()) == {"checkpoint": "results/busi/cpu/runs/radiomicnet-no_rag-s0/best.pt",
        "gates_skipped": "results/busi/cpu/runs/radiomicnet-no_rag-s0/best.pt: its gates run in rag_mode 'none'"}
    assert (run/"per_image.csv").read_text() == "image_id,dsc\nbenign (1),0.5\n"
    before = {f: f.read_bytes() for f in tmp_path.rglob("*") if f.is_file()}
    again = tool()
    assert again.stdout.strip().endswith("0 file(s) rewritten") and tool("--check").returncode == 0
    assert before == {f: f.read_bytes() for f in tmp_path.rglob("*") if f.is_file()}

def test_structure_report_passes():
    "One concern per module (<= 450 lines), export cells <= 40 lines, imports only forward along the notebook order: the report exits 0."
    out = subprocess.run([sys.executable, str(REPO/"tools"/"structure_report.py")], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stdout[-3000:]
    assert "imports pointing backwards" in out.stdout and out.stdout.split("imports pointing backwards")[1].splitlines()[1].strip() == "none"

def test_structure_report_catches_a_backward_import(tmp_path):
    "The report is a check that can fail: a module importing a later notebook's module is reported and exits 1."
    pkg, nbs, tools = tmp_path/"radiomicnet", tmp_path/"nbs", tmp_path/"tools"
    for d in (pkg/"a", nbs, tools): d.mkdir(parents=True)
    (tools/"structure_report.py").write_text((REPO/"tools"/"structure_report.py").read_text())
    (pkg/"__init__.py").write_text(""); (pkg/"a"/"__init__.py").write_text("")
    (pkg/"a"/"early.py").write_text('"Early."\n# AUTOGENERATED! DO NOT EDIT! File to edit: ../nbs/00_early.ipynb.\nfrom ..late import x\n')
    (pkg/"late.py").write_text('"Late."\n# AUTOGENERATED! DO NOT EDIT! File to edit: ../nbs/01_late.ipynb.\nx = 1\n')
    for nb in ("00_early", "01_late"): (nbs/f"{nb}.ipynb").write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    out = subprocess.run([sys.executable, str(tools/"structure_report.py")], capture_output=True, text=True)
    assert out.returncode == 1 and "radiomicnet.a.early (00_early.ipynb) -> radiomicnet.late (01_late.ipynb): top level" in out.stdout, out.stdout

def test_notebooks_are_numbered_without_collisions():
    "One notebook per number, in reading order, and each notebook that exports writes a module of its own."
    nbs = sorted(p.name for p in NBS.glob("[0-9]*.ipynb"))
    numbers = [n.split("_")[0] for n in nbs]
    assert len(set(numbers)) == len(numbers) and all(n.isdigit() for n in numbers), numbers
    exports = [[c.source.split()[2] for c in nbformat.read(NBS/n, as_version=4).cells if c.source.startswith("#| default_exp")] for n in nbs]
    assert all(len(e) <= 1 for e in exports), dict(zip(nbs, exports))
    modules = [e[0] for e in exports if e]
    assert len(set(modules)) == len(modules), modules
