"""The attention modules of issue #3 as plug-ins: shapes, official maths, initialisation, errors,
TorchScript and FX."""
import official_reference as ref
import pytest
import torch
from torch import nn

from epsanet.layers import (
    BAMModule,
    CBAMModule,
    GAMModule,
    PolarizedAttentionModule,
    SequentialPolarizedAttentionModule,
    SGEModule,
    ShuffleAttentionModule,
    create_attention,
    list_attention,
)
from epsanet.weights.checkpoint import from_official_layout

NEW_MODULES = ["cbam", "bam", "sa", "polarized", "polarized_seq", "sge", "coord", "gam", "ema"]
# Non-square and odd sizes, and a strip one pixel high.
SIZES = [(7, 7), (9, 5), (6, 11), (1, 6)]


def randomise(module: nn.Module) -> nn.Module:
    """Non-degenerate parameters and BatchNorm statistics: official inits zero some scales (SA,
    SGE, CBAM's spatial BatchNorm), which would hide whether a parameter is used."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
            elif tensor.is_floating_point():
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.5)
    return module


def official_names(module: nn.Module, renames: dict) -> dict:
    state = {}
    for key, value in module.state_dict().items():
        for ours, theirs in renames.items():
            key = key.replace(ours, theirs)
        state[key] = value
    return state


def test_every_module_is_registered_beside_the_core_ones():
    assert set(NEW_MODULES) | {"se", "eca", "psa", "psa_reference"} == set(list_attention())


@pytest.mark.parametrize("name", NEW_MODULES)
@pytest.mark.parametrize("size", SIZES)
def test_forward_and_backward_keep_the_input_shape_at_every_size(name, size):
    if name == "sge" and size == (1, 6):
        size = (2, 6)  # SGE normalises over positions; its own test covers a single one
    module = create_attention(name, 128).train()
    x = torch.randn(2, 128, *size, requires_grad=True)
    out = module(x)
    assert out.shape == x.shape
    out.sum().backward()
    assert x.grad.shape == x.shape and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("name", NEW_MODULES)
def test_forward_and_backward_reach_every_parameter(name):
    module = randomise(create_attention(name, 128)).train()
    x = torch.randn(2, 128, 9, 5, requires_grad=True)
    module(x).square().mean().backward()
    assert x.grad.abs().sum() > 0
    for param_name, param in module.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, param_name


@pytest.mark.parametrize("name", NEW_MODULES)
def test_eval_mode_is_deterministic_and_treats_every_sample_alone(name):
    module = randomise(create_attention(name, 128)).double().eval()
    x = torch.randn(3, 128, 6, 11, dtype=torch.float64)
    with torch.no_grad():
        out = module(x)
        torch.testing.assert_close(module(x), out, rtol=0, atol=0)
        torch.testing.assert_close(torch.cat([module(x[i:i + 1]) for i in range(3)]), out)


@pytest.mark.parametrize("name", NEW_MODULES)
def test_torchscript_and_fx_compute_what_eager_computes(name):
    module = randomise(create_attention(name, 128)).eval()
    x = torch.randn(2, 128, 9, 6)
    with torch.no_grad():
        expected = module(x)
        torch.testing.assert_close(torch.jit.script(module)(x), expected)
        torch.testing.assert_close(torch.fx.symbolic_trace(module)(x), expected)


@pytest.mark.parametrize("name", NEW_MODULES)
def test_device_and_dtype_reach_every_parameter_and_buffer(name):
    module = create_attention(name, 128, device="meta", dtype=torch.float64)
    assert all(t.device.type == "meta" and (t.dtype == torch.float64 or not t.is_floating_point())
               for t in [*module.parameters(), *module.buffers()])


@pytest.mark.parametrize("name, channels, kwargs, message", [
    ("sa", 96, {}, "ShuffleAttentionModule needs channels divisible by 2 \\* groups = 128, got 96"),
    ("sge", 96, {}, "SGEModule needs channels divisible by groups = 64, got 96"),
    ("ema", 48, {}, "EMAModule needs channels divisible by factor = 32, got 48"),
    ("gam", 30, {}, "GAMModule needs channels divisible by rate = 4, got 30"),
    ("gam", 64, dict(groups=3), "GAMModule groups \\(3\\) must divide channels / rate \\(16\\)"),
    ("polarized", 1, {}, "PolarizedAttentionModule needs at least 2 channels, got 1"),
    ("polarized_seq", 6, {}, "SequentialPolarizedAttentionModule needs at least 8 channels, got 6"),
    ("cbam", 64, dict(kernel_size=6), "CBAMModule kernel_size must be odd"),
    ("bam", 64, dict(combine="mean"), "BAMModule combine must be 'product' \\(official code\\) or 'sum' \\(paper\\)"),
])
def test_a_channel_count_or_option_it_cannot_handle_is_a_one_line_error(name, channels, kwargs, message):
    with pytest.raises(ValueError, match=message) as info:
        create_attention(name, channels, **kwargs)
    assert "\n" not in str(info.value)


def test_sge_on_a_single_position_says_it_needs_more():
    with pytest.raises(AssertionError,
                       match="SGEModule normalises over spatial positions: it needs inputs larger than 1x1"):
        SGEModule(64)(torch.randn(2, 64, 1, 1))


# ---- the official maths ----

@pytest.mark.parametrize("kind, module_cls, reference", [
    ("cbam", CBAMModule, ref.cbam),
    ("sa", ShuffleAttentionModule, ref.shuffle_attention),
    ("sge", SGEModule, ref.sge),
])
def test_cbam_sa_and_sge_compute_the_official_forward_from_official_keys(kind, module_cls, reference):
    generator = torch.Generator().manual_seed(0)
    official = ref.random_state({f"layer1.0.{kind}." + k: v for k, v in ref.attention_shapes(kind, 256).items()},
                                generator)
    prefix = f"layer1.0.{kind}."
    module = module_cls(256).double().eval()
    module.load_state_dict({k[len(prefix):]: v for k, v in from_official_layout(official).items()})
    x = torch.randn(2, 256, 6, 9, dtype=torch.float64, generator=generator)
    with torch.no_grad():
        torch.testing.assert_close(module(x), reference(x, official, prefix))


POLARIZED_NAMES = {"channel_query": "conv_q_right", "channel_value": "conv_v_right", "spatial_query": "conv_q_left",
                   "spatial_value": "conv_v_left", "channel_up.reduce": "conv_up.0", "channel_up.norm": "conv_up.1",
                   "channel_up.expand": "conv_up.3", "channel_up": "conv_up"}


@pytest.mark.parametrize("module_cls, sequential", [(PolarizedAttentionModule, False),
                                                    (SequentialPolarizedAttentionModule, True)])
def test_polarized_attention_computes_the_official_psa_p_and_psa_s(module_cls, sequential):
    module = randomise(module_cls(64)).double().eval()
    x = torch.randn(2, 64, 7, 10, dtype=torch.float64)
    with torch.no_grad():
        expected = ref.polarized(x, official_names(module, POLARIZED_NAMES), "", sequential)
        torch.testing.assert_close(module(x), expected)


@pytest.mark.parametrize("name, reference", [("coord", ref.coord), ("ema", ref.ema)])
def test_coordinate_attention_and_ema_compute_the_official_forward(name, reference):
    module = randomise(create_attention(name, 128)).double().eval()
    x = torch.randn(2, 128, 7, 10, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(module(x), reference(x, module.state_dict(), ""))


@pytest.mark.parametrize("groups", [1, 4])
def test_gam_computes_the_papers_equations(groups):
    module = randomise(GAMModule(64, groups=groups)).double().eval()
    x = torch.randn(2, 64, 7, 10, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(module(x), ref.gam(x, module.state_dict(), "", groups))


def test_bam_gates_combine_as_a_product_by_default_and_as_the_papers_sum_on_request():
    product = randomise(BAMModule(64)).eval()
    paper = BAMModule(64, combine="sum").eval()
    paper.load_state_dict(product.state_dict())
    x = torch.randn(2, 64, 9, 9)
    with torch.no_grad():
        channel, spatial = product.channel_gate(x), product.spatial_gate(x)
        torch.testing.assert_close(product(x), x * (1 + torch.sigmoid(channel * spatial)))
        torch.testing.assert_close(paper(x), x * (1 + torch.sigmoid(channel + spatial)))


def test_bam_channel_gate_pools_globally_on_non_square_inputs():
    module = randomise(BAMModule(64)).eval()
    x = torch.randn(2, 64, 5, 12)
    gate = module.channel_gate
    with torch.no_grad():
        expected = gate.fc2(gate.act(gate.bn(gate.fc1(x.mean((2, 3))))))
        torch.testing.assert_close(gate(x)[:, :, 0, 0], expected)


def test_cbam_pools_channels_in_the_official_max_then_mean_order():
    module = CBAMModule(32).eval()
    with torch.no_grad():
        module.spatial_gate.conv.weight.zero_()
        module.spatial_gate.conv.weight[0, 0, 3, 3] = 1.0  # the centre tap of input channel 0 only
        module.spatial_gate.bn.weight.fill_(1.0)
    x = torch.randn(1, 32, 5, 5)
    with torch.no_grad():
        gated = module.channel_gate(x)
        expected = gated * torch.sigmoid(module.spatial_gate.bn(gated.amax(1, keepdim=True)))
        torch.testing.assert_close(module(x), expected)


# ---- initialisation ----

def test_official_initialisations():
    cbam, bam, sa, sge = CBAMModule(64), BAMModule(64), ShuffleAttentionModule(256), SGEModule(128)
    assert torch.equal(cbam.spatial_gate.bn.weight, torch.zeros(1))
    assert not cbam.channel_gate.fc1.bias.any() and not cbam.channel_gate.fc2.bias.any()
    assert all(not m.bias.any() for m in bam.modules() if isinstance(m, (nn.Linear, nn.Conv2d)))
    assert not sa.cweight.any() and not sa.sweight.any() and (sa.cbias == 1).all() and (sa.sbias == 1).all()
    assert sge.weight.shape == sge.bias.shape == (1, 64, 1, 1)
    assert not sge.weight.any() and (sge.bias == 1).all()


def test_polarized_query_and_value_convolutions_start_kaiming_with_fan_in():
    module = PolarizedAttentionModule(512)
    std = module.spatial_value.weight.std().item()
    assert abs(std - (2 / 512) ** 0.5) < 0.03 * (2 / 512) ** 0.5  # fan out would give (2 / 256) ** 0.5
