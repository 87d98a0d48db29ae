"""epsanet.transplant: ResNet weights into EPSANet and the attention ResNets."""
import pytest
import torch
import torchvision

import epsanet
from epsanet import transplant


@pytest.fixture(scope="module")
def resnet50_state():
    torch.manual_seed(3)
    state = torchvision.models.resnet50().state_dict()
    # Distinct values everywhere, so that a misplaced copy cannot go unnoticed.
    return {k: torch.randn_like(v.float()).to(v.dtype) if v.is_floating_point() else v for k, v in state.items()}


# What a ResNet-50 does not have is left as initialised: the SE gate of each block's PSA module
# (4 tensors x 16 blocks), SE-ResNet's SE modules (4 x 16), ECA's 1-D convolutions (16).
@pytest.mark.parametrize("name, copied, from_3x3, initialised", [
    ("epsanet50_small", 304, 64, 64),
    ("se_resnet50", 320, 0, 64),
    ("eca_resnet50", 320, 0, 16),
])
def test_every_tensor_whose_name_and_shape_match_is_copied(resnet50_state, name, copied, from_3x3, initialised):
    model = epsanet.create_model(name)
    report = transplant(resnet50_state, model)
    assert (len(report.copied), len(report.from_3x3), len(report.initialised)) == (copied, from_3x3, initialised)
    assert report.unused == []
    state = model.state_dict()
    assert all(torch.equal(state[k], resnet50_state[k]) for k in report.copied if k not in report.rescaled)


@pytest.mark.parametrize("name", ["se_resnet50", "eca_resnet50"])
def test_an_attention_resnet_warm_started_from_a_resnet_computes_what_the_resnet_computes(name):
    resnet = torchvision.models.resnet50().eval()
    for bn in (m for m in resnet.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        bn.running_mean.normal_(0, 0.1), bn.running_var.uniform_(0.5, 2), bn.weight.data.uniform_(0.5, 1.5)
    model = epsanet.create_model(name).eval()
    report = transplant(resnet.state_dict(), model)
    assert len(report.neutralised) == 16
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), resnet(x), rtol=1e-5, atol=1e-5)
    assert torch.equal(model.layer2[0].bn3.weight, 2 * resnet.layer2[0].bn3.weight)


def test_psa_gates_start_by_weighing_every_branch_a_quarter(resnet50_state):
    model = epsanet.epsanet50_small().eval()
    transplant(resnet50_state, model)
    psa = model.layer3[2].conv2
    branches = torch.stack([psa.se.gate(torch.randn(2, 64, 4, 4)) for _ in range(4)], dim=1)
    assert torch.equal(branches.softmax(dim=1), torch.full_like(branches, 0.25))
    torch.testing.assert_close(model.layer3[2].bn2.running_var, resnet50_state["layer3.2.bn2.running_var"] / 16)


def test_gates_can_keep_their_initialisation(resnet50_state):
    model = epsanet.se_resnet50()
    before = model.layer1[0].se.fc2.weight.clone()
    report = transplant(resnet50_state, model, neutral_gates=False)
    assert report.neutralised == [] and torch.equal(model.layer1[0].se.fc2.weight, before)
    assert torch.equal(model.layer1[0].bn3.weight, resnet50_state["layer1.0.bn3.weight"])


@pytest.mark.parametrize("name, fraction", [
    ("epsanet50_small", 22_550_888 / 22_561_715),
    ("se_resnet50", 25_557_032 / 28_088_024),
    ("eca_resnet50", 25_557_032 / 25_557_112),
])
def test_the_report_gives_the_fraction_of_parameters_transplanted(resnet50_state, name, fraction):
    assert transplant(resnet50_state, epsanet.create_model(name)).fraction == pytest.approx(fraction)


def test_psa_branches_take_the_centred_3x3_kernel_of_their_output_rows_and_group_block(resnet50_state):
    model = epsanet.epsanet50_small()
    transplant(resnet50_state, model)
    kernel = resnet50_state["layer2.1.conv2.weight"]  # (128, 128, 3, 3)
    psa = model.layer2[1].conv2
    split = 32
    # Branch 1 (3x3, 1 group) writes the last quarter of the reversed concatenation.
    assert torch.equal(psa.conv_1.weight, kernel[3 * split:])
    # Branch 4 (9x9, 16 groups) writes the first quarter; output row o belongs to group o // 2,
    # which reads input channels 8g..8g+7; the 3x3 kernel sits in the middle of the 9x9.
    branch = psa.conv_4.weight
    assert branch.shape == (32, 8, 9, 9)
    for o in range(split):
        group = o // 2
        assert torch.equal(branch[o, :, 3:6, 3:6], kernel[o, 8 * group:8 * group + 8])
    outside = branch.clone()
    outside[:, :, 3:6, 3:6] = 0
    assert not outside.any()
    # Branch 2 (5x5, 4 groups) writes the second quarter of the output channels.
    assert torch.equal(psa.conv_2.weight[9, :, 1:4, 1:4], kernel[2 * split + 9, 32 * (9 // 8):32 * (9 // 8) + 32])


def test_psa_branches_can_keep_their_initialisation(resnet50_state):
    model = epsanet.epsanet50_small()
    before = model.layer1[0].conv2.conv_2.weight.clone()
    report = transplant(resnet50_state, model, psa_from_3x3=False)
    assert report.from_3x3 == [] and torch.equal(model.layer1[0].conv2.conv_2.weight, before)


def test_a_new_head_is_left_as_initialised(resnet50_state):
    model = epsanet.se_resnet50(num_classes=10)
    report = transplant(resnet50_state, model)
    assert "fc.weight" in report.initialised and "fc.weight" in report.unused


def test_a_wide_resnet_fills_epsanet_large():
    report = transplant(torchvision.models.wide_resnet50_2().state_dict(), epsanet.epsanet50_large())
    assert report.fraction > 0.998 and len(report.from_3x3) == 64


def test_resnet101_weights_fill_epsanet101():
    report = transplant(torchvision.models.resnet101().state_dict(), epsanet.epsanet101_small())
    assert len(report.from_3x3) == 4 * 33 and report.unused == []


def test_the_warm_started_epsanet_trains(resnet50_state):
    model = epsanet.epsanet50_small(num_classes=4)
    transplant(resnet50_state, model)
    loss = torch.nn.functional.cross_entropy(model(torch.randn(2, 3, 32, 32)), torch.tensor([0, 3]))
    loss.backward()
    assert torch.isfinite(loss) and model.layer1[0].conv2.conv_4.weight.grad.abs().sum() > 0


def test_a_basic_block_resnet_is_refused():
    with pytest.raises(ValueError, match="needs the state_dict of a bottleneck ResNet .* no layerN.M.conv3 weights"):
        transplant(torchvision.models.resnet18().state_dict(), epsanet.epsanet50_small(device="meta"))
