"""The package as users get it: ``python -m build`` makes an sdist and a wheel from it, and the wheel
works installed in a fresh virtual environment.

What the fresh environment isolates: it is a new venv (``python -m venv --without-pip``) into which
pip installs the wheel, from an empty folder, with no PYTHONPATH; the clone is on no path
(``epsanet.__file__`` is checked to be inside the venv). Installing torch, timm and the rest anew
would cost minutes and gigabytes, so the venv sees the third-party packages of the environment
running the tests: a ``.pth`` file lists its site-packages folders, only those without an
``epsanet`` package (an editable install's hook, ``__editable__*.pth``, runs only for the site
folders of the interpreter that owns them, not for folders listed in a ``.pth``). pip resolves the
wheel's dependencies and extras against those packages with ``--no-index``, and the test checks
that it installed nothing but epsanet into the venv.

Marked slow (about a minute of CPU); ``make test`` runs it (``-m "not slow or wheel"``).
"""
import json
import os
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path
from typing import List

import pytest

import epsanet

pytestmark = [pytest.mark.slow, pytest.mark.wheel]

ROOT = Path(__file__).resolve().parents[2]
TINY_MODEL = ["--model-kwargs", "layers=(1,1,1,1)", "channels=(16,32,64,128)", "stem_width=16", "psa_groups=(1,1,2,4)"]


def run(args: List[str], cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(map(str, args))} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """The sdist and, built from it, the wheel (``python -m build``, with this environment's setuptools)."""
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--no-isolation", "--outdir", out, ROOT], cwd=out)
    return out


@pytest.fixture(scope="module")
def wheel(dist) -> Path:
    (path,) = dist.glob("epsanet-*.whl")
    return path


@pytest.fixture(scope="module")
def venv(tmp_path_factory, wheel) -> Path:
    root = tmp_path_factory.mktemp("fresh") / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", root], cwd=root.parent)
    purelib = Path(sysconfig.get_path("purelib", vars={"base": str(root), "platbase": str(root)}))
    shared = [p for p in dict.fromkeys(sys.path) if Path(p).name == "site-packages" and Path(p).is_dir()]
    assert shared and not any((Path(p) / "epsanet").exists() for p in shared), shared
    (purelib / "_test_environment.pth").write_text("".join(f"{p}\n" for p in shared), encoding="utf-8")
    run([python(root), "-m", "pip", "install", "--no-index", "--disable-pip-version-check", "-q", wheel],
        cwd=root.parent)
    assert sorted(p.name for p in purelib.iterdir() if p.name != "__pycache__") == [
        "_test_environment.pth", "epsanet", f"epsanet-{epsanet.__version__}.dist-info"]
    return root


@pytest.fixture
def empty(tmp_path) -> Path:
    """The folder the venv's commands run in: not the clone."""
    return tmp_path


def python(venv: Path) -> Path:
    return venv / ("Scripts" if os.name == "nt" else "bin") / "python"


def command(venv: Path) -> Path:
    return venv / ("Scripts" if os.name == "nt" else "bin") / "epsanet"


def files_under(folder: Path, suffix: str = "") -> set:
    """Paths relative to ``folder`` of its files (ending with ``suffix``), caches left out."""
    return {p.relative_to(folder).as_posix() for p in folder.rglob(f"*{suffix}")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


def test_the_wheel_holds_every_module_the_catalogue_and_the_licence_but_no_tests_or_scripts(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {f"epsanet/{name}" for name in files_under(ROOT / "epsanet", ".py")}
    assert modules <= names, f"modules missing from the wheel: {sorted(modules - names)}"
    info = f"epsanet-{epsanet.__version__}.dist-info"
    assert {"epsanet/weights/__init__.py", "epsanet/weights/catalogue.toml", "epsanet/py.typed",
            f"{info}/licenses/LICENSE", f"{info}/entry_points.txt"} <= names
    yolo_yamls = {f"epsanet/integrations/ultralytics/cfg/{name}" for name in
                  files_under(ROOT / "epsanet" / "integrations" / "ultralytics" / "cfg", ".yaml")}
    assert len(yolo_yamls) == 4 and yolo_yamls <= names
    assert not [n for n in names if n.startswith(("tests/", "train/", "eval/", "weights/", "hubconf"))]


def test_the_wheel_metadata_names_licence_urls_python_versions_and_extras(wheel):
    metadata = zipfile.ZipFile(wheel).read(f"epsanet-{epsanet.__version__}.dist-info/METADATA").decode()
    fields = [line.split(": ", 1) for line in metadata.split("\n\n", 1)[0].splitlines() if ": " in line]
    values = {}
    for key, value in fields:
        values.setdefault(key, []).append(value)
    assert values["License-Expression"] == ["MIT"] and values["License-File"] == ["LICENSE"]
    assert {url.split(",")[0] for url in values["Project-URL"]} >= {"Source", "Documentation", "Changelog", "Issues"}
    assert values["Requires-Python"] == [">=3.10"]
    assert "Programming Language :: Python :: 3.11" in values["Classifier"]
    assert {"train", "detection", "export", "bench", "yolo"} <= set(values["Provides-Extra"])


def test_the_sdist_holds_the_tests_their_data_what_they_read_and_the_scripts(dist):
    (sdist,) = dist.glob("epsanet-*.tar.gz")
    prefix = f"epsanet-{epsanet.__version__}/"
    names = {name.removeprefix(prefix) for name in tarfile.open(sdist).getnames()}
    tests = {f"tests/{name}" for name in files_under(ROOT / "tests")}
    assert tests <= names, f"missing from the sdist: {sorted(tests - names)}"
    assert {"LICENSE", "CHANGELOG.md", "README.md", "ARCHITECTURE.md", "hubconf.py", "docs/models.md",
            "epsanet/weights/catalogue.toml", "setup.cfg", "pyproject.toml", "Makefile", "weights/README.md",
            "weights/verify.py", "train/train.py", "eval/eval.py"} <= names


def test_the_installed_package_and_its_catalogue_come_from_the_venv(venv, empty):
    done = run([python(venv), "-c", "import epsanet, json; "
                "print(json.dumps([epsanet.__file__, str(epsanet.weights.CATALOGUE_PATH), epsanet.__version__]))"],
               cwd=empty)
    package, catalogue, version = json.loads(done.stdout)
    assert Path(package).is_relative_to(venv) and Path(catalogue).is_relative_to(venv)
    assert Path(catalogue).is_file() and version == epsanet.__version__


def test_epsanet_models_and_weights_commands_run_from_the_venv(venv, empty):
    models = run([command(venv), "models"], cwd=empty).stdout.splitlines()
    assert sorted(line.split()[0] for line in models[2:]) == sorted(epsanet.list_models())
    weights = run([command(venv), "weights"], cwd=empty).stdout
    assert all(name in weights for name in epsanet.list_pretrained())


def test_timm_creates_a_zoo_model_from_the_installed_package(venv, empty):
    done = run([python(venv), "-c", "import epsanet, timm; m = timm.create_model('epsanet50_small'); "
                "print(type(m).__module__, sum(p.numel() for p in m.parameters()))"], cwd=empty)
    expected = sum(p.numel() for p in epsanet.epsanet50_small().parameters())
    assert done.stdout.split() == ["epsanet.models.resnet", str(expected)]


def test_torch_hub_loads_from_the_clone_with_the_venv_dependencies(venv, empty):
    # torch.hub puts the repository on sys.path while it imports hubconf.py, so the hubconf's
    # `import epsanet` is the clone's (as for every torch.hub repository); the rest is the venv's.
    done = run([python(venv), "-c", f"import torch; m = torch.hub.load({str(ROOT)!r}, 'epsanet50', source='local'); "
                "print(sum(p.numel() for p in m.parameters()))"], cwd=empty)
    assert done.stdout.split() == [str(sum(p.numel() for p in epsanet.epsanet50_small().parameters()))]


def test_the_train_extra_installs_and_epsanet_train_runs_an_epoch(venv, wheel, empty):
    run([python(venv), "-m", "pip", "install", "--no-index", "--disable-pip-version-check", "-q", f"{wheel}[train]"],
        cwd=empty)
    out = empty / "run"
    run([command(venv), "train", "--epochs", "1", "--img-size", "16", "--batch-size", "64", "--workers", "0",
         *TINY_MODEL, "--output-dir", out], cwd=empty)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs"] == 1 and 0 <= summary["best_val_top1"] <= 100
    assert (out / "best" / "model.safetensors").is_file() and (out / "curves.png").is_file()
