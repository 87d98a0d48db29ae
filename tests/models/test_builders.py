"""The zoo's models: sizes, costs, constructors, key layout, errors."""
import os
import re
from pathlib import Path

import pytest
import timm
import torch

import epsanet
from epsanet import count_macs, count_params

PARAMS = {
    "epsanet50_small": 22_561_715,
    "epsanet101_small": 38_900_279,
    "epsanet50_large": 30_100_094,
    "epsanet101_large": 53_742_470,
    "epsanet50": 22_561_715,
    "epsanet101": 38_900_279,
    "se_resnet50": 28_088_024,
    "se_resnet101": 49_326_872,
    "eca_resnet50": 25_557_112,
}


@pytest.mark.parametrize("name, params", PARAMS.items())
def test_parameter_count(name, params):
    assert count_params(epsanet.create_model(name, device="meta")) == params


@pytest.mark.parametrize("name, gmacs", [("epsanet50_small", 3.60), ("epsanet101_small", 6.79)])
def test_multiply_accumulates_at_224(name, gmacs):
    assert round(count_macs(epsanet.create_model(name, device="meta")) / 1e9, 2) == gmacs


def test_epsanet_small_follows_the_official_key_layout():
    import json

    from common import OFFICIAL

    layout = json.loads((OFFICIAL / "layout_epsanet50.json").read_text())
    expected = {e["key"]: tuple(e["shape"]) for e in layout["entries"]}
    ours = {k: tuple(v.shape) for k, v in epsanet.epsanet50_small(device="meta").state_dict().items()}
    assert ours == expected


def test_large_doubles_the_bottleneck_width_and_uses_32_groups_per_branch():
    block = epsanet.epsanet50_large(device="meta").layer1[0]
    assert block.conv1.out_channels == 128 and block.conv3.out_channels == 256
    assert [getattr(block.conv2, f"conv_{i}").groups for i in range(1, 5)] == [32, 32, 32, 32]


def test_attention_sits_under_its_own_name_after_bn3():
    se_keys = epsanet.se_resnet50(device="meta").state_dict()
    eca_keys = epsanet.eca_resnet50(device="meta").state_dict()
    assert "layer1.0.se.fc1.weight" in se_keys and "layer4.2.se.fc2.bias" in se_keys
    assert [tuple(eca_keys[f"layer{i}.0.eca.conv.weight"].shape) for i in range(1, 5)] == [
        (1, 1, 3), (1, 1, 5), (1, 1, 5), (1, 1, 7)]


def test_eca_resnet101_uses_the_released_per_stage_kernels():
    model = epsanet.eca_resnet101(device="meta")
    assert [getattr(model, f"layer{i}")[0].eca.conv.kernel_size[0] for i in range(1, 5)] == [3, 3, 5, 7]


def test_se_resnet50_has_timm_seresnet50_state_dict():
    ours = {k: v.shape for k, v in epsanet.se_resnet50(device="meta").state_dict().items()}
    theirs = {k: v.shape for k, v in timm.create_model("seresnet50", device="meta").state_dict().items()}
    assert ours == theirs


def test_se_resnet50_computes_what_timm_seresnet50_computes():
    theirs = timm.create_model("seresnet50").eval()
    ours = epsanet.se_resnet50().eval()
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(1, 3, 96, 80)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x))


@pytest.mark.parametrize("name", ["epsanet50_small", "se_resnet50", "eca_resnet50"])
def test_forward_backward_on_a_non_square_input(name):
    model = epsanet.create_model(name, num_classes=7)
    out = model(torch.randn(2, 3, 97, 130))
    assert out.shape == (2, 7)
    out.logsumexp(1).mean().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_torchvision_style_builder_takes_keyword_only_weights_and_progress():
    import inspect

    sig = inspect.signature(epsanet.epsanet50_small)
    assert sig.parameters["weights"].kind is inspect.Parameter.KEYWORD_ONLY
    assert sig.parameters["progress"].default is True
    with pytest.raises(TypeError):
        epsanet.epsanet50_small(None)


def test_torchvision_get_model_weights_finds_the_enum_from_the_annotation():
    from torchvision.models import get_model_weights

    assert get_model_weights(epsanet.se_resnet50) is epsanet.SE_ResNet50_Weights
    assert epsanet.SE_ResNet50_Weights.DEFAULT is epsanet.SE_ResNet50_Weights.IMAGENET1K_A1


def test_asking_epsanet_for_weights_says_none_exist_yet():
    with pytest.raises(ValueError, match="no pretrained weights exist for EPSANet50_Small_Weights"):
        epsanet.epsanet50_small(weights="IMAGENET1K_V1")


@pytest.mark.parametrize("builder", [epsanet.epsanet50_small, epsanet.se_resnet50])
@pytest.mark.parametrize("weights", ["runs/tiny/bset", "./nowhere", "~nowhere", "nowhere.pth", Path("nowhere")])
def test_weights_at_a_path_that_does_not_exist_say_so(builder, weights, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    message = f"^weights {re.escape(os.fspath(weights))} does not exist: check the path, or pass a hub folder"
    with pytest.raises(epsanet.PathNotFoundError, match=message):
        builder(weights=weights)


def test_weights_from_timm_at_a_path_that_does_not_exist_say_so(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(epsanet.PathNotFoundError, match="^checkpoint runs/tiny/best.pth does not exist"):
        timm.create_model("epsanet50_small", pretrained=True, pretrained_cfg_overlay=dict(file="runs/tiny/best.pth"))


def test_unknown_weights_name_lists_the_choices():
    with pytest.raises(ValueError, match="choose one of IMAGENET1K_A1, IMAGENET1K_A2"):
        epsanet.se_resnet50(weights="IMAGENET1K_V9")


def test_unknown_model_name_suggests_close_names():
    with pytest.raises(ValueError, match="unknown model 'epsanet50_smal': did you mean epsanet50_small"):
        epsanet.create_model("epsanet50_smal")


def test_unknown_constructor_argument_raises_type_error():
    with pytest.raises(TypeError):
        epsanet.epsanet50_small(not_an_argument=1)


def test_aliases_build_the_small_models():
    assert repr(epsanet.epsanet50(device="meta")) == repr(epsanet.epsanet50_small(device="meta"))
    assert count_params(epsanet.epsanet101(device="meta")) == PARAMS["epsanet101_small"]


def test_every_zoo_model_is_registered_with_timm_under_the_same_name():
    assert set(epsanet.list_models()) <= set(timm.list_models())
    model = timm.create_model("epsanet50_small", num_classes=0, device="meta")
    assert model.num_features == 2048 and model.num_classes == 0


def test_no_zoo_name_collides_with_a_timm_model():
    import timm.models._registry as registry

    zoo_modules = {"epsanet", "attention_resnet"}
    assert all(registry._model_to_module[name] in zoo_modules for name in epsanet.list_models())


def test_features_only_gives_five_levels_at_strides_2_to_32():
    model = timm.create_model("epsanet50_small", features_only=True)
    feats = model(torch.randn(1, 3, 64, 96))
    assert [f.shape[1:] for f in feats] == [
        (64, 32, 48), (256, 16, 24), (512, 8, 12), (1024, 4, 6), (2048, 2, 3)]
    assert model.feature_info.reduction() == [2, 4, 8, 16, 32]


def test_timm_create_model_takes_the_usual_arguments():
    model = timm.create_model("epsanet50_small", num_classes=5, in_chans=1, drop_rate=0.2,
                              drop_path_rate=0.1, global_pool="max")
    assert model(torch.randn(2, 1, 64, 64)).shape == (2, 5)
    assert model.conv1.in_channels == 1 and model.drop_rate == 0.2
    assert model.layer4[2].drop_path is not None


def test_pretrained_cfg_carries_the_catalogue_metadata():
    cfg = epsanet.epsanet50_small(device="meta").pretrained_cfg
    assert cfg["paper_ids"] == "arXiv:2105.14447" and cfg["license"] == "mit"
    assert cfg["input_size"] == (3, 224, 224) and cfg["classifier"] == "fc" and cfg["first_conv"] == "conv1"
