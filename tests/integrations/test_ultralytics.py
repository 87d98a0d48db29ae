"""The zoo's layers inside Ultralytics YOLO YAMLs (epsanet.integrations.ultralytics), offline."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import PIL.Image
import pytest
import torch

from epsanet import create_model
from epsanet.detection.shapes import SHAPES, make_shapes_dataset

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def yolo_config_dir(tmp_path_factory):
    """Ultralytics reads YOLO_OFFLINE and its settings folder once, at import: set both before.
    Its import also replaces ``PIL.Image.open`` and ``torch.save`` process-wide: restored after
    this module, so that the other tests run on the originals."""
    config_dir = tmp_path_factory.mktemp("ultralytics-config")
    originals = PIL.Image.open, torch.save
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("YOLO_OFFLINE", "1")
        patch.setenv("YOLO_CONFIG_DIR", str(config_dir))
        yield config_dir
    PIL.Image.open, torch.save = originals


@pytest.fixture(scope="module")
def ey(yolo_config_dir):
    import epsanet.integrations.ultralytics as integration

    integration.use_local_fonts()
    return integration


def run_python(code: str, env_dir: Path, cwd: Path) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter, offline, recording every network attempt (socket
    lookups and connections, through an audit hook) in ``cwd/network.json``."""
    audit = textwrap.dedent("""
        import atexit, json, sys
        _attempts = []
        def _audit(event, args):
            if event in ("socket.getaddrinfo", "socket.connect", "urllib.Request"):
                _attempts.append(f"{event} {args!r}")
        sys.addaudithook(_audit)
        atexit.register(lambda: open("network.json", "w").write(json.dumps(_attempts)))
    """)
    env = {**os.environ, "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(env_dir)}
    return subprocess.run([sys.executable, "-c", audit + textwrap.dedent(code)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


# A small detector at two widths; ROWS are zoo layers placed after the P4 stage (layer 5).
BASE_YAML = """
nc: 4
scales:
  n: [0.50, 0.25, 1024]
  s: [0.50, 0.50, 1024]
backbone:
  - [-1, 1, Conv, [64, 3, 2]]
  - [-1, 1, Conv, [128, 3, 2]]
  - [-1, 1, Conv, [256, 3, 2]]
  - [-1, 1, C3k2, [256, False]]
  - [-1, 1, Conv, [512, 3, 2]]
  - [-1, 1, C3k2, [512, False]]
ROWS
head:
  - [[3, -1], 1, Detect, [nc]]
"""
P4_CHANNELS = {"n": 128, "s": 256}  # 512 at width 0.25 and 0.5


def build(yaml_text: str, scale: str):
    """Ultralytics' detection model from a YAML text at ``scale``."""
    import yaml
    from ultralytics.nn.tasks import DetectionModel

    return DetectionModel({**yaml.safe_load(yaml_text), "scale": scale}, verbose=False)


def with_rows(*rows: str) -> str:
    return BASE_YAML.replace("ROWS", "\n".join(f"  - {row}" for row in rows))


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# Every zoo layer and its YAML arguments (the channel count is never written).
ZOO_LAYERS = {
    "SEModule": "[]", "ECAModule": "[]", "CBAMModule": "[]", "BAMModule": "[]", "ShuffleAttentionModule": "[]",
    "PolarizedAttentionModule": "[]", "SequentialPolarizedAttentionModule": "[]", "SGEModule": "[]",
    "CoordAttentionModule": "[]", "GAMModule": "[]", "EMAModule": "[]", "PSAModule": "[512]", "PSAConv": "[512]",
    "C3k2EPSA": "[512, True, 0.5, [1, 2, 4, 8]]",
}


def own_params(name: str, channels: int) -> int:
    """Parameters of the zoo layer ``name`` built directly for ``channels`` in and out."""
    from epsanet import create_attention
    from epsanet.integrations.ultralytics import C3k2EPSA
    from epsanet.layers import PSAModule

    zoo = {"SEModule": "se", "ECAModule": "eca", "CBAMModule": "cbam", "BAMModule": "bam",
           "ShuffleAttentionModule": "sa", "PolarizedAttentionModule": "polarized",
           "SequentialPolarizedAttentionModule": "polarized_seq", "SGEModule": "sge", "CoordAttentionModule": "coord",
           "GAMModule": "gam", "EMAModule": "ema"}
    if name in zoo:
        return count(create_attention(zoo[name], channels))
    if name == "PSAModule":
        return count(PSAModule(channels, channels))
    if name == "PSAConv":
        return count(PSAModule(channels, channels)) + 2 * channels  # and a BatchNorm's weight and bias
    return count(C3k2EPSA(channels, channels, 1, True, 0.5, (1, 2, 4, 8)))


@pytest.mark.parametrize("scale", ["n", "s"])
def test_every_zoo_layer_builds_in_a_yaml_at_two_widths_with_its_own_parameters_added(ey, scale):
    channels = P4_CHANNELS[scale]
    base = build(with_rows(), scale)
    model = build(with_rows(*(f"[-1, 1, {name}, {args}]" for name, args in ZOO_LAYERS.items())), scale)
    layers = list(model.model)[6:6 + len(ZOO_LAYERS)]
    assert [type(layer) for layer in layers] == [getattr(ey, name) for name in ZOO_LAYERS]
    assert [layer.i for layer in layers] == list(range(6, 6 + len(ZOO_LAYERS)))
    assert [count(layer) for layer in layers] == [own_params(name, channels) for name in ZOO_LAYERS]
    assert count(model) == count(base) + sum(own_params(name, channels) for name in ZOO_LAYERS)
    assert model.stride.tolist() == [8.0, 16.0]

    model.train()
    outputs = model(torch.randn(2, 3, 64, 64))
    tensors = [t for t in (outputs.values() if isinstance(outputs, dict) else outputs) if isinstance(t, torch.Tensor)]
    sum(t.float().sum() for t in tensors).backward()
    for name, layer in zip(ZOO_LAYERS, layers):
        grads = [p.grad for p in layer.parameters()]
        assert grads and all(g is not None and torch.isfinite(g).all() for g in grads), name


def test_yaml_args_go_to_the_module_after_the_channel_count(ey):
    model = build(with_rows("[-1, 1, CBAMModule, [8, 3]]"), "n")
    cbam = model.model[6]
    assert cbam.channel_gate.fc1.out_features == 128 // 8 and cbam.spatial_gate.conv.kernel_size == (3, 3)


def test_repeats_follow_the_depth_multiple(ey):
    model = build(with_rows("[-1, 4, EMAModule, [16]]"), "n")  # depth 0.5: 2 modules
    assert [type(m).__name__ for m in model.model[6]] == ["EMAModule", "EMAModule"]


def test_no_zoo_name_shadows_an_ultralytics_name_and_psa_cbam_keep_ultralytics_meaning(ey):
    import ultralytics.nn.modules as modules
    from ultralytics.nn import tasks

    assert sorted(ey.LAYERS) == ey.yaml_names()
    assert not [name for name in ey.LAYERS if hasattr(tasks, name) or hasattr(modules, name)]
    model = build(with_rows("[-1, 1, PSA, [512]]"), "n")
    assert type(model.model[6]) is modules.PSA  # Ultralytics' position-sensitive attention
    with pytest.raises(KeyError, match="CBAM"):  # Ultralytics' parser does not know its own CBAM: unchanged
        build(with_rows("[-1, 1, CBAM, [128]]"), "n")


def test_a_module_that_does_not_fit_its_channels_is_a_one_line_error_naming_the_layer(ey):
    with pytest.raises(ValueError) as error:
        build(with_rows("[-1, 1, EMAModule, [48]]"), "n")
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("layer 6 (EMAModule [48]) with 128 input channels: EMAModule needs channels divisible")


def test_a_zoo_layer_reading_several_layers_is_a_one_line_error(ey):
    with pytest.raises(ValueError, match=r"^layer 6 \(SEModule\) reads \[-1, 3\]: it takes the output of one "
                                         r"layer, not several$"):
        build(with_rows("[[-1, 3], 1, SEModule, []]"), "n")


@pytest.mark.parametrize("name, zoo_name", [("yolo11n-ema", "ema"), ("yolo11n-cbam", "cbam")])
def test_shipped_yolo11n_yamls_are_yolo11n_plus_one_module_after_each_backbone_c3k2(ey, name, zoo_name):
    from ultralytics import YOLO

    from epsanet import create_attention

    base = YOLO("yolo11n.yaml", verbose=False).model
    model = YOLO(ey.model_yaml(name), verbose=False).model
    added = [model.model[i] for i in (3, 6, 9, 12)]
    assert [type(model.model[i - 1]).__name__ for i in (3, 6, 9, 12)] == ["C3k2"] * 4
    assert [type(m).__name__ for m in added] == [ey.ZOO_NAMES[zoo_name]] * 4
    channels = [64, 128, 128, 256]  # the backbone's C3k2 outputs at width 0.25
    assert count(model) == count(base) + sum(count(create_attention(zoo_name, c)) for c in channels)
    assert model.stride.tolist() == [8.0, 16.0, 32.0]


def test_the_epsanet_backbone_yaml_builds_with_strides_8_16_32(ey):
    from ultralytics import YOLO

    model = YOLO(ey.model_yaml("yolo11n-epsanet50_small"), verbose=False).model
    backbone = model.model[0]
    assert type(backbone) is ey.EpsanetBackbone and backbone.channels == [512, 1024, 2048]
    assert model.stride.tolist() == [8.0, 16.0, 32.0]
    zoo = create_model("epsanet50_small", features_only=True, out_indices=(2, 3, 4))
    assert count(backbone) == count(zoo) == 20_512_715


def test_an_index_row_with_wrong_channels_says_which_channels_to_write(ey):
    text = Path(ey.CFG_DIR / "yolo11-epsanet50_small.yaml").read_text().replace("[1024, 1]", "[1000, 1]")
    with pytest.raises(ValueError, match=r"layer 2 \(Index \[1000, 1\]\) states 1000 channels, but level 1 of "
                                         r"epsanet50_small \(stride 16\) has 1024: write \[0, 1, Index, \[1024, 1\]\]"):
        build(text, "n")


def test_shipped_yamls_are_listed_with_their_scale_and_unknown_names_are_a_clear_error(ey):
    assert ey.list_model_yamls() == ["yolo11n-cbam", "yolo11n-ema", "yolo11n-epsa", "yolo11n-epsanet50_small"]
    assert ey.model_yaml("yolo11s-ema").endswith("cfg/yolo11s-ema.yaml")
    with pytest.raises(ValueError, match="no shipped model YAML 'yolo11n-se': choose one of yolo11n-cbam"):
        ey.model_yaml("yolo11n-se")


@pytest.mark.parametrize("argv, expected", [
    (["yolo11n-se", "data.yaml"], "no shipped model YAML 'yolo11n-se': choose one of yolo11n-cbam"),
    (["yolo11n-ema", "data.yaml", "epoch=3"], "epoch= is not an Ultralytics train argument: did you mean epochs?"),
    (["yolo11n-ema", "data.yaml", "data=other.yaml"], "data= repeats the DATA argument: leave it out"),
], ids=["unknown-yaml", "misspelt-argument", "data-twice"])
def test_yolo_train_refuses_in_one_line_before_ultralytics_starts(ey, tmp_path, monkeypatch, capsys, argv, expected):
    from epsanet.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.yaml").write_text("train: images/train\nval: images/val\nnames: {0: square}\n")
    assert main(["yolo", "train", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert captured.err.startswith(f"epsanet yolo: error: {expected}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.yaml"]


def test_shapes_in_yolo_layout_have_one_label_line_per_box_and_a_data_yaml_ultralytics_reads(ey, tmp_path):
    from ultralytics.data.utils import check_det_dataset

    splits = make_shapes_dataset(tmp_path / "shapes", train_images=4, val_images=2, image_size=(48, 64),
                                 layout="yolo")
    coco = json.loads(splits["train"]["annotations"].read_text())
    first = coco["images"][0]
    boxes = [a for a in coco["annotations"] if a["image_id"] == first["id"]]
    lines = (splits["train"]["labels"] / "000001.txt").read_text().splitlines()
    assert len(lines) == len(boxes)
    cls, cx, cy, w, h = lines[0].split()
    x, y, bw, bh = boxes[0]["bbox"]
    assert int(cls) == boxes[0]["category_id"] - 1
    assert float(cx) == pytest.approx((x + bw / 2) / first["width"], abs=1e-6)
    assert float(h) == pytest.approx(bh / first["height"], abs=1e-6)
    assert sorted(p.name for p in splits["val"]["images"].iterdir()) == ["000001.jpg", "000002.jpg"]
    data = check_det_dataset(str(splits["train"]["data_yaml"]))
    assert data["nc"] == 4 and list(data["names"].values()) == list(SHAPES)
    assert Path(data["train"]) == splits["train"]["images"]


def test_detect_shapes_format_yolo_prints_the_folders_and_the_data_yaml(tmp_path, capsys):
    from epsanet.cli import main

    assert main(["detect", "shapes", str(tmp_path / "s"), "--train-images", "2", "--val-images", "1",
                 "--image-size", "32", "48", "--format", "yolo"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"train: {tmp_path / 's/images/train'} {tmp_path / 's/labels/train'}",
        f"val: {tmp_path / 's/images/val'} {tmp_path / 's/labels/val'}",
        f"data: {tmp_path / 's/data.yaml'}",
    ]


def test_import_epsanet_imports_nothing_of_ultralytics(tmp_path):
    code = """
        import sys, epsanet, epsanet.cli
        epsanet.cli.build_parser()
        print(sorted(m for m in sys.modules if m.split(".")[0] == "ultralytics"))
    """
    result = run_python(code, tmp_path, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_one_epoch_offline_train_writes_best_pt_that_reloads_in_a_fresh_process(tmp_path):
    config = tmp_path / "config"
    data = make_shapes_dataset(tmp_path / "shapes", train_images=16, val_images=8, image_size=(64, 96),
                               layout="yolo")["train"]["data_yaml"]
    train = f"""
        from epsanet.cli import main
        raise SystemExit(main(["yolo", "train", "yolo11n-ema", "{data}", "epochs=1", "imgsz=64", "batch=8",
                               "workers=0", "device=cpu", "plots=False", "project={tmp_path}", "name=run"]))
    """
    result = run_python(train, config, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((tmp_path / "network.json").read_text()) == []
    log = (result.stdout + result.stderr).splitlines()
    assert [line for line in log if "warning" in line.lower() or "download" in line.lower()] == []
    best = tmp_path / "run" / "weights" / "best.pt"
    assert best.is_file()

    reload = f"""
        import os, sys
        {{import_line}}
        from ultralytics import YOLO
        from ultralytics.utils import SAFE_LOAD
        model = YOLO("{best}")
        ema = model.model.model[3]
        print(type(ema).__module__, type(ema).__name__, "epsanet.integrations.ultralytics" in sys.modules)
        print(len(model.predict("{data.parent / 'images' / 'val' / '000001.jpg'}", imgsz=64, verbose=False)))
        print("safe load" if SAFE_LOAD else "default load")
    """
    # Ultralytics' opt-in restricted loading (torch.load weights_only=True with an allow-list) takes
    # the zoo's layers once the integration is imported.
    safe = "os.environ['ULTRALYTICS_SAFE_LOAD'] = '1'; import epsanet.integrations.ultralytics"
    for import_line, how in (("import epsanet.integrations.ultralytics", "default load"), ("pass", "default load"),
                             (safe, "safe load")):
        result = run_python(reload.replace("{import_line}", import_line), config, tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        assert result.stdout.splitlines() == ["epsanet.integrations.ultralytics.modules EMAModule True", "1", how]
        assert json.loads((tmp_path / "network.json").read_text()) == []


def test_every_shipped_yaml_pickles_only_classes_the_safe_load_allow_list_has(ey, tmp_path):
    from ultralytics import YOLO

    allowed = {f"{cls.__module__}.{cls.__qualname__}" for cls in ey.checkpoint_classes()}
    for name in ey.list_model_yamls():
        YOLO(ey.model_yaml(name)).save(tmp_path / f"{name}.pt")
        held = torch.serialization.get_unsafe_globals_in_checkpoint(tmp_path / f"{name}.pt")
        assert {g for g in held if not g.startswith(("torch.", "ultralytics.", "collections."))} <= allowed, name


def test_building_a_zoo_yaml_without_the_integration_fails_naming_the_layer(ey, tmp_path):
    code = f"""
        from ultralytics import YOLO
        YOLO("{ey.model_yaml('yolo11n-ema')}")
    """
    result = run_python(code, tmp_path, tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == "KeyError: 'EMAModule'"


@pytest.mark.slow
def test_the_yolo_demo_writes_a_table_of_all_four_models(tmp_path):
    code = f"""
        from epsanet.cli import main
        raise SystemExit(main(["yolo", "demo", "{tmp_path / 'demo'}", "--epochs", "1", "--imgsz", "64",
                               "--train-images", "16", "--val-images", "8"]))
    """
    result = run_python(code, tmp_path / "config", tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((tmp_path / "network.json").read_text()) == []
    report = json.loads((tmp_path / "demo" / "results.json").read_text())
    rows = {r["model"]: r for r in report["results"]}
    assert list(rows) == ["yolo11n", "yolo11n-ema", "yolo11n-cbam", "yolo11n-epsa"]
    assert rows["yolo11n-ema"]["params"] == rows["yolo11n"]["params"] + 1072  # four EMA modules at nano width
    assert all(0 <= r["map50"] <= 1 and r["train_cpu_s"] > 0 and r["gflops_torch"] > 0 for r in rows.values())
    assert (tmp_path / "demo" / "results.md").read_text().startswith("# epsanet yolo demo\n\n| model | params |")
