"""The inference form (BatchNorm folding) and TorchScript export."""
import pytest
import torch
from common import relative_error
from torch import nn

import epsanet
from epsanet.tools.export import export_torchscript, fuse_batchnorm


def trained_looking(name: str) -> nn.Module:
    """A model whose BatchNorms hold non-trivial statistics and affine parameters."""
    model = epsanet.create_model(name, zero_init_last=False)
    for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
        bn.running_mean.uniform_(-0.5, 0.5), bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5), bn.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


@pytest.fixture(scope="module")
def epsanet50():
    torch.manual_seed(0)
    return trained_looking("epsanet50_small")


@pytest.mark.parametrize("name, remaining", [("epsanet50_small", 16), ("se_resnet50", 0)])
def test_batchnorm_folding_keeps_the_outputs_and_only_the_bns_after_psa(name, remaining):
    model = trained_looking(name)
    fused = fuse_batchnorm(model)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in fused.modules()) == remaining
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert relative_error(fused(x), model(x)) < 1e-5


def test_batchnorm_folding_leaves_the_original_model_untouched(epsanet50):
    before = {k: v.clone() for k, v in epsanet50.state_dict().items()}
    fuse_batchnorm(epsanet50)
    assert all(torch.equal(v, before[k]) for k, v in epsanet50.state_dict().items())


def test_torchscript_export_reproduces_the_fast_psa_model(epsanet50, tmp_path):
    path = export_torchscript(fuse_batchnorm(epsanet50), tmp_path / "epsanet50.pt")
    loaded = torch.jit.load(str(path))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert relative_error(loaded(x), epsanet50(x)) < 1e-5


def test_export_into_a_missing_directory_is_a_one_line_error(epsanet50, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist: create it first"):
        export_torchscript(epsanet50, tmp_path / "missing" / "m.pt")
