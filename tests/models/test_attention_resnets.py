"""The attention ResNets of issue #3: sizes, placement, official checkpoints, constructors."""
import official_reference as ref
import pytest
import timm
import torch

import epsanet
from epsanet import count_params
from epsanet.layers import BAMModule, CBAMModule, PolarizedAttentionModule
from epsanet.weights.checkpoint import from_official_layout

RESNET50, RESNET101 = (3, 4, 6, 3), (3, 4, 23, 3)
PARAMS = {
    "cbam_resnet50": 28_089_624,
    "cbam_resnet101": 49_330_172,
    "bam_resnet50": 25_915_099,
    "bam_resnet101": 44_907_227,
    "sa_resnet50": 25_557_740,
    "sa_resnet101": 44_550_684,
    "polarized_resnet50": 65_811_240,
    "polarized_seq_resnet50": 59_544_648,
    "sge_resnet50": 25_559_080,
    "sge_resnet101": 44_553_384,
    "coord_resnet50": 27_474_864,
    "gam_resnet50": 158_905_704,
    "ema_resnet50": 25_755_400,
}
BLOCK_ATTENTION = {"cbam": "cbam_resnet50", "sa": "sa_resnet50", "polarized": "polarized_resnet50",
                   "polarized_seq": "polarized_seq_resnet50", "sge": "sge_resnet50", "coord": "coord_resnet50",
                   "gam": "gam_resnet50", "ema": "ema_resnet50"}


@pytest.mark.parametrize("name, params", PARAMS.items())
def test_parameter_count(name, params):
    assert count_params(epsanet.create_model(name, device="meta")) == params


def test_every_new_model_is_in_the_zoo_and_in_the_catalogue():
    assert set(PARAMS) <= set(epsanet.list_models())
    assert all(epsanet.weights.catalogue.model_info(name)["paper_ids"].startswith("arXiv:") for name in PARAMS)


@pytest.mark.parametrize("attn, name", BLOCK_ATTENTION.items())
def test_block_attention_sits_under_its_name_in_every_bottleneck(attn, name):
    model = epsanet.create_model(name, device="meta")
    blocks = [block for stage in (model.layer1, model.layer2, model.layer3, model.layer4) for block in stage]
    assert len(blocks) == 16 and all(isinstance(getattr(block, attn), torch.nn.Module) for block in blocks)


def test_block_attention_reads_bn3_and_feeds_the_residual_add():
    model = epsanet.cbam_resnet50().eval()
    block, seen = model.layer2[1], {}
    block.bn3.register_forward_hook(lambda m, i, o: seen.__setitem__("bn3", o.clone()))
    block.cbam.register_forward_hook(lambda m, i, o: seen.update(cbam_in=i[0].clone(), cbam_out=o.clone()))
    block.register_forward_hook(lambda m, i, o: seen.update(block_in=i[0].clone(), block_out=o.clone()))
    with torch.no_grad():
        model(torch.randn(1, 3, 64, 64))
    torch.testing.assert_close(seen["cbam_in"], seen["bn3"])
    torch.testing.assert_close(seen["block_out"], torch.relu(seen["cbam_out"] + seen["block_in"]))


@pytest.mark.parametrize("name, layers", [("bam_resnet50", RESNET50), ("bam_resnet101", RESNET101)])
def test_bam_ends_layer1_to_layer3_and_not_layer4(name, layers):
    model = epsanet.create_model(name, device="meta")
    stages = [model.layer1, model.layer2, model.layer3, model.layer4]
    assert [len(stage) for stage in stages] == [layers[0] + 1, layers[1] + 1, layers[2] + 1, layers[3]]
    assert [type(stage[-1]) for stage in stages[:3]] == [BAMModule] * 3
    assert [stage[-1].channel_gate.fc1.in_features for stage in stages[:3]] == [256, 512, 1024]
    assert not any(isinstance(m, BAMModule) for m in model.layer4.modules())


def test_bam_stage_output_is_the_feature_timm_returns_for_that_stage():
    model = timm.create_model("bam_resnet50", features_only=True).eval()
    seen = {}
    model.layer2[4].register_forward_hook(lambda m, i, o: seen.__setitem__("bam2", o.clone()))
    with torch.no_grad():
        features = model(torch.randn(1, 3, 64, 96))
    assert [tuple(f.shape[1:]) for f in features] == [
        (64, 32, 48), (256, 16, 24), (512, 8, 12), (1024, 4, 6), (2048, 2, 3)]
    torch.testing.assert_close(features[2], seen["bam2"])


def test_bam_paper_sum_is_a_constructor_option():
    model = epsanet.bam_resnet50(stage_attn_kwargs=dict(combine="sum"), device="meta")
    assert all(stage[-1].combine_sum for stage in (model.layer1, model.layer2, model.layer3))


def test_gam_resnet50_groups_its_spatial_convolutions_in_four():
    block = epsanet.gam_resnet50(device="meta").layer1[0]
    assert block.gam.spatial_conv1.groups == block.gam.spatial_conv2.groups == 4


def test_attention_keeps_its_official_initialisation_after_timms():
    cbam = epsanet.cbam_resnet50(num_classes=10)
    assert all(not m.spatial_gate.bn.weight.any() for m in cbam.modules() if isinstance(m, CBAMModule))
    polarized = epsanet.polarized_resnet50(num_classes=10).layer4[0].polarized
    assert isinstance(polarized, PolarizedAttentionModule)
    fan_in_std = (2 / 2048) ** 0.5  # timm's fan-out init would give (2 / 1024) ** 0.5
    assert abs(polarized.spatial_value.weight.std().item() - fan_in_std) < 0.02 * fan_in_std


def test_bam_resnet_runs_forward_and_backward_on_an_odd_non_square_input():
    model = epsanet.bam_resnet50(num_classes=7)
    out = model(torch.randn(2, 3, 57, 90))
    assert out.shape == (2, 7)
    out.logsumexp(1).mean().backward()
    assert all(p.grad is not None for p in model.parameters())


# ---- official checkpoints ----

OFFICIAL = {
    "cbam": ("cbam_resnet50", dict(block_attention=ref.cbam, block_attention_name="cbam")),
    "bam": ("bam_resnet50", dict(stage_attention=ref.bam)),
    "sa": ("sa_resnet50", dict(block_attention=ref.shuffle_attention, block_attention_name="sa")),
    "sge": ("sge_resnet50", dict(block_attention=ref.sge, block_attention_name="sge")),
}


@pytest.mark.parametrize("kind", OFFICIAL)
def test_an_official_checkpoint_loads_and_computes_the_official_forward(kind, tmp_path):
    builder, attention = OFFICIAL[kind]
    generator = torch.Generator().manual_seed(0)
    official = ref.random_state(ref.official_shapes(kind, RESNET50), generator)
    path = tmp_path / f"{kind}.pth.tar"
    torch.save({"epoch": 90, "arch": "resnet", "state_dict": {"module." + k: v for k, v in official.items()}}, path)
    model = epsanet.create_model(builder).double().eval()
    assert epsanet.load_checkpoint(model, path) == ([], [])
    x = torch.randn(2, 3, 48, 48, dtype=torch.float64, generator=generator)  # square: official BAM needs it
    with torch.no_grad():
        expected = ref.resnet(x, official, RESNET50, **attention)
        torch.testing.assert_close(model(x), expected, rtol=1e-10, atol=1e-10)


def test_timm_pretrained_weights_may_be_an_official_checkpoint(tmp_path):
    official = ref.random_state(ref.official_shapes("bam", RESNET50), torch.Generator().manual_seed(0))
    path = tmp_path / "RESNET50_IMAGENET_BAM_best.pth.tar"
    torch.save({"state_dict": {"module." + k: v.float() for k, v in official.items()}}, path)
    model = timm.create_model("bam_resnet50", pretrained=True, pretrained_cfg_overlay=dict(file=str(path)))
    assert torch.equal(model.layer2[4].spatial_gate.dilated[1].conv.weight,
                       official["bam2.spatial_att.gate_s.gate_s_conv_di_1.weight"].float())


@pytest.mark.parametrize("kind, name", [("cbam", "cbam_resnet101"), ("bam", "bam_resnet101"),
                                        ("sa", "sa_resnet101"), ("sge", "sge_resnet101")])
def test_official_resnet101_keys_map_onto_the_zoo_model(kind, name):
    official = ref.official_shapes(kind, RESNET101)
    renamed = from_official_layout({k: torch.empty(shape, device="meta") for k, shape in official.items()})
    ours = epsanet.create_model(name, device="meta").state_dict()
    assert {k: tuple(v.shape) for k, v in renamed.items()} == {k: tuple(v.shape) for k, v in ours.items()}


def test_official_bam_modules_move_to_the_end_of_their_stage():
    official = ref.official_shapes("bam", RESNET101)
    renamed = from_official_layout({k: torch.empty(s, device="meta") for k, s in official.items()})
    assert "layer1.3.channel_gate.fc1.weight" in renamed and "layer2.4.spatial_gate.dilated.1.bn.running_var" in renamed
    assert "layer3.23.spatial_gate.project.bias" in renamed and not any(k.startswith("bam") for k in renamed)


def test_the_zoo_layout_passes_through_unchanged():
    state = epsanet.bam_resnet50(device="meta").state_dict()
    assert list(from_official_layout(state)) == list(state)


def test_an_official_bam_key_without_its_stage_is_a_one_line_error():
    with pytest.raises(ValueError, match="official BAM key 'bam2.channel_att.gate_c.gate_c_fc_0.weight' follows "
                                         "stage 2, but the checkpoint has no layer2 blocks"):
        from_official_layout({"bam2.channel_att.gate_c.gate_c_fc_0.weight": torch.zeros(1)})


def test_an_official_cbam_checkpoint_does_not_fit_a_bam_model(tmp_path):
    official = ref.random_state(ref.official_shapes("cbam", RESNET50), torch.Generator().manual_seed(0))
    with pytest.raises(epsanet.CheckpointMismatchError, match="unexpected: layer1.0.cbam.channel_gate.fc1.weight"):
        epsanet.load_checkpoint(epsanet.bam_resnet50(device="meta"), official)


# ---- constructors ----

def test_torchvision_get_model_weights_finds_every_new_enum():
    from torchvision.models import get_model_weights

    assert get_model_weights(epsanet.cbam_resnet50) is epsanet.CBAM_ResNet50_Weights
    assert get_model_weights(epsanet.polarized_seq_resnet50) is epsanet.Polarized_Seq_ResNet50_Weights


def test_asking_for_weights_that_do_not_exist_yet_says_so():
    with pytest.raises(ValueError, match="no pretrained weights exist for Coord_ResNet50_Weights yet"):
        epsanet.coord_resnet50(weights="IMAGENET1K_V1")


def test_timm_create_model_builds_them_with_the_usual_arguments():
    model = timm.create_model("sge_resnet50", num_classes=5, in_chans=1, drop_path_rate=0.1)
    assert model(torch.randn(2, 1, 64, 64)).shape == (2, 5)
    assert model.pretrained_cfg["paper_ids"] == "arXiv:1905.09646" and model.pretrained_cfg["license"] == "unknown"
