"""Hub weights against a real Hub-compatible server (olah on 127.0.0.1, see local_hub.py):
save_pretrained -> publish -> from_pretrained / timm / builders / torch.hub, revisions, the cache,
and every failure as a one-line error."""
import json
from pathlib import Path
from types import SimpleNamespace

import huggingface_hub
import huggingface_hub.constants
import pytest
import timm
import torch
from common import REPO
from huggingface_hub import hf_hub_download
from local_hub import free_port
from safetensors.torch import save_file

import epsanet
from epsanet.cli import main
from epsanet.hub import HubError, download_file
from epsanet.hub.timm_errors import install_timm_hub_errors

REPO_ID = "epsanet-tests/epsanet-tiny"
# A small EPSANet (one EPSA block per stage, 64 channels): the same code paths as the full
# model with 1.8 MB of weights, so every test downloads in well under a second.
TINY = dict(layers=[1, 1, 1, 1], channels=[64, 64, 64, 64], num_classes=10)
X = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))


def tiny_epsanet() -> torch.nn.Module:
    return epsanet.epsanet50_small(**TINY).eval()


def logits(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(X)


@pytest.fixture(scope="module")
def published(local_hub, tmp_path_factory):
    """Three tiny EPSANets published to REPO_ID: v1 on main (tagged v1), then v2 on main, and
    exp on the branch exp."""
    root = tmp_path_factory.mktemp("published")
    torch.manual_seed(1)
    models = {version: tiny_epsanet() for version in ("v1", "v2", "exp")}
    folders = {version: epsanet.save_pretrained(model, root / version) for version, model in models.items()}
    shas = {
        "v1": epsanet.publish(folders["v1"], REPO_ID, tag="v1", endpoint=local_hub.upload_url),
        "v2": epsanet.publish(folders["v2"], REPO_ID, endpoint=local_hub.upload_url),
        "exp": epsanet.publish(folders["exp"], REPO_ID, revision="exp", endpoint=local_hub.upload_url),
    }
    return SimpleNamespace(models=models, folders=folders, shas=shas, logits={v: logits(m) for v, m in models.items()})


def point_huggingface_hub_at(monkeypatch, endpoint: str) -> None:
    """What HF_ENDPOINT=endpoint does, for code already imported: huggingface_hub derives its
    download URLs from the endpoint at import."""
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(huggingface_hub.constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                        endpoint + "/{repo_id}/resolve/{revision}/{filename}")


def one_line(error: BaseException) -> str:
    message = str(error)
    assert "\n" not in message
    return message


# --- hub format -----------------------------------------------------------------------------------

def test_save_pretrained_writes_timm_hub_format(tmp_path):
    folder = epsanet.save_pretrained(tiny_epsanet(), tmp_path / "export")
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    config = json.loads((folder / "config.json").read_text())
    assert config["architecture"] == "epsanet50_small" and config["num_classes"] == 10
    # num_classes only at the root: transformers' timm wrapper passes it besides model_args
    assert config["model_args"] == {"layers": [1, 1, 1, 1], "channels": [64, 64, 64, 64], "in_chans": 3,
                                    "global_pool": "avg"}
    assert config["pretrained_cfg"]["license"] == "mit" and config["pretrained_cfg"]["num_classes"] == 10


def test_the_model_card_shows_usage_with_import_epsanet_licence_and_citation(tmp_path):
    card = (epsanet.save_pretrained(tiny_epsanet(), tmp_path / "export") / "README.md").read_text()
    assert card.startswith("---\n") and "library_name: timm\n" in card and "license: mit\n" in card
    assert "import epsanet" in card and 'timm.create_model("hf-hub:ORG/NAME", pretrained=True)' in card
    assert "@inproceedings{zhang2022epsanet" in card


def test_a_local_folder_loads_through_from_pretrained_builders_and_timm(tmp_path):
    model = tiny_epsanet()
    folder = epsanet.save_pretrained(model, tmp_path / "export")
    expected = logits(model)
    for loaded in (epsanet.from_pretrained(folder), epsanet.epsanet50_small(weights=str(folder)),
                   epsanet.epsanet50(weights=folder), timm.create_model(f"local-dir:{folder}", pretrained=True)):
        assert torch.equal(logits(loaded), expected)


def test_hub_weights_serve_feature_extraction_and_other_input_channels(tmp_path):
    model = tiny_epsanet()
    folder = epsanet.save_pretrained(model, tmp_path / "export")
    features = epsanet.from_pretrained(folder, features_only=True, out_indices=(1, 4)).eval()
    with torch.no_grad():
        assert torch.equal(features(X)[1], model.forward_intermediates(X, indices=[4], intermediates_only=True)[0])
    gray = epsanet.from_pretrained(folder, in_chans=1)
    assert torch.allclose(gray.conv1.weight, model.conv1.weight.sum(1, keepdim=True))
    assert torch.equal(gray.layer1[0].conv2.conv_3.weight, model.layer1[0].conv2.conv_3.weight)


def test_a_url_weights_source_is_downloaded_with_its_hash_checked(tmp_path):
    model = tiny_epsanet()
    torch.save(model.state_dict(), tmp_path / "w.pth")
    digest = epsanet.hub.sha256_of(tmp_path / "w.pth")[:8]
    (tmp_path / f"tiny-{digest}.pth").write_bytes((tmp_path / "w.pth").read_bytes())
    (tmp_path / "tiny-deadbeef.pth").write_bytes((tmp_path / "w.pth").read_bytes())
    overlay = dict(url=(tmp_path / f"tiny-{digest}.pth").as_uri(), num_classes=10)
    loaded = epsanet.epsanet50_small(**TINY, pretrained=True, pretrained_cfg_overlay=overlay,
                                     cache_dir=tmp_path / "cache")
    assert torch.equal(logits(loaded), logits(model))
    overlay["url"] = (tmp_path / "tiny-deadbeef.pth").as_uri()
    with pytest.raises(HubError, match='invalid hash value \\(expected "deadbeef"') as info:
        epsanet.epsanet50_small(**TINY, pretrained=True, pretrained_cfg_overlay=overlay, cache_dir=tmp_path / "cache")
    one_line(info.value)


def test_save_pretrained_replaces_an_existing_folder(tmp_path):
    first, second = tiny_epsanet(), tiny_epsanet()
    epsanet.save_pretrained(first, tmp_path / "export")
    epsanet.save_pretrained(second, tmp_path / "export")
    assert torch.equal(logits(epsanet.from_pretrained(tmp_path / "export")), logits(second))
    assert [p.name for p in tmp_path.iterdir()] == ["export"]


def test_a_failed_save_leaves_neither_a_folder_nor_a_temporary_one(tmp_path):
    with pytest.raises(ValueError, match="not serializable"):
        epsanet.save_pretrained(tiny_epsanet(), tmp_path / "export", model_args={"act_layer": torch.nn.ReLU})
    assert list(tmp_path.iterdir()) == []


# --- publish and download -------------------------------------------------------------------------

def test_published_weights_load_to_identical_outputs_through_every_route(published):
    expected = published.logits["v2"]
    routes = {
        "from_pretrained": epsanet.from_pretrained(f"hf-hub:{REPO_ID}"),
        "timm": timm.create_model(f"hf-hub:{REPO_ID}", pretrained=True),
        "builder": epsanet.epsanet50_small(weights=f"hf-hub:{REPO_ID}"),
        "torch.hub": torch.hub.load(str(REPO), "epsanet50_small", source="local", weights=f"hf-hub:{REPO_ID}"),
    }
    for route, model in routes.items():
        assert torch.equal(logits(model), expected), route


def test_the_published_model_card_names_the_repository(published):
    card = Path(hf_hub_download(REPO_ID, "README.md")).read_text()
    assert f'timm.create_model("hf-hub:{REPO_ID}", pretrained=True)' in card and "ORG/NAME" not in card


def test_weights_are_stored_with_git_lfs_and_checked_against_their_sha256(published):
    path = download_file(REPO_ID, "model.safetensors")
    assert path.resolve().name == epsanet.hub.sha256_of(path)


@pytest.mark.parametrize("revision", ["v1", "sha:v1", "main", "exp"])
def test_revisions_pin_a_tag_a_commit_or_a_branch(published, revision):
    version = {"main": "v2"}.get(revision, revision.removeprefix("sha:"))
    pin = published.shas[version] if revision.startswith("sha:") else revision
    model = epsanet.from_pretrained(f"hf-hub:{REPO_ID}@{pin}")
    assert torch.equal(logits(model), published.logits[version])


def test_a_new_head_keeps_the_backbone(published):
    model = epsanet.from_pretrained(f"hf-hub:{REPO_ID}", num_classes=3)
    original = published.models["v2"]
    assert model.fc.out_features == 3
    assert torch.equal(model.layer4[0].conv2.conv_4.weight, original.layer4[0].conv2.conv_4.weight)


def test_offline_mode_reads_back_from_the_cache_without_a_request(published, monkeypatch, tmp_path):
    epsanet.from_pretrained(f"hf-hub:{REPO_ID}@v1", cache_dir=tmp_path)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    point_huggingface_hub_at(monkeypatch, f"http://127.0.0.1:{free_port()}")  # nothing listens there
    model = epsanet.from_pretrained(f"hf-hub:{REPO_ID}@v1", cache_dir=tmp_path)
    assert torch.equal(logits(model), published.logits["v1"])


def test_publish_command_uploads_and_tags(local_hub, tmp_path, capsys):
    model = tiny_epsanet()
    folder = epsanet.save_pretrained(model, tmp_path / "export")
    assert main(["publish", str(folder), "--repo-id", "epsanet-tests/cli", "--tag", "v1.0",
                 "--endpoint", local_hub.upload_url]) == 0
    assert "published" in capsys.readouterr().out
    assert torch.equal(logits(epsanet.from_pretrained("hf-hub:epsanet-tests/cli@v1.0")), logits(model))


# --- the catalogue's weights (timm's seresnet50, full size) ----------------------------------------

@pytest.fixture(scope="module")
def timm_seresnet50_on_the_hub(local_hub, tmp_path_factory):
    """timm's seresnet50 (random init) saved by timm itself into the repository the catalogue
    entry se_resnet50.a1_in1k names, timm/seresnet50.a1_in1k."""
    model = timm.create_model("seresnet50").eval()
    folder = tmp_path_factory.mktemp("timm-seresnet50")
    timm.models.save_for_hf(model, str(folder), safe_serialization=True)
    local_hub.repos.create("timm/seresnet50.a1_in1k")
    local_hub.repos.commit("timm/seresnet50.a1_in1k", {p.name: p.read_bytes() for p in folder.iterdir()}, "Add model")
    return model


def test_a_catalogue_entry_loads_through_epsanet_the_weights_enum_and_timm(timm_seresnet50_on_the_hub):
    expected = timm_seresnet50_on_the_hub.state_dict()
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        reference = timm_seresnet50_on_the_hub(x)
        for model in (epsanet.se_resnet50(weights="IMAGENET1K_A1"),
                      epsanet.se_resnet50(weights=epsanet.SE_ResNet50_Weights.DEFAULT),
                      timm.create_model("se_resnet50.a1_in1k", pretrained=True)):
            assert model.pretrained_cfg["tag"] == "a1_in1k"
            assert torch.equal(model.eval()(x), reference)
    state = epsanet.SE_ResNet50_Weights.IMAGENET1K_A1.get_state_dict()
    assert state.keys() == expected.keys() and all(torch.equal(state[k], v) for k, v in expected.items())


@pytest.mark.slow
def test_timm_seresnet50_weights_on_the_hub_convert_into_an_se_resnet50_folder(timm_seresnet50_on_the_hub, tmp_path):
    out = tmp_path / "converted"
    assert main(["convert", "hf-hub:timm/seresnet50.a1_in1k", "--model", "se_resnet50", "--tag", "a1_in1k",
                 "--out", str(out)]) == 0
    model = epsanet.from_pretrained(out)
    assert model.pretrained_cfg["test_input_size"] == (3, 288, 288)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model.eval()(x), timm_seresnet50_on_the_hub(x))


# --- failures: one line each, naming cause and fix -------------------------------------------------

def test_offline_with_an_empty_cache_is_a_one_line_error(published, monkeypatch, tmp_path):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(HubError) as info:
        epsanet.from_pretrained(f"hf-hub:{REPO_ID}", cache_dir=tmp_path)
    assert f"is not in the local Hugging Face cache ({tmp_path})" in one_line(info.value)
    assert "unset HF_HUB_OFFLINE" in str(info.value)


def test_an_unreachable_hub_is_a_one_line_error(monkeypatch, tmp_path):
    point_huggingface_hub_at(monkeypatch, f"http://127.0.0.1:{free_port()}")  # nothing listens there
    monkeypatch.setattr(huggingface_hub.utils._http.time, "sleep", lambda seconds: None)  # skip the retry back-off
    with pytest.raises(HubError) as info:
        epsanet.from_pretrained("hf-hub:epsanet-tests/anything", cache_dir=tmp_path)
    message = one_line(info.value)
    assert "cannot reach the Hub at http://127.0.0.1:" in message and "Connection refused" in message
    assert "HF_ENDPOINT" in message


@pytest.fixture
def sleeps(monkeypatch):
    """The back-off waits huggingface_hub would make (recorded, not slept)."""
    waits = []
    monkeypatch.setattr(huggingface_hub.utils._http.time, "sleep", waits.append)
    return waits


def assert_failed_at_once(error: BaseException, sleeps: list) -> None:
    """The one-line HubError for a Hub that refuses connections, raised without retries."""
    message = one_line(error)
    assert "cannot reach the Hub at http://127.0.0.1:" in message and "Connection refused" in message
    assert isinstance(error, huggingface_hub.errors.LocalEntryNotFoundError)  # what huggingface_hub raises there
    assert sleeps == []


@pytest.mark.parametrize("load", [
    lambda cache: epsanet.se_resnet50(weights="IMAGENET1K_A1", cache_dir=cache),
    lambda cache: epsanet.epsanet50_small(weights="hf-hub:epsanet-tests/anything", cache_dir=cache),
    lambda cache: epsanet.from_pretrained("hf-hub:epsanet-tests/anything", cache_dir=cache),
], ids=["weights-enum", "builder-hf-hub", "from_pretrained"])
def test_a_hub_that_refuses_connections_fails_at_once_without_retries(load, monkeypatch, sleeps, tmp_path):
    point_huggingface_hub_at(monkeypatch, f"http://127.0.0.1:{free_port()}")  # nothing listens there
    with pytest.raises(HubError) as info:
        load(tmp_path)  # an empty cache
    assert_failed_at_once(info.value, sleeps)


@pytest.fixture
def timm_hub_errors(monkeypatch):
    """epsanet's errors on timm's own hf-hub route, the opt-in install_timm_hub_errors(), undone after the test."""
    from timm.models import _factory

    monkeypatch.setattr(_factory, "load_model_config_from_hf", _factory.load_model_config_from_hf)
    install_timm_hub_errors()


def test_timm_hf_hub_with_the_opt_in_fails_at_once_without_retries(monkeypatch, sleeps, tmp_path, timm_hub_errors):
    point_huggingface_hub_at(monkeypatch, f"http://127.0.0.1:{free_port()}")  # nothing listens there
    with pytest.raises(HubError) as info:
        timm.create_model("hf-hub:epsanet-tests/anything", pretrained=True, cache_dir=tmp_path)
    assert_failed_at_once(info.value, sleeps)


def test_a_cached_file_is_used_when_the_hub_refuses_connections(published, monkeypatch, tmp_path, sleeps):
    epsanet.from_pretrained(f"hf-hub:{REPO_ID}@v1", cache_dir=tmp_path)
    point_huggingface_hub_at(monkeypatch, f"http://127.0.0.1:{free_port()}")  # nothing listens there
    model = epsanet.from_pretrained(f"hf-hub:{REPO_ID}@v1", cache_dir=tmp_path)
    assert torch.equal(logits(model), published.logits["v1"]) and sleeps == []


def test_timm_hf_hub_without_the_opt_in_raises_huggingface_hubs_own_error(monkeypatch, tmp_path):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(huggingface_hub.errors.LocalEntryNotFoundError) as info:
        timm.create_model("hf-hub:ORG/NAME", pretrained=True, cache_dir=tmp_path)
    assert not isinstance(info.value, HubError)


def test_timm_hf_hub_offline_with_the_opt_in_is_the_one_line_hub_error(monkeypatch, tmp_path, timm_hub_errors):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(HubError) as info:
        timm.create_model("hf-hub:ORG/NAME", pretrained=True, cache_dir=tmp_path)
    assert one_line(info.value) == (f"hf-hub:ORG/NAME/config.json is not in the local Hugging Face cache ({tmp_path}) "
                                    "and HF_HUB_OFFLINE is set: download it once online (unset HF_HUB_OFFLINE), or "
                                    "point HF_HUB_CACHE at a cache that has it")
    assert isinstance(info.value, huggingface_hub.errors.LocalEntryNotFoundError)


@pytest.mark.parametrize("name", [f"hf-hub:{REPO_ID}@no-such-branch", "hf-hub:epsanet-tests/no-such-repo"])
def test_an_unknown_repository_or_revision_is_a_one_line_error(published, name):
    with pytest.raises(HubError, match="no such repository, revision or file") as info:
        epsanet.from_pretrained(name)
    one_line(info.value)


def test_a_corrupt_cached_file_is_refused_removed_and_fetched_again(published, tmp_path):
    name = f"hf-hub:{REPO_ID}@v1"
    epsanet.from_pretrained(name, cache_dir=tmp_path)
    blob = Path(hf_hub_download(REPO_ID, "model.safetensors", revision="v1", cache_dir=tmp_path)).resolve()
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF
    blob.write_bytes(bytes(data))
    with pytest.raises(HubError, match="is corrupt .* removed from the cache; run again") as info:
        epsanet.from_pretrained(name, cache_dir=tmp_path)
    one_line(info.value)
    assert not blob.exists()
    assert torch.equal(logits(epsanet.from_pretrained(name, cache_dir=tmp_path)), published.logits["v1"])


def test_a_file_that_differs_from_the_catalogue_sha256_is_refused(published):
    with pytest.raises(HubError, match="not the catalogue's 000000000000"):
        download_file(REPO_ID, "model.safetensors", sha256="0" * 64)


def test_weights_of_another_architecture_are_refused(published):
    with pytest.raises(HubError, match="holds epsanet50_small weights, not se_resnet50: build epsanet.epsanet50_small"):
        epsanet.se_resnet50(weights=f"hf-hub:{REPO_ID}")


def test_a_folder_without_config_is_a_one_line_error(tmp_path):
    with pytest.raises(HubError, match="is not a hub folder \\(no config.json\\)"):
        epsanet.epsanet50_small(weights=str(tmp_path))


def test_a_training_run_folder_names_its_best_model(tmp_path):
    run = tmp_path / "runs" / "tiny"
    epsanet.save_pretrained(tiny_epsanet(), run / "best")
    (run / "run_config.json").write_text("{}")
    with pytest.raises(HubError, match=f"^{run} is a training run folder, not a hub folder: pass its best model, "
                                       f"{run / 'best'}$"):
        epsanet.epsanet50_small(weights=str(run))


def test_a_training_run_folder_without_a_best_model_says_to_let_it_finish_an_epoch(tmp_path):
    (tmp_path / "last.pth").write_bytes(b"")
    with pytest.raises(HubError, match=f"^{tmp_path} is a training run folder without a best model yet, not a hub "
                                       f"folder: let it finish an epoch, then pass {tmp_path / 'best'}$"):
        epsanet.from_pretrained(tmp_path)


def test_a_hub_folder_given_to_timm_that_does_not_exist_says_so():
    with pytest.raises(epsanet.PathNotFoundError, match="^hub folder nowhere/export does not exist"):
        timm.create_model("epsanet50_small", pretrained=True,
                          pretrained_cfg_overlay=dict(file="nowhere/export", source="local-dir"))


def test_a_truncated_weights_file_in_a_folder_is_a_one_line_error(tmp_path):
    folder = epsanet.save_pretrained(tiny_epsanet(), tmp_path / "export")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ValueError,
                       match="cannot read checkpoint .*model.safetensors.*download or save it again") as info:
        epsanet.from_pretrained(folder)
    one_line(info.value)


def test_weights_that_do_not_fit_the_config_name_the_conflicts(tmp_path):
    folder = epsanet.save_pretrained(tiny_epsanet(), tmp_path / "export")
    other = epsanet.epsanet50_small(layers=[1, 1, 1, 1], channels=[64, 64, 64, 128], num_classes=10)
    save_file(other.state_dict(), folder / "model.safetensors")
    with pytest.raises(epsanet.CheckpointMismatchError, match="shape conflicts: layer4.0.conv1.weight") as info:
        epsanet.from_pretrained(folder)
    one_line(info.value)


def test_publishing_offline_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(HubError, match="cannot publish while HF_HUB_OFFLINE is set: unset it to upload"):
        epsanet.publish(tmp_path, "epsanet-tests/offline")


def test_publish_errors_are_one_line_with_exit_status_2(tmp_path, capsys):
    assert main(["publish", str(tmp_path / "nowhere"), "--repo-id", "epsanet-tests/x"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nowhere does not exist: check the path" in err
    folder = epsanet.save_pretrained(tiny_epsanet(), tmp_path / "export")
    assert main(["publish", str(folder), "--repo-id", "no-org"]) == 2
    assert "must be ORG/NAME" in capsys.readouterr().err
