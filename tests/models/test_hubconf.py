"""torch.hub: hubconf.py exposes one entrypoint per zoo model and nothing else."""
import importlib.util
from pathlib import Path

import pytest
import torch

import epsanet

REPO = Path(__file__).resolve().parents[2]


def hubconf_entrypoints():
    spec = importlib.util.spec_from_file_location("hubconf_under_test", REPO / "hubconf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {name for name in dir(module) if callable(getattr(module, name)) and not name.startswith("_")}


def test_hubconf_has_exactly_one_entrypoint_per_zoo_model():
    assert hubconf_entrypoints() == set(epsanet.list_models())


@pytest.mark.parametrize("name", epsanet.list_models())
def test_torch_hub_load_builds_every_entrypoint(name):
    model = torch.hub.load(str(REPO), name, source="local", num_classes=3, device="meta")
    assert model.fc.out_features == 3
    assert model.pretrained_cfg["architecture"] == name


def test_torch_hub_load_runs_the_official_name():
    model = torch.hub.load(str(REPO), "epsanet50", source="local").eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 1000)


def test_torch_hub_load_with_weights_at_a_path_that_does_not_exist_says_so(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(epsanet.PathNotFoundError, match="^weights runs/tiny/bset does not exist: check the path"):
        torch.hub.load(str(REPO), "epsanet50_small", source="local", weights="runs/tiny/bset")
