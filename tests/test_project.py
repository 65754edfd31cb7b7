"The notebook-first contract: README generated from the index notebook, clean notebooks, kept papermill tags."
import json, shutil, subprocess, sys
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
