"The notebook-first contract: README generated from the index notebook, clean notebooks, kept papermill tags."
import json, os, shutil, subprocess, sys
from pathlib import Path
import nbformat
import pytest
from radiomicnet.docs import render_readme

REPO = Path(__file__).resolve().parent.parent
NBS = REPO/"nbs"

def test_readme_is_up_to_date():
    assert (REPO/"README.md").read_text(encoding="utf-8") == render_readme(NBS), \
        "README.md is stale: run `radiomicnet-docs --readme-only` and commit it"

def test_readme_states_the_two_commands():
    readme = (REPO/"README.md").read_text(encoding="utf-8")
    assert "pip install -e . && radiomicnet-run" in readme
    assert "make test" in readme and "pyproject.toml" in readme and "settings.ini" in readme

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
    from radiomicnet.docs import sidebar_sections
    listed = {p for _, ps in sidebar_sections(NBS) for p in ps}
    assert listed == {p.name for p in NBS.glob("*.ipynb")}, "nbs/sidebar.yml and the notebooks in nbs/ disagree"

@pytest.mark.parametrize("script", ["radiomicnet-docs", "radiomicnet-run", "radiomicnet-paper", "radiomicnet-download"])
def test_console_scripts_have_help(script):
    exe = shutil.which(script)
    assert exe, f"{script} is not installed: pip install -e ."
    out = subprocess.run([exe, "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "usage:" in out.stdout

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
    probe = ("import radiomicnet, radiomicnet.data as d; print(radiomicnet.__file__); "
             "print(*(len(d.read_split_file(s)) for s in ('busi', 'kvasir-seg')))")
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
