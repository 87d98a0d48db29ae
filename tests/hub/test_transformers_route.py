"""The Hugging Face transformers route: a model trained with `epsanet train` (hub folder with
label names), published with `epsanet publish` to the local Hub server (olah), loads through
`transformers.pipeline("image-classification")` and `AutoModelForImageClassification`, and
predicts what `epsanet eval` predicts on the same images.

The repository is downloaded from the local Hub, then read offline: transformers probes for a
`processor_config.json`, which the Hub answers with 404 (EntryNotFound) but olah with 401, which
transformers takes for a missing repository. Offline, the probe is a cache miss, as on the Hub.
"""
import json
from pathlib import Path

import huggingface_hub
import huggingface_hub.constants
import pytest
import torch
from digits import train_args, write_digits_folder
from timm.data import create_transform, resolve_data_config

import epsanet
from epsanet.cli import main
from epsanet.training.data import build_dataset

transformers = pytest.importorskip("transformers", reason="the transformers route needs epsanet[transformers]")

REPO_ID = "epsanet-tests/tiny-digits-transformers"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny EPSANet trained one epoch on three digit classes; its hub folder and the data."""
    root = tmp_path_factory.mktemp("transformers_route")
    data = write_digits_folder(root / "digits")
    assert main(train_args(data, root / "run", "--epochs", "1", "--img-size", "24", "--crop-pct", "0.875")) == 0
    return root / "run" / "best", data


@pytest.fixture(scope="module")
def published(trained, local_hub):
    """REPO_ID, published and downloaded into the Hugging Face cache."""
    folder, _ = trained
    epsanet.publish(folder, REPO_ID, endpoint=local_hub.upload_url)
    snapshot = Path(huggingface_hub.snapshot_download(REPO_ID))
    assert {"README.md", "config.json", "model.safetensors"} <= {p.name for p in snapshot.iterdir()}
    return REPO_ID


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def val_images(data: Path) -> list:
    dataset = build_dataset(data, "val")
    return [(path, dataset.classes[target]) for path, target in dataset.samples]


def test_the_saved_config_carries_label_names_and_no_duplicate_num_classes(trained):
    config = json.loads((trained[0] / "config.json").read_text())
    assert config["label_names"] == ["0", "1", "2"] and config["num_classes"] == 3
    assert "num_classes" not in config["model_args"]


def test_a_hub_folder_loads_in_auto_model_for_image_classification_with_identical_logits(trained):
    folder, _ = trained
    reference = epsanet.from_pretrained(folder).eval()
    model = transformers.AutoModelForImageClassification.from_pretrained(str(folder)).eval()
    assert model.config.id2label == {0: "0", 1: "1", 2: "2"}
    x = torch.randn(2, 3, 24, 24)
    with torch.no_grad():
        torch.testing.assert_close(model(pixel_values=x).logits, reference(x))


def test_the_pipeline_of_the_published_model_predicts_what_epsanet_eval_predicts(trained, published, offline,
                                                                                  tmp_path):
    folder, data = trained
    classifier = transformers.pipeline("image-classification", model=published)
    images = val_images(data)
    predictions = classifier([str(path) for path, _ in images], top_k=1)
    pipeline_labels = [p[0]["label"] for p in predictions]

    reference = epsanet.from_pretrained(folder).eval()
    transform = create_transform(**resolve_data_config(model=reference))
    dataset = build_dataset(data, "val", transform)
    with torch.no_grad():
        logits = reference(torch.stack([dataset[i][0] for i in range(len(dataset))]))
    assert pipeline_labels == [dataset.classes[i] for i in logits.argmax(1).tolist()]
    assert len(set(pipeline_labels)) > 1  # a model that says one class for everything would prove little

    assert main(["eval", "--model", str(folder), "--data", str(data), "--workers", "0", "--output-dir",
                 str(tmp_path / "eval")]) == 0
    eval_top1 = json.loads((tmp_path / "eval" / "results.json").read_text())["top1"]
    pipeline_top1 = 100 * sum(label == truth for label, (_, truth) in zip(pipeline_labels, images)) / len(images)
    assert pipeline_top1 == pytest.approx(eval_top1, abs=1e-4)


def test_auto_model_loads_the_published_model_with_its_label_names(published, offline):
    model = transformers.AutoModelForImageClassification.from_pretrained(published)
    assert type(model).__name__ == "TimmWrapperForImageClassification"
    assert model.config.id2label == {0: "0", 1: "1", 2: "2"}
