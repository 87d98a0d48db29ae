"""Shared fixtures: the official reference data and timm's own model tests."""
import importlib.util
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import timm
import torch

DATA = Path(__file__).parent / "data"
OFFICIAL = DATA / "official_epsanet"
CACHE = Path(os.environ.get("EPSANET_TEST_CACHE", Path.home() / ".cache" / "epsanet-tests"))


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """||actual - expected|| / ||expected||, computed in float64."""
    return ((actual.double() - expected.double()).norm() / expected.double().norm()).item()


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
