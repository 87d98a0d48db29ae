"""The fast PSA module computes the official formulation: same parameters, same outputs and gradients."""
import copy

import pytest
import torch
import torch.nn.functional as F
from common import relative_error

import epsanet
from epsanet.layers import PSAModule, ReferencePSAModule
from epsanet.layers.psa import branch_conv_candidates, branch_conv_plan, grouped_conv2d

SMALL, LARGE = (1, 4, 8, 16), (32, 32, 32, 32)

# (in_channels, groups, input size, stride, batch): the stage shapes of EPSANet Small and Large,
# shrunk to small spatial sizes, with the strided first blocks and batch sizes 1, 2 and 3.
SHAPES = [
    (64, SMALL, 14, 1, 2),
    (128, SMALL, 15, 2, 1),
    (256, SMALL, 7, 1, 3),
    (128, LARGE, 12, 1, 2),
    (256, LARGE, 9, 2, 1),
]



def twin_modules(in_channels, groups, stride, dtype=torch.float32, dilation=1):
    kwargs = dict(groups=groups, stride=stride, dilation=dilation, se_reduction=4)
    reference = ReferencePSAModule(in_channels, **kwargs).to(dtype)
    fast = PSAModule(in_channels, **kwargs).to(dtype)
    fast.load_state_dict(reference.state_dict())
    return reference, fast


def outputs_and_gradients(module, x, probe):
    x = x.detach().requires_grad_()
    out = module(x)
    grads = torch.autograd.grad((out * probe).sum(), [x, *module.parameters()])
    return out, grads


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
@pytest.mark.parametrize("in_channels, groups, size, stride, batch", SHAPES)
def test_fast_psa_matches_the_official_formulation_in_float32(in_channels, groups, size, stride, batch,
                                                             channels_last):
    reference, fast = twin_modules(in_channels, groups, stride)
    x = torch.randn(batch, in_channels, size, size)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    probe = torch.randn_like(reference(x))
    expected, expected_grads = outputs_and_gradients(reference, x, probe)
    actual, actual_grads = outputs_and_gradients(fast, x, probe)
    assert relative_error(actual, expected) < 1e-5
    # Input and branch-weight gradients are well conditioned in float32; the SE gate's are sums
    # that cancel almost exactly, so the next test checks them in float64.
    for actual_grad, expected_grad in zip(actual_grads[:5], expected_grads[:5]):
        assert relative_error(actual_grad, expected_grad) < 1e-5


def every_plan(in_channels, groups):
    """Plans that, together, run every candidate computation of every branch in both layouts."""
    candidates = [branch_conv_candidates(in_channels // g, in_channels // 4 // g, g) for g in groups]
    return [(channels_last, [c[i % len(c)] for c in candidates])
            for channels_last in (False, True) for i in range(max(len(c) for c in candidates))]


def assert_every_plan_matches(monkeypatch, reference, fast, x, plans, same_layout=True):
    """Forcing each plan in turn, the fast module's output and its gradients (input and weights)
    equal the reference formulation's to 1e-5 relative error; with ``same_layout``, the output also
    keeps the input's memory format."""
    probe = torch.randn_like(reference(x))
    expected, expected_grads = outputs_and_gradients(reference, x, probe)
    layout = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
    for plan in plans:
        monkeypatch.setattr(PSAModule, "_plan", lambda self, x, plan=plan: plan)
        actual, actual_grads = outputs_and_gradients(fast, x, probe)
        assert not same_layout or actual.is_contiguous(memory_format=layout), plan
        assert relative_error(actual, expected) < 1e-5, plan
        for actual_grad, expected_grad in zip(actual_grads[:5], expected_grads[:5]):
            assert relative_error(actual_grad, expected_grad) < 1e-5, plan


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
@pytest.mark.parametrize("in_channels, groups, size, stride, batch, dilation", [
    (64, SMALL, 9, 1, 2, 1),
    (64, SMALL, 9, 2, 1, 2),
    (128, LARGE, 8, 1, 2, 1),
    (128, LARGE, 7, 2, 1, 3),
    pytest.param(256, SMALL, 7, 1, 3, 1, marks=pytest.mark.slow),
    pytest.param(512, SMALL, 7, 2, 2, 1, marks=pytest.mark.slow),
    pytest.param(256, LARGE, 9, 2, 1, 1, marks=pytest.mark.slow),
    pytest.param(512, LARGE, 5, 1, 2, 2, marks=pytest.mark.slow),
])
def test_every_plan_matches_the_official_formulation_forward_and_backward(monkeypatch, in_channels, groups, size,
                                                                          stride, batch, dilation, channels_last):
    reference, fast = twin_modules(in_channels, groups, stride, dilation=dilation)
    x = torch.randn(batch, in_channels, size, size)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    assert_every_plan_matches(monkeypatch, reference, fast, x, every_plan(in_channels, groups))


@pytest.mark.parametrize("in_channels, groups, size, stride, batch", SHAPES)
def test_fast_psa_gradients_equal_the_official_formulation_for_every_parameter_in_float64(in_channels, groups, size,
                                                                               stride, batch):
    reference, fast = twin_modules(in_channels, groups, stride, torch.float64)
    x = torch.randn(batch, in_channels, size, size, dtype=torch.float64)
    probe = torch.randn_like(reference(x))
    _, expected_grads = outputs_and_gradients(reference, x, probe)
    _, actual_grads = outputs_and_gradients(fast, x, probe)
    for actual_grad, expected_grad in zip(actual_grads, expected_grads):
        assert relative_error(actual_grad, expected_grad) < 1e-9


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_a_model_with_fast_psa_is_as_exact_as_the_official_formulation(train):
    # Sixteen blocks (and in train mode, batch statistics over 2 images) amplify float32 rounding
    # to ~5e-5 for either formulation, so both are measured against the official one in float64.
    fast = epsanet.create_model("epsanet50_small", num_classes=10, zero_init_last=False)
    reference = epsanet.create_model("epsanet50_small", num_classes=10, zero_init_last=False,
                                     psa_layer="psa_reference")
    reference.load_state_dict(fast.state_dict())
    exact = copy.deepcopy(reference).double()
    x = torch.randn(2, 3, 64, 64)
    for model in (fast, reference, exact):
        model.train(train)
    with torch.no_grad():
        truth = exact(x.double())
        fast_error, reference_error = relative_error(fast(x), truth), relative_error(reference(x), truth)
    assert fast_error < 1e-4 and fast_error < 1.5 * reference_error


def test_fast_and_reference_psa_share_one_state_dict_layout():
    fast = epsanet.create_model("epsanet50_small", device="meta").state_dict()
    reference = epsanet.create_model("epsanet50_small", device="meta", psa_layer="psa_reference").state_dict()
    assert {k: v.shape for k, v in fast.items()} == {k: v.shape for k, v in reference.items()}
    assert type(epsanet.create_model("epsanet50_small", device="meta").layer1[0].conv2) is PSAModule


@pytest.mark.parametrize("method, groups_to_run", [("native", 8), ("native", 2), ("native", 1), ("depthwise", 8)])
def test_every_branch_computation_equals_the_grouped_convolution(method, groups_to_run):
    x = torch.randn(2, 32, 11, 13, dtype=torch.float64)
    weight = torch.randn(16, 4, 5, 5, dtype=torch.float64)  # 8 groups of 4 inputs and 2 outputs
    expected = F.conv2d(x, weight, None, 2, 4, 2, 8)
    actual = grouped_conv2d(x, weight, 8, 2, 4, 2, method, groups_to_run)
    assert actual.shape == expected.shape
    assert relative_error(actual, expected) < 1e-12


@pytest.mark.parametrize("in_per_group, out_per_group, groups, kernel, dtype, plan", [
    (64, 16, 1, 3, torch.float32, ("native", 1)),         # dense branch
    (16, 4, 4, 5, torch.float32, ("native", 4)),          # wide groups run natively
    (8, 2, 8, 7, torch.float32, ("native", 4)),           # thin groups merge to 16 inputs
    (4, 1, 16, 9, torch.float32, ("depthwise", 16)),      # one output per group, large kernel
    (4, 1, 32, 3, torch.float32, ("native", 8)),
    (16, 4, 8, 7, torch.bfloat16, ("native", 4)),         # AMX blocks hold 32 bf16 channels
    (4, 1, 16, 9, torch.bfloat16, ("native", 2)),
])
def test_cpu_plan_follows_the_measured_rule(in_per_group, out_per_group, groups, kernel, dtype, plan):
    assert branch_conv_plan(in_per_group, out_per_group, groups, kernel, "cpu", dtype) == plan


def test_other_devices_keep_the_native_grouped_convolution():
    assert branch_conv_plan(4, 1, 16, 9, "cuda", torch.float16) == ("native", 16)
    assert branch_conv_plan(4, 1, 16, 9, "meta", torch.float32) == ("native", 16)
    assert branch_conv_plan(4, 1, 16, 9, "cpu", torch.float64) == ("native", 16)


def test_the_model_counts_its_architectural_multiply_adds_on_cpu_too():
    model = epsanet.create_model("epsanet50_small")
    assert round(epsanet.count_macs(model) / 1e9, 2) == 3.60


def test_fast_psa_compiles_as_one_graph():
    psa = PSAModule(64, se_reduction=4)
    compiled = torch.compile(psa, backend="eager", fullgraph=True)  # fullgraph: a graph break raises
    x = torch.randn(2, 64, 14, 14)
    torch.testing.assert_close(compiled(x), psa(x))
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), psa(x))


def test_timm_feature_extraction_traces_the_model_around_the_psa_modules():
    from timm.models._features_fx import create_feature_extractor

    model = epsanet.create_model("epsanet50_small").eval()
    extractor = create_feature_extractor(model, {"layer2": "c3", "layer4": "c5"})
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        features = extractor(x)
        torch.testing.assert_close(features["c5"], model.forward_features(x))
    assert features["c3"].shape == (1, 512, 8, 8)


@pytest.fixture(scope="module")
def model_with_trained_batchnorms():
    model = epsanet.create_model("epsanet50_small", num_classes=10).eval()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.normal_(0, 0.2)
            module.running_var.uniform_(0.5, 2.0)
            torch.nn.init.normal_(module.weight, 1.0, 0.2)
            torch.nn.init.normal_(module.bias, 0.0, 0.2)
    return model


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
def test_deploy_folds_every_batchnorm_and_keeps_the_outputs(model_with_trained_batchnorms, channels_last):
    model = model_with_trained_batchnorms
    deployed = epsanet.deploy(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in deployed.modules())
    assert deployed.layer1[0].conv2.out_scale.shape == (1, 64, 1, 1)
    assert isinstance(model.layer1[0].bn2, torch.nn.BatchNorm2d)  # the original is untouched
    x = torch.randn(1, 3, 64, 64)
    if channels_last:
        deployed = deployed.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        assert relative_error(deployed(x), model(x)) < 1e-5


def test_deployed_model_scripts_with_the_same_outputs(model_with_trained_batchnorms):
    deployed = epsanet.deploy(model_with_trained_batchnorms)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert relative_error(torch.jit.script(deployed)(x), model_with_trained_batchnorms(x)) < 1e-5


def test_a_batchnorm_is_folded_into_a_psa_module_once():
    psa, bn = PSAModule(64, se_reduction=4), torch.nn.BatchNorm2d(64).eval()
    psa.fold_batchnorm(bn)
    with pytest.raises(ValueError, match="already holds a folded BatchNorm"):
        psa.fold_batchnorm(bn)


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (benchmarks/device_check.sh)")


@cuda
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
@pytest.mark.parametrize("in_channels, groups, size, stride", [(64, SMALL, 14, 1), (128, LARGE, 12, 2)])
def test_every_plan_matches_the_official_formulation_on_cuda(monkeypatch, in_channels, groups, size, stride,
                                                             channels_last):
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    reference, fast = (m.cuda() for m in twin_modules(in_channels, groups, stride))
    x = torch.randn(2, in_channels, size, size, device="cuda")
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    assert_every_plan_matches(monkeypatch, reference, fast, x, every_plan(in_channels, groups), same_layout=False)


@cuda
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_autotuned_psa_under_cuda_autocast_matches_the_official_formulation(monkeypatch, tmp_path, dtype):
    monkeypatch.setenv("EPSANET_AUTOTUNE", "1")
    monkeypatch.setenv("EPSANET_CACHE_DIR", str(tmp_path))
    reference, fast = (m.cuda() for m in twin_modules(64, SMALL, 1))
    x = torch.randn(4, 64, 28, 28, device="cuda")
    with torch.autocast("cuda", dtype=dtype), torch.no_grad():
        assert relative_error(fast(x), reference(x)) < 2e-2
