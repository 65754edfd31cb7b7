"One CLI vocabulary (notebook 34_cli), read from every installed console script's --help: the same concept has the same flag everywhere."
import os, re, shutil, subprocess, tomllib
import pytest
from conftest import REPO
from radiomicnet.core import RENAMED_FLAGS

SCRIPTS = sorted(tomllib.loads((REPO/"pyproject.toml").read_text())["project"]["scripts"])
OLD_FLAGS = ("--data-dir", "--dest", "--budget", "--results", "--seed", "--onnx")  # the flags the vocabulary replaced

def run(script, *args):
    exe = shutil.which(script)
    assert exe, f"{script} is not installed: pip install -e ."
    return subprocess.run([exe, *map(str, args)], capture_output=True, text=True, env=dict(os.environ, COLUMNS="200"))

def options(help_text:str)->dict:
    "{flag: (placeholder or '{choices}', help)} of the options section of an argparse --help."
    section = help_text.split("options:", 1)[1].split("\n\n", 1)[0]
    found, flag = {}, None
    for line in section.splitlines():
        if m := re.match(r"\s{2}(-\w, )?(--[\w-]+)(?: (\S+))?\s{2,}(.*)", line):
            flag = m.group(2); found[flag] = [m.group(3) or "", m.group(4)]
        elif m := re.match(r"\s{2}(-\w, )?(--[\w-]+)(?: (\S+))?$", line):   # a long flag: its help starts on the next line
            flag = m.group(2); found[flag] = [m.group(3) or "", ""]
        elif flag: found[flag][1] = (found[flag][1] + " " + line.strip()).strip()
    return {k: tuple(v) for k, v in found.items()}

@pytest.fixture(scope="module")
def helps()->dict:
    "{script: {flag: (placeholder, help)}} of every console script."
    out = {}
    for script in SCRIPTS:
        res = run(script, "--help")
        assert res.returncode == 0 and res.stdout.startswith(f"usage: {script}"), (script, res.stderr[-1000:])
        out[script] = options(res.stdout)
    return out

def test_every_script_answers_help(helps):
    assert set(helps) == set(SCRIPTS) and all("--help" in flags for flags in helps.values())

def test_every_script_is_a_command_of_the_cli_module(helps):
    "Every console script is a function of radiomicnet.cli (notebook 34), the web app's included, and shares its flags' declarations."
    scripts = tomllib.loads((REPO/"pyproject.toml").read_text())["project"]["scripts"]
    assert {s: t for s, t in scripts.items() if t != f"radiomicnet.cli:{s.replace('-', '_')}"} == {}
    assert {s for s, f in helps.items() if "--model" in f and f["--model"][0] == "NAME"} == {
        "radiomicnet-evaluate", "radiomicnet-predict", "radiomicnet-export", "radiomicnet-app"}   # the shared --model (run's is an architecture)

def test_no_old_flag_is_a_primary_flag(helps):
    for script, flags in helps.items():
        assert not set(flags) & set(OLD_FLAGS), (script, set(flags) & set(OLD_FLAGS))
    for script, renamed in RENAMED_FLAGS.items():   # each old flag leads to a flag its command has
        assert set(renamed.values()) <= set(helps[script]), script

CONCEPTS = {  # a concept, told from an option's placeholder and help, and the one flag that names it
    "--data-root": lambda placeholder, text: "BUSI/ and Kvasir-SEG/" in text,
    "--seeds": lambda placeholder, text: placeholder == "SEEDS" or "seeds" in text.lower().split(",")[0],
    "--protocol": lambda placeholder, text: {"cpu", "long", "paper"} <= set(placeholder.strip("{}").split(",")),
    "--device": lambda placeholder, text: placeholder == "{cpu,cuda,cuda:N}",
}

def test_one_flag_per_concept(helps):
    for script, flags in helps.items():
        for flag, (placeholder, text) in flags.items():
            for name, means in CONCEPTS.items():
                if means(placeholder, text): assert flag == name, (script, flag, name, text)
    data_root = {s: f["--data-root"] for s, f in helps.items() if "--data-root" in f}
    assert set(data_root) == {"radiomicnet-run", "radiomicnet-paper", "radiomicnet-download", "radiomicnet-evaluate", "radiomicnet-predict",
                              "radiomicnet-export", "radiomicnet-diagnose", "radiomicnet-package"}
    assert len(set(data_root.values())) == 1, "the data root's help differs between commands"
    placeholder, text = next(iter(data_root.values()))
    assert placeholder == "FOLDER" and "(default: $RADIOMICNET_DATA, else data/ in the radiomicnet checkout)" in text   # resolve_data_dir's rule
    assert {s for s, f in helps.items() if "--images" in f} == {"radiomicnet-evaluate", "radiomicnet-predict"}
    assert all(f["--images"][0] == "FOLDER" for f in helps.values() if "--images" in f)
    assert {s for s, f in helps.items() if "--seeds" in f} == {"radiomicnet-run", "radiomicnet-paper", "radiomicnet-diagnose"}
    assert all("one-element list" in f["--seeds"][1] for f in helps.values() if "--seeds" in f)
    assert {s for s, f in helps.items() if "--protocol" in f} == {"radiomicnet-run", "radiomicnet-paper", "radiomicnet-diagnose"}
    assert {s for s, f in helps.items() if "--out" not in f} <= {"radiomicnet-download", "radiomicnet-models", "radiomicnet-app"}  # all that write: --out
    assert all(f["--out"][0] == "PATH" for f in helps.values() if "--out" in f)

def test_choices_are_listed(helps):
    for script, flags in helps.items():
        for flag in ("--dataset", "--protocol", "--device", "--variant", "--schedule", "--split", "--what", "--arm", "--head", "--masks"):
            if flag in flags: assert re.fullmatch(r"\{[\w:,-]+\}", flags[flag][0]), (script, flag, flags[flag])
        if "--device" in flags: assert flags["--device"][0] == "{cpu,cuda,cuda:N}", script
        if "--protocol" in flags: assert {"cpu", "long", "paper"} <= set(flags["--protocol"][0].strip("{}").split(",")), script
    assert helps["radiomicnet-run"]["--model"][0] == "{radiomicnet,unet,unetpp,transunet,ukan}"
    assert helps["radiomicnet-paper"]["--protocol"][0] == "{quick,cpu,long,paper}"
    assert helps["radiomicnet-download"]["--dataset"][0] == "{busi,kvasir-seg}"

def test_predict_keeps_its_flags(helps):
    "Benches and docs call radiomicnet-predict with these."
    assert {"--model", "--checkpoint", "--fast", "--out", "--batch", "--every", "--threshold", "--tta", "--spacing", "--min-area",
            "--device"} <= set(helps["radiomicnet-predict"])

def test_a_bad_choice_is_refused_by_the_parser():
    res = run("radiomicnet-run", "--protocol", "fast")
    assert res.returncode == 2 and "argument --protocol: invalid choice: 'fast'" in res.stderr
    res = run("radiomicnet-predict", "--device", "gpu", "x.png")
    assert res.returncode == 2 and "argument --device: invalid choice: 'gpu'" in res.stderr

def test_an_old_flag_still_works_with_one_deprecation_line(tmp_path):
    # --data-dir was radiomicnet-evaluate's folder of images: it reaches --images (the error names it), after one warning
    res = run("radiomicnet-evaluate", "--data-dir", tmp_path, "--split", "test", "--out", tmp_path/"out")
    assert res.returncode == 1 and res.stderr.splitlines() == [
        "radiomicnet-evaluate: warning: --data-dir is deprecated and goes in the next release: use --images",
        "error: give --images FOLDER or --split SPLIT, not both"]
    # --dest was radiomicnet-download's data root: its value reaches --data-root
    res = run("radiomicnet-download", "--dataset", "kvasir-seg", "--dest=" + str(tmp_path/"data"), "--url", (tmp_path/"none.zip").as_uri())
    lines = res.stderr.splitlines()
    assert res.returncode == 1 and lines[0] == "radiomicnet-download: warning: --dest is deprecated and goes in the next release: use --data-root"
    assert len([l for l in lines if "deprecated" in l]) == 1 and lines[-1].startswith("error: ") and (tmp_path/"data").is_dir()
