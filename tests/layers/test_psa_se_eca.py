"""Attention layers: shapes, official layout, gradients, registry."""
import pytest
import torch
import torch.nn.functional as F

from epsanet.layers import (
    ECAModule,
    PSAModule,
    ReferencePSAModule,
    SEModule,
    adaptive_kernel_size,
    create_attention,
    list_attention,
)


def test_psa_state_dict_has_four_branch_convs_and_one_shared_se():
    psa = PSAModule(64, 64)
    shapes = {k: tuple(v.shape) for k, v in psa.state_dict().items()}
    assert shapes == {
        "conv_1.weight": (16, 64, 3, 3),
        "conv_2.weight": (16, 16, 5, 5),
        "conv_3.weight": (16, 8, 7, 7),
        "conv_4.weight": (16, 4, 9, 9),
        "se.fc1.weight": (1, 16, 1, 1),
        "se.fc1.bias": (1,),
        "se.fc2.weight": (16, 1, 1, 1),
        "se.fc2.bias": (16,),
    }


@pytest.mark.parametrize("stride, size, expected", [(1, (13, 20), (13, 20)), (2, (13, 20), (7, 10))])
def test_psa_applies_the_stride_on_every_branch(stride, size, expected):
    out = PSAModule(32, 64, groups=(1, 2, 4, 8), stride=stride)(torch.randn(2, 32, *size))
    assert out.shape == (2, 64, *expected)


def test_psa_concatenates_the_weighted_branches_in_reverse_order():
    psa = PSAModule(16, 16, groups=(1, 1, 1, 1)).eval()
    x = torch.randn(1, 16, 6, 6)
    branches = [psa.conv_1(x), psa.conv_2(x), psa.conv_3(x), psa.conv_4(x)]
    weights = torch.stack([psa.se.gate(b) for b in branches], 1).softmax(1)
    expected = torch.cat([branches[i] * weights[:, i] for i in (3, 2, 1, 0)], 1)
    torch.testing.assert_close(psa(x), expected)


def test_the_plain_formulation_is_the_papers_equations_with_the_official_quirks():
    psa = ReferencePSAModule(16, 32, groups=(1, 2, 4, 8), stride=2, se_reduction=4).double()
    x = torch.randn(2, 16, 7, 6, dtype=torch.float64)
    convs, se = [psa.conv_1, psa.conv_2, psa.conv_3, psa.conv_4], psa.se
    # F_i = Conv(k_i x k_i, G_i)(X), every branch on the whole input
    feats = [F.conv2d(x, c.weight, None, 2, k // 2, 1, g) for c, k, g in zip(convs, (3, 5, 7, 9), (1, 2, 4, 8))]
    # Z_i = SEWeight(F_i), as the official SEWeightModule, one SE for all branches
    scores = [torch.sigmoid(se.fc2(F.relu(se.fc1(F.adaptive_avg_pool2d(f, 1))))) for f in feats]
    # att_i = Softmax(Z_i) across the scales
    exps = [score.exp() for score in scores]
    atts = [e / sum(exps) for e in exps]
    # Y_i = F_i * att_i; Out = Cat([Y_4, Y_3, Y_2, Y_1])
    expected = torch.cat([feats[i] * atts[i] for i in (3, 2, 1, 0)], dim=1)
    torch.testing.assert_close(psa(x), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "plain"])
def test_branch_weights_are_the_weights_the_forward_applies(fast):
    psa = PSAModule(16, 16, groups=(1, 2, 4, 4), se_reduction=2, fast=fast).double().eval()
    x = torch.randn(3, 16, 6, 5, dtype=torch.float64)
    weights = psa.branch_weights(x)
    assert weights.shape == (3, 4, 4)
    torch.testing.assert_close(weights.sum(1), torch.ones(3, 4, dtype=torch.float64))
    branches = [psa.conv_1(x), psa.conv_2(x), psa.conv_3(x), psa.conv_4(x)]
    applied = torch.cat([branches[i] * weights[:, i, :, None, None] for i in (3, 2, 1, 0)], dim=1)
    torch.testing.assert_close(psa(x), applied, rtol=1e-12, atol=1e-12)


def test_psa_with_dilation_keeps_the_spatial_size():
    out = PSAModule(32, 32, groups=(1, 2, 4, 8), dilation=2)(torch.randn(1, 32, 9, 11))
    assert out.shape == (1, 32, 9, 11)


@pytest.mark.parametrize("kwargs, message", [
    (dict(in_channels=30, out_channels=30), "divisible by 4"),
    (dict(in_channels=24, out_channels=32, groups=(1, 4, 8, 16)), "group count 16"),
    (dict(in_channels=32, kernel_sizes=(3, 5, 7)), "four branches"),
])
def test_psa_rejects_channel_counts_it_cannot_split(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PSAModule(**kwargs)


def test_se_matches_timm_seresnet_layout_and_math():
    from timm.layers import SEModule as TimmSE

    ours, theirs = SEModule(256), TimmSE(256)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in theirs.state_dict().items()}
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(2, 256, 5, 7)
    torch.testing.assert_close(ours(x), theirs(x))


def test_se_hidden_width_is_channels_over_reduction_at_least_one():
    assert SEModule(16).fc1.out_channels == 1
    assert SEModule(8).fc1.out_channels == 1
    assert SEModule(512, reduction=8).fc1.out_channels == 64


@pytest.mark.parametrize("channels, kernel", [(64, 3), (256, 5), (512, 5), (1024, 5), (2048, 7)])
def test_eca_adaptive_kernel_follows_the_paper_formula(channels, kernel):
    assert adaptive_kernel_size(channels) == kernel
    assert ECAModule(channels).conv.kernel_size == (kernel,)


def test_eca_matches_the_official_formulation():
    eca = ECAModule(kernel_size=5)
    x = torch.randn(2, 64, 7, 5)
    pooled = torch.nn.functional.adaptive_avg_pool2d(x, 1)  # official: conv over squeeze/transpose
    y = eca.conv(pooled.squeeze(-1).transpose(-1, -2)).transpose(-1, -2).unsqueeze(-1)
    torch.testing.assert_close(eca(x), x * y.sigmoid())
    assert list(eca.state_dict()) == ["conv.weight"]


def test_eca_rejects_even_kernels():
    with pytest.raises(ValueError, match="odd"):
        ECAModule(kernel_size=4)


@pytest.mark.parametrize("name", ["psa", "se", "eca"])
def test_every_registered_attention_keeps_shape_and_trains(name):
    module = create_attention(name, 256)
    x = torch.randn(2, 256, 9, 7, requires_grad=True)
    out = module(x)
    assert out.shape == x.shape
    out.square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())


def test_create_attention_names_the_choices_for_an_unknown_name():
    assert {"psa", "se", "eca"} <= set(list_attention())
    with pytest.raises(ValueError, match="unknown attention module 'sk'.*choose one of"):
        create_attention("sk", 64)
