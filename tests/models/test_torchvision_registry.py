"""The zoo in torchvision's model listing after `import epsanet`."""
import torchvision

import epsanet


def test_list_models_includes_every_zoo_model_and_by_module_only_them():
    assert set(epsanet.list_models()) <= set(torchvision.models.list_models())
    assert torchvision.models.list_models(module=epsanet.models) == epsanet.list_models()
    assert "epsanet50_small" not in torchvision.models.list_models(module=torchvision.models)


def test_get_model_builds_a_zoo_model_with_builder_arguments():
    model = torchvision.models.get_model("epsanet50_small", num_classes=10, device="meta")
    assert isinstance(model, epsanet.ResNet) and model.fc.out_features == 10


def test_get_model_weights_is_the_zoo_weights_enum():
    assert torchvision.models.get_model_weights("se_resnet50") is epsanet.SE_ResNet50_Weights
