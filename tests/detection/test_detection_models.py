"""The detector builders: training and inference on zoo backbones, the FPN, frozen layers, weights."""
import math

import pytest
import timm
import torch
import torchvision
from detection_settings import tiny
from torchvision.ops.misc import FrozenBatchNorm2d

import epsanet
from epsanet.detection import (
    DETECTORS,
    CocoDetection,
    collate,
    detection_transforms,
    fasterrcnn_fpn,
    fpn_backbone,
    maskrcnn_fpn,
    retinanet_fpn,
)

LOSSES = {
    "fasterrcnn_fpn": {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"},
    "maskrcnn_fpn": {"loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness", "loss_rpn_box_reg"},
    "retinanet_fpn": {"classification", "bbox_regression"},
}


def batch(shapes, masks=False, size=2):
    split = shapes["train"]
    dataset = CocoDetection(split["images"], split["annotations"], masks=masks,
                            transforms=detection_transforms(train=True))
    return (list(x) for x in collate([dataset[i] for i in range(size)]))


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_each_detector_trains_with_finite_losses_and_predicts_well_formed_detections(name, shapes):
    model = DETECTORS[name]("epsanet50_small", num_classes=5, **tiny(name))
    images, targets = batch(shapes, masks=name == "maskrcnn_fpn")
    model.train()
    losses = model(images, targets)
    assert set(losses) == LOSSES[name]
    assert all(math.isfinite(v.item()) and v.item() >= 0 for v in losses.values())
    sum(losses.values()).backward()
    assert all(p.grad is not None for p in model.backbone.body.layer4.parameters())

    model.eval()
    with torch.no_grad():
        outputs = model(images)
    assert len(outputs) == len(images)
    for image, out in zip(images, outputs):
        n = len(out["scores"])
        height, width = image.shape[-2:]
        assert out["boxes"].shape == (n, 4) and out["labels"].shape == (n,) and n <= 20
        assert ((out["scores"] >= 0) & (out["scores"] <= 1)).all()
        assert ((out["labels"] >= 1) & (out["labels"] < 5)).all()
        assert (out["boxes"][:, 2:] >= out["boxes"][:, :2]).all()
        assert (out["boxes"][:, 0::2] <= width).all() and (out["boxes"][:, 1::2] <= height).all()
        if name == "maskrcnn_fpn":
            assert out["masks"].shape == (n, 1, height, width)


def test_the_fpn_reads_the_four_stages_at_strides_4_to_32_plus_a_pooled_level():
    fpn = fpn_backbone("epsanet50_small")
    features = fpn(torch.zeros(1, 3, 128, 96))
    assert {k: tuple(v.shape) for k, v in features.items()} == {
        "0": (1, 256, 32, 24), "1": (1, 256, 16, 12), "2": (1, 256, 8, 6), "3": (1, 256, 4, 3), "pool": (1, 256, 2, 2)}
    assert [b[0].in_channels for b in fpn.fpn.inner_blocks] == [256, 512, 1024, 2048]


def test_retinanet_reads_layer2_to_4_and_computes_p6_p7_from_c5():
    model = retinanet_fpn(num_classes=5)
    assert [b[0].in_channels for b in model.backbone.fpn.inner_blocks] == [512, 1024, 2048]
    assert model.backbone.fpn.extra_blocks.p6.in_channels == 2048
    features = model.backbone(torch.zeros(1, 3, 128, 128))
    assert [tuple(v.shape[-2:]) for v in features.values()] == [(16, 16), (8, 8), (4, 4), (2, 2), (1, 1)]


def test_parameter_counts_reproduce_the_papers_when_counted_as_mmdetection_does():
    # The paper (Table 4) counts mmdetection models: 80 classes + background, class-specific box
    # regression for 80 classes (torchvision regresses the background too: 4 x 1025 more
    # parameters), and only trainable parameters, with the stem and layer1 frozen as
    # torchvision's trainable_backbone_layers=3 does (the BatchNorm stays a trainable layer).
    paper = {"fasterrcnn_fpn": 38.56e6, "maskrcnn_fpn": 41.20e6, "retinanet_fpn": 34.78e6}
    torchvision_extra = {"fasterrcnn_fpn": 4 * 1025, "maskrcnn_fpn": 4 * 1025 + 257, "retinanet_fpn": 9 * 2305}
    totals = {}
    for name, builder in DETECTORS.items():
        model = builder(epsanet.epsanet50_small(), num_classes=81, trainable_backbone_layers=3)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        assert round((trainable - torchvision_extra[name]) / 1e4) == round(paper[name] / 1e4)
        totals[name] = epsanet.count_params(model)
    assert totals == {"fasterrcnn_fpn": 38_761_839, "maskrcnn_fpn": 41_405_376, "retinanet_fpn": 34_994_120}


def test_with_resnet50_the_builders_are_torchvisions_detectors():
    ours = fasterrcnn_fpn(timm.create_model("resnet50"), num_classes=91)
    theirs = torchvision.models.detection.fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=91)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in theirs.state_dict().items()}


def test_a_timm_features_only_backbone_gives_the_same_detector_as_the_zoo_name():
    by_name = fasterrcnn_fpn("epsanet50_small", num_classes=5)
    features = timm.create_model("epsanet50_small", features_only=True, out_indices=(1, 2, 3, 4))
    by_features = fasterrcnn_fpn(features, num_classes=5)
    assert {k: v.shape for k, v in by_features.state_dict().items()} == \
        {k: v.shape for k, v in by_name.state_dict().items()}


def test_any_timm_cnn_works_through_features_only(shapes):
    model = retinanet_fpn(timm.create_model("convnext_atto", features_only=True), num_classes=5, **tiny("retinanet"))
    images, targets = batch(shapes)
    losses = model(images, targets)
    assert all(math.isfinite(v.item()) for v in losses.values())


def test_a_model_without_feature_info_is_a_clear_error():
    with pytest.raises(ValueError, match="ResNet has no timm feature_info: pass a zoo model name"):
        fpn_backbone(torchvision.models.resnet18())


@pytest.fixture(scope="module")
def backbone_checkpoint(tmp_path_factory):
    """An epsanet50_small with BatchNorm parameters and statistics as after training (not the
    initial zero scale of each block's last BatchNorm), saved by save_pretrained."""
    model = epsanet.epsanet50_small(num_classes=10)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return epsanet.save_pretrained(model, tmp_path_factory.mktemp("backbone") / "epsanet50_small"), model


def test_backbone_weights_load_from_a_checkpoint_and_freeze_batchnorm_and_early_stages(backbone_checkpoint, shapes):
    folder, source = backbone_checkpoint
    model = fasterrcnn_fpn("epsanet50_small", num_classes=5, weights_backbone=folder, **tiny("fasterrcnn"))
    body = model.backbone.body
    assert torch.equal(body.layer3[0].conv2.conv_4.weight, source.layer3[0].conv2.conv_4.weight)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in body.modules())
    assert sum(isinstance(m, FrozenBatchNorm2d) for m in body.modules()) == 53
    trainable = {name.split(".")[0] for name, p in body.named_parameters() if p.requires_grad}
    assert trainable == {"layer2", "layer3", "layer4"}

    before = {k: v.clone() for k, v in body.state_dict().items()}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model.train()
    images, targets = batch(shapes)
    sum(model(images, targets).values()).backward()
    optimizer.step()
    after = body.state_dict()
    batchnorm = [k for k in before if ".bn" in k or "downsample.1" in k or k.startswith("bn1")]
    assert batchnorm and all(torch.equal(before[k], after[k]) for k in batchnorm)
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith(("conv1", "layer1")))
    assert not torch.equal(before["layer4.0.conv1.weight"], after["layer4.0.conv1.weight"])


def test_backbone_weights_load_from_a_torch_save_file_ignoring_its_classifier(backbone_checkpoint, tmp_path):
    _, source = backbone_checkpoint
    torch.save({"state_dict": source.state_dict()}, tmp_path / "model_best.pth.tar")
    model = maskrcnn_fpn("epsanet50_small", num_classes=5, weights_backbone=tmp_path / "model_best.pth.tar",
                         trainable_backbone_layers=5)
    assert torch.equal(model.backbone.body.layer1[0].conv1.weight, source.layer1[0].conv1.weight)
    assert all(p.requires_grad for p in model.backbone.body.parameters())


def test_a_backbone_checkpoint_of_another_architecture_is_a_one_line_mismatch_error(backbone_checkpoint):
    folder, _ = backbone_checkpoint
    with pytest.raises(epsanet.CheckpointMismatchError, match="missing.*layer1.0.se.fc1.weight") as info:
        fasterrcnn_fpn("se_resnet50", num_classes=5, weights_backbone=folder)
    assert "\n" not in str(info.value)


def test_backbone_weights_by_name_go_through_the_zoo_weights_enum():
    with pytest.raises(ValueError, match="no pretrained weights exist for EPSANet50_Small_Weights yet"):
        fasterrcnn_fpn("epsanet50_small", num_classes=5, weights_backbone="IMAGENET1K_V1")


def test_a_missing_weights_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"backbone weights .*nope.safetensors do not exist"):
        fasterrcnn_fpn("epsanet50_small", num_classes=5, weights_backbone=tmp_path / "nope.safetensors")


def test_without_weights_every_layer_trains_as_in_torchvision():
    with pytest.warns(UserWarning, match="has no effect on a backbone without weights"):
        model = fasterrcnn_fpn("epsanet50_small", num_classes=5, trainable_backbone_layers=2)
    body = model.backbone.body
    assert all(p.requires_grad for p in body.parameters())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in body.modules())


def test_a_model_passed_in_is_frozen_only_where_asked():
    model = fasterrcnn_fpn(epsanet.epsanet50_small(), num_classes=5, trainable_backbone_layers=0)
    assert not any(p.requires_grad for p in model.backbone.body.parameters())
    assert all(p.requires_grad for p in model.backbone.fpn.parameters())
    with pytest.raises(ValueError, match="trainable_layers must be between 0 and 5, got 6"):
        fasterrcnn_fpn(epsanet.epsanet50_small(), num_classes=5, trainable_backbone_layers=6)
