"""Shared fixtures: the official reference data, timm's own model tests, a local Hugging Face Hub."""
import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from common import OFFICIAL, REPO, relative_error  # noqa: F401 (relative_error: for doctests of helpers)
from local_hub import LocalHub, free_port

# huggingface_hub reads its endpoint and cache locations once, at import (timm imports it): point
# them at a local hub (started on first use, see `local_hub`) and a throw-away cache before that,
# so that no test touches ~/.cache/huggingface or the network.
HF_ROOT = Path(tempfile.mkdtemp(prefix="epsanet-tests-hf-"))
HUB_PORT = free_port()
os.environ.update(HF_HOME=str(HF_ROOT / "home"), HF_HUB_CACHE=str(HF_ROOT / "hub-cache"),
                  HF_ENDPOINT=f"http://127.0.0.1:{HUB_PORT}", HF_HUB_OFFLINE="0", HF_HUB_DISABLE_TELEMETRY="1")
os.environ.pop("HF_TOKEN", None)
# The fast PSA path takes the deterministic default plans in tests (and writes no autotune cache
# in the home directory); tests/layers/test_autotune.py turns autotuning on with its own cache folder.
os.environ.setdefault("EPSANET_AUTOTUNE", "0")
# Runtime plans (epsanet export) are measured whatever EPSANET_AUTOTUNE says: into a throw-away cache.
os.environ["EPSANET_CACHE_DIR"] = str(HF_ROOT / "epsanet-cache")

import PIL.Image  # noqa: E402
import pytest  # noqa: E402
import timm  # noqa: E402
import torch  # noqa: E402

CACHE = Path(os.environ.get("EPSANET_TEST_CACHE", Path.home() / ".cache" / "epsanet-tests"))
OLAH = Path(os.environ.get("EPSANET_OLAH", REPO / ".venv-olah" / "bin" / "olah-cli"))


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(HF_ROOT, ignore_errors=True)


# Importing Ultralytics (the YOLO tests, `epsanet yolo` in the command sweep) replaces
# PIL.Image.open and torch.save for the whole process (ultralytics.utils.patches; on an image PIL
# cannot identify, its Image.open tries to install a HEIF plugin): every test starts with the originals.
PIL_IMAGE_OPEN, TORCH_SAVE = PIL.Image.open, torch.save


@pytest.fixture(autouse=True)
def without_ultralytics_patches():
    PIL.Image.open, torch.save = PIL_IMAGE_OPEN, TORCH_SAVE


@pytest.fixture(autouse=True)
def seeded():
    """Every test starts from the same random state."""
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def official_checkpoint(tmp_path_factory):
    """Write an official-format checkpoint (``.pth.tar``) for an arch with the reference script."""
    out_dir = tmp_path_factory.mktemp("official")

    def make(arch: str) -> Path:
        out = out_dir / f"{arch}.pth.tar"
        if not out.exists():
            subprocess.run(
                [sys.executable, str(OFFICIAL / "make_official_checkpoint.py"),
                 str(OFFICIAL / f"layout_{arch}.json"), str(out)],
                check=True,
            )
        return out

    return make


@pytest.fixture(scope="session")
def timm_tests_dir() -> Path:
    """timm's ``tests/`` from the sdist of the installed timm version, fetched from the package
    registry on first use (timm's wheel ships no tests; the sdist is not vendored)."""
    root = CACHE / f"timm-{timm.__version__}"
    if not (root / "tests" / "test_models.py").exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", f"timm=={timm.__version__}", "--no-binary", ":all:",
             "--no-deps", "-d", str(CACHE), "-q"],
            check=True,
        )
        with tarfile.open(CACHE / f"timm-{timm.__version__}.tar.gz") as tar:
            tar.extractall(CACHE, filter="data")
    return root / "tests"


@pytest.fixture(scope="session")
def timm_test_models(timm_tests_dir):
    """timm's ``tests/test_models.py`` as a module, to call its test functions on our models."""
    spec = importlib.util.spec_from_file_location("timm_test_models", timm_tests_dir / "test_models.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def local_hub():
    """olah serving git repositories on 127.0.0.1 (offline mode) plus our commit endpoint for
    uploads; HF_ENDPOINT already points at it. olah lives in its own venv (``make test`` installs
    it); the hub tests fail, not skip, without it."""
    if not OLAH.exists():
        pytest.fail(f"olah not found at {OLAH}: run `make olah` (or set EPSANET_OLAH to an olah-cli)", pytrace=False)
    hub = LocalHub(OLAH, HF_ROOT / "local-hub", HUB_PORT)
    yield hub
    hub.stop()
