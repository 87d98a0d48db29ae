"""The clone's scripts (train/, eval/, weights/) run from a fresh interpreter, and weights/verify.py
checks a file against the sha256 of its catalogue entry."""
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

from epsanet.weights import sha256_of

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted(p.relative_to(ROOT).as_posix() for folder in ("train", "eval", "weights")
                 for p in (ROOT / folder).glob("*.py"))


def run_script(script: str, args: List[str], package_root: Path = ROOT) -> subprocess.CompletedProcess:
    """``python SCRIPT ARGS`` in a fresh interpreter that imports epsanet from ``package_root``."""
    env = dict(os.environ, PYTHONPATH=str(package_root))
    return subprocess.run([sys.executable, str(ROOT / script), *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def test_the_scripts_folders_hold_the_scripts_the_readmes_name():
    assert SCRIPTS == ["eval/eval.py", "eval/eval_detection.py", "train/train.py", "train/train_detection.py",
                       "weights/convert.py", "weights/list.py", "weights/publish.py", "weights/verify.py"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_script_prints_its_help(script):
    done = run_script(script, ["--help"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: ") and done.stderr == ""


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("file") / "model.safetensors"
    path.write_bytes(b"the bytes of a weights file")
    return path


@pytest.fixture(scope="module")
def catalogued(tmp_path_factory, weights_file) -> Path:
    """A copy of the package whose catalogue has three more entries: se_resnet50.same (the sha256
    of ``weights_file``), se_resnet50.other (another sha256) and se_resnet50.unhashed (none)."""
    root = tmp_path_factory.mktemp("clone")
    shutil.copytree(ROOT / "epsanet", root / "epsanet", ignore=shutil.ignore_patterns("__pycache__"))
    entries = {"same": f'sha256 = "{sha256_of(weights_file)}"\n', "other": f'sha256 = "{"0" * 64}"\n',
               "unhashed": ""}
    with open(root / "epsanet" / "weights" / "catalogue.toml", "a", encoding="utf-8") as catalogue:
        for tag, sha256 in entries.items():
            catalogue.write(f'\n[[weights]]\nmodel = "se_resnet50"\ntag = "{tag}"\n'
                            f'hf_hub_id = "epsanet-tests/{tag}"\n{sha256}')
    return root


def test_verify_accepts_the_file_of_the_entry(catalogued, weights_file):
    done = run_script("weights/verify.py", ["se_resnet50.same", str(weights_file)], catalogued)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{weights_file} is se_resnet50.same: sha256 {sha256_of(weights_file)}\n"


def test_verify_refuses_another_file_in_one_line(catalogued, weights_file):
    done = run_script("weights/verify.py", ["se_resnet50.other", str(weights_file)], catalogued)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (f"epsanet weights: error: {weights_file} has sha256 {sha256_of(weights_file)}, not the "
                           f"{'0' * 64} of catalogue entry se_resnet50.other: it is another file or a damaged copy; "
                           "download it again from hf-hub:epsanet-tests/other\n")


def test_verify_of_an_entry_without_sha256_gives_the_one_to_add_in_one_line(catalogued, weights_file):
    done = run_script("weights/verify.py", ["se_resnet50.unhashed", str(weights_file)], catalogued)
    assert done.returncode == 2 and done.stdout == ""
    catalogue = catalogued / "epsanet" / "weights" / "catalogue.toml"
    assert done.stderr == (f'epsanet weights: error: catalogue entry se_resnet50.unhashed records no sha256: add '
                           f'sha256 = "{sha256_of(weights_file)}" (this file\'s) to it in {catalogue} if '
                           f"{weights_file} is its file\n")
