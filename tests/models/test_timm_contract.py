"""timm's own model tests (tests/test_models.py of the installed timm version) on the zoo."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from common import HELPERS

import epsanet

# One model per distinct block configuration keeps the default run short; -m slow runs them all.
DEFAULT_MODELS = ["epsanet50_small", "epsanet50_large", "se_resnet50", "eca_resnet50", "bam_resnet50"]


def run_timm_model_tests(timm_tests_dir: Path, models) -> None:
    env = dict(os.environ, EPSANET_TIMM_MODELS=",".join(models), HF_HUB_OFFLINE="1",
               PYTHONPATH=os.pathsep.join([str(HELPERS), os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(timm_tests_dir / "test_models.py"), "-p", "timm_zoo_plugin",
         "-p", "no:cacheprovider", "-q", "-k", "not pretrained", "-W", "ignore::FutureWarning"],
        env=env, capture_output=True, text=True,
    )
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, (
        f"timm's model tests failed ({summary}):\n{result.stdout[-6000:]}{result.stderr[-2000:]}")
    assert " passed" in summary and "skipped" not in summary, summary


def test_timm_model_tests_pass_for_each_block_configuration(timm_tests_dir):
    run_timm_model_tests(timm_tests_dir, DEFAULT_MODELS)


@pytest.mark.slow
@pytest.mark.timeout(7200)  # 23 models: about an hour on 2 busy cores
def test_timm_model_tests_pass_for_every_zoo_model(timm_tests_dir):
    run_timm_model_tests(timm_tests_dir, epsanet.list_models())


@pytest.mark.parametrize("name", DEFAULT_MODELS)
def test_forward_intermediates_pass_timm_tests(timm_test_models, name):
    # timm runs these two tests only on its own modules, so call them on ours directly.
    timm_test_models.test_model_forward_intermediates(name, 1)
    timm_test_models.test_model_forward_intermediates_features(name, 1)
