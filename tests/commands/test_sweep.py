"""The same kinds of bad input over every command and public function, as a new user would try
them: paths that are folders, files of the wrong kind, missing or empty; numbers that are 0,
negative or huge; unknown and misspelt names; tags fetched by hand or unknown; a Hub that
refuses connections. Each gives exit status 2 (or raises one of the errors the command line
shows) with one line that says what the input is and what to pass instead, and leaves nothing
behind. Errors come before any real work, so the sweep builds no full model and runs in seconds.
"""
import os
from pathlib import Path

import huggingface_hub
import pytest
import torch
from local_hub import free_port
from PIL import Image

import epsanet
from epsanet._utils.errors import EpsanetError
from epsanet.cli import main
from epsanet.tools.predict import predict

CHECKPOINT = "(expected a .pth/.pth.tar/.pt/.bin/.safetensors file, got"
DATA_FIX = "pass 'digits' or an image folder laid out as ROOT/train/<class>/*.jpg and ROOT/val/<class>/*.jpg"
UNREACHABLE = "cannot reach the Hub at http://127.0.0.1:"
YOLO_DATA_FIX = "write one with `epsanet detect shapes DIR --format yolo`, or pass the path to yours"
DETECT_TRAIN = "detect train --train-images folder --train-ann x --val-images folder --val-ann x"
RUN_EXISTS = ("finished already holds a run (last.pth): continue it with --resume, replace it with --overwrite, or "
              "choose another --output-dir")
BOTH_POLICIES = "--resume continues the run in --output-dir and --overwrite replaces it: pass one of them"
MODEL_KINDS = "not a model: pass a zoo model name (see `epsanet models`), a hub folder, a training run folder"

# (command line, what its one line must say). Files named here exist in the sandbox (see `sandbox`).
COMMANDS = [
    # convert: the checkpoint's kind, never a false alarm about code
    ("convert some.png --model eca_resnet50 --out out",
     f"checkpoint some.png is not a checkpoint {CHECKPOINT} a PNG image)"),
    ("convert README.md --model eca_resnet50 --out out", f"README.md is not a checkpoint {CHECKPOINT} a text file)"),
    ("convert random.bin --model eca_resnet50 --out out", f"{CHECKPOINT} a binary file of an unknown format)"),
    ("convert empty.pth --model eca_resnet50 --out out", "cannot read checkpoint empty.pth: it is an empty file"),
    ("convert truncated.pth --model eca_resnet50 --out out", "is a damaged or truncated ZIP file"),
    ("convert folder --model eca_resnet50 --out out", f"checkpoint folder is not a checkpoint {CHECKPOINT} a folder)"),
    ("convert missing.pth --model eca_resnet50 --out out", "checkpoint missing.pth does not exist: check the path"),
    ("convert code.pth --model eca_resnet50 --out out",
     "holds Python code or objects (torch.nn.modules.linear.Linear)"),
    ("convert state.pth --model eca_resnet5 --out out", "unknown model 'eca_resnet5': did you mean eca_resnet50"),
    ("convert state.pth --model eca_resnet50 --out out --tag nope", "no catalogue entry eca_resnet50.nope"),
    ("convert state.pth --model eca_resnet50 --out fake.jpg --force",
     "--out fake.jpg is a JPEG image, not a folder: choose another output folder"),
    ("convert hf-hub:ORG/NAME --model eca_resnet50 --out out", UNREACHABLE),
    # eval: --model, --checkpoint, --data, --split, numbers, tags
    ("eval --model epsanet50_small --pretrained runs/tiny/bset", "--pretrained runs/tiny/bset does not exist"),
    ("eval --model epsanet50_small --pretrained run", "--pretrained run is a path, not a catalogue tag (see `epsanet "
                                                      "weights`): pass the model it holds as --model run"),
    ("eval --model epsanet50_small --checkpoint fake.jpg",
     f"checkpoint fake.jpg is not a checkpoint {CHECKPOINT} a JPEG"),
    ("eval --model epsanet50_small --checkpoint notes.txt", f"{CHECKPOINT} a text file)"),
    ("eval --model epsanet50_small --data fake.jpg", f"data folder fake.jpg is a JPEG image, not a folder: {DATA_FIX}"),
    ("eval --model epsanet50_small --data missing", f"data folder missing does not exist: {DATA_FIX}"),
    ("eval --model epsanet50_small --data imgs --split test",
     "imgs has no test/ folder (it has train/, val/): choose --split train or val"),
    ("eval --model epsanet50_small --data hub", "data folder hub is a hub folder (config.json), not an image folder"),
    ("eval --model epsanet50_small --batch-size 0", "--batch-size must be at least 1, got 0"),
    ("eval --model epsanet50_small --workers -1", "--workers must be 0 or more, got -1"),
    ("eval --model epsanet50_smal", "unknown model 'epsanet50_smal': did you mean epsanet50_small"),
    ("eval --model se_resnet50 --pretrained nope", "no pretrained weights 'nope' for se_resnet50 (available: a1_in1k"),
    ("eval --model eca_resnet50 --pretrained k3557_in1k", "weights eca_resnet50.k3557_in1k must be fetched by hand"),
    ("eval --model se_resnet50 --pretrained nope --checkpoint state.pth",
     "--pretrained nope and --checkpoint state.pth both give weights: pass one of them"),
    ("eval --model fake.jpg", f"--model fake.jpg is a JPEG image, {MODEL_KINDS}"),
    ("eval --model folder", "--model folder is a folder without config.json (not a hub folder nor a training run)"),
    ("eval --model run", "run folder run has no best/ model nor last.pth yet"),
    ("eval --model runs/missing/best", "--model runs/missing/best does not exist"),
    ("eval --model hub --pretrained a1_in1k", "--pretrained goes with a zoo model name, not with hub"),
    ("eval --model hf-hub:ORG/NAME", UNREACHABLE),
    ("eval --model epsanet50_small --output-dir fake.jpg", "--output-dir fake.jpg is a JPEG image, not a folder"),
    ("eval --model epsanet50_small --device tpu", "--device tpu is not a device: use cpu, cuda, cuda:N or auto"),
    ("eval --model epsanet50_small --data imgs",
     "epsanet50_small without weights evaluates random weights: pass --pretrained TAG (see `epsanet weights`)"),
    # export
    ("export epsanet50_small m.onnx --img-size 0", "--img-size must be at least 32"),
    ("export epsanet50_small folder.onnx", "output folder.onnx is a folder: name a file inside it"),
    ("export epsanet50_small missing/m.onnx", "the directory of missing/m.onnx does not exist: create it first"),
    ("export epsanet50_small model.tflite", "name it *.xml (OpenVINO), *.onnx (ONNX Runtime) or *.pt (TorchScript)"),
    ("export epsanet50_smal m.onnx", "unknown model 'epsanet50_smal'"),
    ("export epsanet50_small m.onnx --num-classes 0", "--num-classes must be at least 1, got 0"),
    ("export epsanet50_small m.onnx --checkpoint some.png", f"{CHECKPOINT} a PNG image)"),
    ("export fake.jpg m.onnx", f"--model fake.jpg is a JPEG image, {MODEL_KINDS}"),
    ("export hub m.pt --num-classes 7", "hub holds a trained 3-class classifier, not 7: leave out --num-classes"),
    ("export hf-hub:ORG/NAME m.onnx", UNREACHABLE),
    # predict
    ("predict fake.jpg --model epsanet50_small", "epsanet50_small without weights predicts noise: pass --pretrained"),
    ("predict README.md --model hub", "README.md is a text file, not an image: pass image files or folders of them"),
    ("predict missing.jpg --model hub", "image missing.jpg does not exist"),
    ("predict folder --model hub", "folder folder holds no images"),
    ("predict fake.jpg --model hub --top-k 0", "--top-k must be at least 1, got 0"),
    ("predict fake.jpg --model hub --top-k 100000", "--top-k must be between 1 and the model's 3 classes, got 100000"),
    ("predict fake.jpg --model hub --batch-size -1", "--batch-size must be at least 1, got -1"),
    ("predict fake.jpg --model epsanet50_small --weights folder", "--weights folder is a folder without config.json"),
    ("predict fake.jpg --model epsanet50_small --weights epsanet50_small", "--weights epsanet50_small is not a path"),
    ("predict fake.jpg --model se_resnet50 --weights hub",
     "--weights hub holds epsanet50_small weights, not se_resnet50"),
    ("predict fake.jpg --model epsanet50_small --weights hf-hub:ORG/NAME", UNREACHABLE),
    ("predict fake.jpg --model eca_resnet50 --pretrained k3557_in1k", "then load DIR with `--model DIR`"),
    ("predict fake.jpg --model hub --device tpu", "--device tpu is not a device"),
    # train: paths, numbers, names (all checked before data or model are built)
    ("train --data fake.jpg --output-dir o", f"data folder fake.jpg is a JPEG image, not a folder: {DATA_FIX}"),
    ("train --output-dir fake.jpg", "--output-dir fake.jpg is a JPEG image, not a folder"),
    ("train --pretrained fake.jpg --output-dir o", f"--pretrained fake.jpg is not a checkpoint {CHECKPOINT} a JPEG"),
    ("train --pretrained folder --output-dir o", "--pretrained folder is a folder without config.json"),
    ("train --pretrained runs/missing/best --output-dir o", "--pretrained runs/missing/best does not exist: pass a "
                                                            "catalogue tag"),
    ("train --pretrained nope --output-dir o", "no pretrained weights 'nope' for epsanet50_small"),
    ("train --model eca_resnet50 --pretrained k3557_in1k --output-dir o", "then load DIR with `--pretrained DIR`"),
    ("train --pretrained hf-hub:ORG/NAME --output-dir o", UNREACHABLE),
    ("train --resume fake.jpg --output-dir o", f"--resume fake.jpg is not a checkpoint {CHECKPOINT} a JPEG image)"),
    ("train --model epsanet50_smal --output-dir o", "unknown model 'epsanet50_smal'"),
    ("train --model-kwargs foo=1 --output-dir o", "epsanet50_small takes no argument 'foo' (--model-kwargs)"),
    ("train --model-kwargs drop_rat=0.1 --output-dir o", "did you mean drop_rate"),
    ("train --model-kwargs foo --output-dir o", "'foo' is not KEY=VALUE"),
    ("train --model-kwargs layers=(2,2 --output-dir o", "layers=(2,2 is not a valid Python literal"),
    ("train --epochs 0 --output-dir o", "--epochs must be positive, got 0"),
    ("train --batch-size -1 --output-dir o", "--batch-size must be positive, got -1"),
    ("train --img-size 0 --output-dir o", "--img-size must be positive, got 0"),
    ("train --lr 0 --output-dir o", "--lr must be positive, got 0"),
    ("train --smoothing 2 --output-dir o", "--smoothing must be in [0, 1), got 2"),
    ("train --scale 0.9 0.1 --output-dir o", "--scale MIN MAX must satisfy 0 < MIN <= MAX, got 0.9 0.1"),
    ("train --workers -1 --output-dir o", "--workers must be 0 or more, got -1"),
    ("train --epochs x --output-dir o", "argument --epochs: invalid int value: 'x'"),
    ("train --opt sgdd --output-dir o", "--opt sgdd is not a timm optimizer: did you mean sgd"),
    ("train --sched cosin --output-dir o", "--sched cosin is not a timm scheduler"),
    ("train --auto-augment nonsense --output-dir o", "--auto-augment nonsense is not a timm auto-augment spec"),
    ("train --device tpu --output-dir o", "--device tpu is not a device"),
    # train and detect train: the run folder
    ("train --output-dir finished", RUN_EXISTS),
    ("train --resume --overwrite --output-dir o", BOTH_POLICIES),
    # the listing commands, bench, publish, detect, demo
    ("models epsanet9*", "no model matches 'epsanet9*'"),
    ("models --img-size 0", "--img-size must be at least 32"),
    ("weights nothing*", "no catalogued weights match 'nothing*'"),
    ("bench epsanet9", "unknown model 'epsanet9'"),
    ("bench --threads 0", "--threads must be at least 1, got 0"),
    ("bench --repeats 0", "--repeats must be at least 1 and --warmup at least 0, got 0 and 3"),
    ("bench --json missing/x.json", "the directory of missing/x.json does not exist: create it first"),
    ("publish missing --repo-id a/b", "hub folder missing does not exist"),
    ("publish fake.jpg --repo-id a/b", "fake.jpg is a JPEG image, not a hub folder"),
    ("publish folder --repo-id a/b", "folder is not a hub folder (no config.json)"),
    ("publish hub --repo-id a/b --endpoint http://127.0.0.1:{port}", "cannot reach the Hub at http://127.0.0.1:"),
    ("detect eval fake.jpg --images folder --ann README.md",
     f"checkpoint fake.jpg is not a checkpoint {CHECKPOINT} a JPEG"),
    ("demo --output-dir fake.jpg", "--output-dir fake.jpg is a JPEG image, not a folder"),
    # detect shapes: the options by their command-line names
    ("detect shapes out --train-images 0", "--train-images must be at least 1, got 0"),
    ("detect shapes out --val-images -1", "--val-images must be at least 1, got -1"),
    ("detect shapes out --image-size 0 10", "--image-size must be MIN MAX with 8 <= MIN <= MAX, got 0 10"),
    ("detect shapes fake.jpg", "ROOT fake.jpg is a JPEG image, not a folder: choose another folder"),
    ("detect shapes folder", "folder already exists: choose another folder, or replace it (--overwrite)"),
    # explain: every input checked before a file is written
    ("explain fake.jpg --model hub --out fake.jpg",
     "--out fake.jpg is a JPEG image, not a folder: choose another --out"),
    ("explain fake.jpg --model hub --layer nope --out o", "the model has no layer 'nope' (the stages are layer1"),
    ("explain fake.jpg --model hub --target 99 --out o", "--target 99 is not a class of a model with 3 classes (0..2)"),
    ("explain notes.txt --model hub --out o", "notes.txt is a text file, not an image: pass image files or folders"),
    # detect train / demo: folders and annotation files by what they are
    ("detect train --train-images fake.jpg --train-ann data.yaml --val-images folder --val-ann data.yaml "
     "--output-dir o", "image folder fake.jpg is a JPEG image, not a folder: pass the folder of the annotation"),
    ("detect train --train-images folder --train-ann folder --val-images folder --val-ann folder --output-dir o",
     "annotation file folder is a folder, not a COCO JSON file: pass its instances_*.json"),
    ("detect train --train-images folder --train-ann x --val-images folder --val-ann x --output-dir fake.jpg",
     "--output-dir fake.jpg is a JPEG image, not a folder: choose another --output-dir"),
    ("detect demo fake.jpg", "output folder fake.jpg is a JPEG image, not a folder: choose another output folder"),
    (f"{DETECT_TRAIN} --output-dir finished", RUN_EXISTS),
    (f"{DETECT_TRAIN} --resume --overwrite --output-dir o", BOTH_POLICIES),
    (f"{DETECT_TRAIN} --resume fake.jpg --output-dir o", f"--resume fake.jpg is not a checkpoint {CHECKPOINT} a JPEG"),
    (f"{DETECT_TRAIN} --epochs 0 --output-dir o", "--epochs must be positive, got 0"),
    (f"{DETECT_TRAIN} --amp fp32 --output-dir o", "argument --amp: invalid choice: 'fp32'"),
    (f"{DETECT_TRAIN} --amp-dtype bfloat16 --output-dir o", "unrecognized arguments: --amp-dtype bfloat16"),
    # yolo: what Ultralytics would be given, checked before it starts (and prints, and makes run folders)
    ("yolo train fake.jpg data.yaml", "model fake.jpg is a JPEG image, not a model YAML nor a .pt checkpoint"),
    ("yolo train sub/missing.yaml data.yaml", "model sub/missing.yaml does not exist: pass a shipped YAML name"),
    ("yolo train yolo11n-ema missing.yaml", f"dataset YAML missing.yaml does not exist: {YOLO_DATA_FIX}"),
    ("yolo train yolo11n-ema fake.jpg", f"dataset YAML fake.jpg is a JPEG image, not a YAML file: {YOLO_DATA_FIX}"),
    ("yolo train yolo11n-ema folder", f"dataset YAML folder is a folder, not a YAML file: {YOLO_DATA_FIX}"),
    ("yolo train yolo11n-ema yolo-set", "dataset YAML yolo-set is a folder, not a YAML file: pass yolo-set/data.yaml"),
    ("yolo train yolo11n-ema notes.txt", "dataset YAML notes.txt has no train, val, names: an Ultralytics dataset"),
    ("yolo train yolo11n-ema broken.yaml", "dataset YAML broken.yaml is not valid YAML (while parsing a flow"),
    ("yolo train yolo11n-ema data.yaml epochs", "train arguments are KEY=VALUE, got 'epochs': e.g. epochs=30"),
    ("yolo demo fake.jpg", "output folder fake.jpg is a JPEG image, not a folder: choose another output folder"),
    ("nonsense", "argument COMMAND: invalid choice: 'nonsense'"),
]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> Path:
    """A folder holding one of each kind of path a user may pass by mistake, and a tiny hub folder."""
    root = tmp_path_factory.mktemp("sandbox")
    Image.new("RGB", (20, 20), "red").save(root / "fake.jpg")
    Image.new("RGB", (20, 20), "blue").save(root / "some.png")
    (root / "README.md").write_text("# notes\n")
    (root / "notes.txt").write_text("some notes\n" * 10)
    (root / "random.bin").write_bytes(bytes(range(7, 250)) * 3)
    (root / "empty.pth").write_bytes(b"")
    (root / "folder").mkdir()
    (root / "data.yaml").write_text("train: images/train\nval: images/val\nnames: {0: square}\n")
    (root / "broken.yaml").write_text("names: [square, circle\n")
    (root / "yolo-set").mkdir()
    (root / "yolo-set" / "data.yaml").write_text((root / "data.yaml").read_text())
    (root / "folder.onnx").mkdir()
    for split, cls in (("train", "a"), ("val", "b")):
        (root / "imgs" / split / cls).mkdir(parents=True)
        Image.new("RGB", (20, 20)).save(root / "imgs" / split / cls / "1.png")
    (root / "run").mkdir()
    (root / "run" / "run_config.json").write_text("{}")
    (root / "finished").mkdir()
    torch.save({"epoch": 2}, root / "finished" / "last.pth")
    torch.save(torch.nn.Linear(2, 2), root / "code.pth")
    torch.save({"fc.weight": torch.zeros(3, 4)}, root / "state.pth")
    (root / "truncated.pth").write_bytes((root / "state.pth").read_bytes()[:300])
    tiny = epsanet.epsanet50_small(num_classes=3, layers=(1, 1, 1, 1), channels=(8, 8, 8, 8), stem_width=8,
                                   psa_groups=(1, 1, 1, 1))
    epsanet.save_pretrained(tiny, root / "hub")
    return root


@pytest.fixture
def unreachable_hub(monkeypatch) -> int:
    """huggingface_hub pointed at a closed port of 127.0.0.1, with its back-off made instant."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(huggingface_hub.constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                        endpoint + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(huggingface_hub.utils._http.time, "sleep", lambda seconds: None)
    return port


def snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def run(argv) -> int:
    try:
        return main(argv)
    except SystemExit as e:  # argparse
        return e.code


@pytest.mark.parametrize("command, expected", COMMANDS, ids=[c for c, _ in COMMANDS])
def test_bad_input_gives_status_2_and_one_true_line_and_leaves_nothing_behind(command, expected, sandbox,
                                                                              unreachable_hub, monkeypatch, capsys):
    monkeypatch.chdir(sandbox)
    before = snapshot(sandbox)
    argv = command.format(port=unreachable_hub).split()
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("epsanet"), err
    assert expected in err, err
    assert snapshot(sandbox) == before


# (call, what its error must say). The sandbox is the working directory.
FUNCTIONS = {
    "load_checkpoint(image)": (lambda: epsanet.load_checkpoint(epsanet.epsanet50_small(device="meta"), "some.png"),
                               f"{CHECKPOINT} a PNG image)"),
    "load_checkpoint(folder)": (lambda: epsanet.load_checkpoint(epsanet.epsanet50_small(device="meta"), "folder"),
                                f"{CHECKPOINT} a folder)"),
    "load_checkpoint(missing)": (lambda: epsanet.load_checkpoint(epsanet.epsanet50_small(device="meta"), "gone.pth"),
                                 "checkpoint gone.pth does not exist"),
    "from_pretrained(image)": (lambda: epsanet.from_pretrained("fake.jpg"),
                               "fake.jpg is a JPEG image, not a hub folder"),
    "from_pretrained(missing)": (lambda: epsanet.from_pretrained("gone"), "hub folder gone does not exist"),
    "from_pretrained(unreachable)": (lambda: epsanet.from_pretrained("hf-hub:ORG/NAME"), UNREACHABLE),
    "builder(unknown tag)": (lambda: epsanet.se_resnet50(weights="nope"),
                             "unknown weights 'nope' for SE_ResNet50_Weights"),
    "builder(by hand)": (lambda: epsanet.eca_resnet50(weights="k3557_in1k"), "must be fetched by hand"),
    "builder(unreachable)": (lambda: epsanet.se_resnet50(weights="IMAGENET1K_A1", cache_dir="folder"), UNREACHABLE),
    "builder(hf-hub, unreachable)": (lambda: epsanet.epsanet50_small(weights="hf-hub:ORG/NAME"), UNREACHABLE),
    "convert_checkpoint(text)": (lambda: epsanet.convert_checkpoint("README.md", "eca_resnet50", "out"),
                                 f"{CHECKPOINT} a text file)"),
    "save_pretrained(onto a file)": (lambda: epsanet.save_pretrained(epsanet.epsanet50_small(layers=(1, 1, 1, 1)),
                                                                     "fake.jpg"), "fake.jpg is a file, not a folder"),
    "publish(image)": (lambda: epsanet.publish("fake.jpg", "a/b"), "fake.jpg is a JPEG image, not a hub folder"),
    "predict(text)": (lambda: predict(epsanet.from_pretrained("hub"), ["notes.txt"]),
                      "notes.txt is a text file, not an image"),
}


@pytest.mark.parametrize("name", FUNCTIONS)
def test_bad_input_to_a_public_function_is_one_true_line_and_leaves_nothing_behind(name, sandbox, unreachable_hub,
                                                                                   monkeypatch):
    call, expected = FUNCTIONS[name]
    monkeypatch.chdir(sandbox)
    before = snapshot(sandbox)
    with pytest.raises(EpsanetError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message and expected in message, message
    assert snapshot(sandbox) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file: a file cannot be made unreadable")
def test_an_unreadable_checkpoint_says_so(sandbox, tmp_path, capsys):
    locked = tmp_path / "locked.pth"
    locked.write_bytes((sandbox / "state.pth").read_bytes())
    locked.chmod(0)
    assert run(["convert", str(locked), "--model", "eca_resnet50", "--out", str(tmp_path / "out")]) == 2
    assert "is not readable by you (permission denied): fix its permissions" in capsys.readouterr().err
