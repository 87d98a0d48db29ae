"""The weights catalogue (epsanet/weights/catalogue.toml): real entries only, one source for timm's
default_cfgs, the torchvision-style enums and epsanet.list_pretrained."""
import json

import pytest
import timm
import torchvision
from PIL import Image

import epsanet
from epsanet.cli import main
from epsanet.weights.catalogue import weights_entries

# timm's own record of its seresnet50 weights: results/results-imagenet.csv (top-1, top-5 at the
# weights' test size and crop).
TIMM_RESULTS = {"a1_in1k": (81.102, 95.120), "a2_in1k": (81.106, 95.222), "a3_in1k": (77.028, 93.074),
                "ra2_in1k": (81.284, 95.652)}


def as_tuple(value):
    return tuple(value) if isinstance(value, (list, tuple)) else value


@pytest.mark.parametrize("tag", TIMM_RESULTS)
def test_se_resnet50_entries_are_timms_seresnet50_weights_with_timms_numbers(tag):
    ours = epsanet.weights.catalogue.find_weights("se_resnet50", tag)
    theirs = timm.models.get_pretrained_cfg(f"seresnet50.{tag}").to_dict()
    assert ours.cfg["hf_hub_id"] == theirs["hf_hub_id"] == f"timm/seresnet50.{tag}"
    for key in ("input_size", "test_input_size", "crop_pct", "test_crop_pct", "interpolation", "pool_size",
                "mean", "std", "license"):
        assert as_tuple(ours.cfg.get(key)) == as_tuple(theirs.get(key)), key
    assert (ours.top1, ours.top5) == TIMM_RESULTS[tag]


def test_every_entry_says_where_it_comes_from_what_it_scores_its_licence_and_citation():
    for entry in weights_entries():
        assert entry.source.startswith(("hf-hub:", "https://")), entry.name
        assert entry.top1 and entry.top5 and entry.metrics_source.startswith("https://"), entry.name
        assert entry.cfg["license"] and entry.citation.startswith("@"), entry.name


def test_no_epsanet_weights_are_catalogued_because_none_exist():
    assert [e for e in weights_entries() if e.model.startswith("epsanet")] == []
    assert not epsanet.EPSANet50_Small_Weights.__members__


def test_list_pretrained_matches_timm_and_the_enums():
    assert epsanet.list_pretrained("se_resnet50*") == timm.list_pretrained("se_resnet50*") == [
        "se_resnet50.a1_in1k", "se_resnet50.a2_in1k", "se_resnet50.a3_in1k", "se_resnet50.ra2_in1k"]
    members = epsanet.SE_ResNet50_Weights.__members__
    timm_names = [m.meta["timm_name"] for name, m in members.items() if name != "DEFAULT"]
    assert timm_names == epsanet.list_pretrained("se_resnet50*")
    assert members["IMAGENET1K_RA2"].meta["_metrics"]["ImageNet-1K"] == {"acc@1": 81.284, "acc@5": 95.652}


def test_weights_fetched_by_hand_are_listed_on_request():
    assert "eca_resnet50.k3557_in1k" not in epsanet.list_pretrained()
    assert epsanet.list_pretrained("eca*", include_by_hand=True) == [
        "eca_resnet50.k3557_in1k", "eca_resnet101.k3357_in1k"]
    assert epsanet.ECA_ResNet50_Weights.IMAGENET1K_K3557.meta["fetch_url"].startswith("https://drive.google.com/")


BY_HAND_STEPS = ("weights eca_resnet50.k3557_in1k must be fetched by hand: download eca_resnet50_k3557.pth.tar from "
                 "https://drive.google.com/open?id=1670rce333c_lyMWFzBlNZoVUvtxbCF_U, convert it with `epsanet convert "
                 "eca_resnet50_k3557.pth.tar --model eca_resnet50 --tag k3557_in1k --out DIR`, then load DIR with ")


@pytest.mark.parametrize("load", [
    lambda: epsanet.eca_resnet50(weights="IMAGENET1K_K3557"),
    lambda: epsanet.eca_resnet50(weights=epsanet.ECA_ResNet50_Weights.IMAGENET1K_K3557),
    lambda: epsanet.ECA_ResNet50_Weights.IMAGENET1K_K3557.get_state_dict(),
    lambda: torchvision.models.get_model("eca_resnet50", weights="k3557_in1k"),
], ids=["by-name", "by-member", "get_state_dict", "torchvision-get_model"])
def test_weights_fetched_by_hand_say_where_to_get_them_and_how_to_load_them_in_python(load):
    with pytest.raises(epsanet.HubError) as info:
        load()
    assert str(info.value) == BY_HAND_STEPS + ("epsanet.eca_resnet50(weights='DIR') (torch.hub: "
                                               "torch.hub.load(REPO, 'eca_resnet50', weights='DIR'))")


def test_weights_fetched_by_hand_say_how_to_load_them_with_timm():
    with pytest.raises(epsanet.HubError) as info:
        timm.create_model("eca_resnet50.k3557_in1k", pretrained=True)
    load = "timm.create_model('local-dir:DIR', pretrained=True) after `import epsanet`"
    assert str(info.value) == BY_HAND_STEPS + load


@pytest.mark.parametrize("command, route", [
    (["eval", "--model", "eca_resnet50", "--pretrained", "k3557_in1k", "--output-dir", "{tmp}/run"], "`--model DIR`"),
    (["predict", "{tmp}/x.png", "--model", "eca_resnet50", "--pretrained", "k3557_in1k"], "`--model DIR`"),
    (["train", "--model", "eca_resnet50", "--pretrained", "k3557_in1k", "--output-dir", "{tmp}/run"],
     "`--pretrained DIR`"),
], ids=["eval", "predict", "train"])
def test_weights_fetched_by_hand_say_how_to_use_them_on_the_command_line(command, route, capsys, tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "x.png")
    assert main([arg.format(tmp=tmp_path) for arg in command]) == 2
    assert capsys.readouterr().err == f"epsanet {command[0]}: error: {BY_HAND_STEPS}{route}\n"
    assert not (tmp_path / "run").exists()


def test_the_baidu_extraction_code_is_part_of_the_instructions():
    with pytest.raises(epsanet.HubError, match=r"https://pan.baidu.com/s/11bb2XBGkTqIoOunaSXOOTg \(extraction code "
                                               r"gxo9\), convert it"):
        epsanet.sge_resnet50(weights="official_in1k")


def test_an_alias_shares_its_models_weights_tags():
    cfgs = epsanet.weights.catalogue.timm_default_cfgs()
    assert "epsanet50" in cfgs and "epsanet50_small" in cfgs
    assert epsanet.weights.catalogue.canonical_model("epsanet101") == "epsanet101_small"


def test_weights_command_prints_the_catalogue(capsys):
    assert main(["weights", "--format", "markdown"]) == 0
    table = capsys.readouterr().out
    assert ("| se_resnet50.a1_in1k | 81.102 | 95.12 | 288 (1.0) | `hf-hub:timm/seresnet50.a1_in1k` "
            "| Apache-2.0 |") in table
    assert "| eca_resnet50.k3557_in1k | 77.42 | 93.62 | 224 (0.875) | by hand: https://drive.google.com/" in table
    assert main(["weights", "eca*", "--json"]) == 0
    assert [r["fetch"] for r in json.loads(capsys.readouterr().out)] == ["by hand", "by hand"]
