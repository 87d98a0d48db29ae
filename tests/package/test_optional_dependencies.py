"""A missing optional dependency is one line naming the extra that installs it: from the command
line (``epsanet CMD: error: ...``, exit status 2) and as an ImportError from the Python API.

The cases run in one fresh interpreter. A case hides its modules as an uninstalled package looks
to ``import`` (a ``None`` entry in ``sys.modules`` for the module and its submodules: importing
them raises ModuleNotFoundError), imports epsanet afresh, then puts the hidden modules back.
"""
import ast
import configparser
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from epsanet._utils.optional import DISTRIBUTIONS

ROOT = Path(__file__).resolve().parents[2]

RUNNER = r"""
import contextlib, importlib, io, json, sys, traceback, warnings

import torch, torchvision, timm  # noqa: F401  (native extensions are imported once, before any hiding)

warnings.filterwarnings("ignore")  # timm warns when epsanet's models are registered again
cases, results = json.loads(sys.argv[1]), {}
for case in cases:
    for name in [m for m in sys.modules if m == "epsanet" or m.startswith("epsanet.")]:
        del sys.modules[name]
    hidden = {m: sys.modules.get(m) for m in list(sys.modules) + case["hide"]
              if any(m == h or m.startswith(h + ".") for h in case["hide"])}
    sys.modules.update(dict.fromkeys(hidden))
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            if "argv" in case:
                result = {"status": importlib.import_module("epsanet.cli").main(case["argv"])}
            else:
                exec(case["code"], {})
                result = {"status": "no error"}
    except ImportError as e:
        result = {"status": "ImportError", "error": str(e)}
    except BaseException:
        result = {"status": "other", "error": traceback.format_exc()}
    result["stderr"] = stderr.getvalue()
    results[case["id"]] = result
    for name, module in hidden.items():
        if module is None:
            del sys.modules[name]
        else:
            sys.modules[name] = module
print(json.dumps(results))
"""

TRAIN, BENCH, EXPORT, OPENVINO, DETECTION, YOLO, EXPLAIN = (
    f"pip install 'epsanet[{extra}]'"
    for extra in ("train", "bench", "export", "openvino", "detection", "yolo", "explain"))
TRAIN_RUN = ["train", "--epochs", "1", "--output-dir", "{tmp}/run"]
EVAL_RUN = ["eval", "--model", "epsanet50_small", "--output-dir", "{tmp}/eval"]
ONNX_EXPORT = ["export", "epsanet50_small", "{tmp}/model.onnx"]
OPENVINO_EXPORT = ["export", "epsanet50_small", "{tmp}/model.xml"]

# (hidden module, command line with {tmp} for a fresh folder, the one line the command prints)
COMMANDS = [
    ("sklearn", TRAIN_RUN, f"epsanet train: error: the digits dataset needs scikit-learn: {TRAIN}"),
    ("sklearn", EVAL_RUN, f"epsanet eval: error: the confusion matrix plot needs scikit-learn: {TRAIN}"),
    ("sklearn", ["demo", "--output-dir", "{tmp}/demo"],
     f"epsanet demo: error: the digits dataset needs scikit-learn: {TRAIN}"),
    ("matplotlib", TRAIN_RUN, f"epsanet train: error: plotting needs matplotlib: {TRAIN}"),
    ("matplotlib", EVAL_RUN, f"epsanet eval: error: plotting needs matplotlib: {TRAIN}"),
    ("matplotlib", ["bench", "--chart", "{tmp}/c.png"],
     f"epsanet bench: error: the benchmark chart needs matplotlib: {BENCH}"),
    ("tensorboard", TRAIN_RUN, f"epsanet train: error: TensorBoard logging needs tensorboard: {TRAIN}"),
    ("pycocotools", ["detect", "shapes", "{tmp}/shapes"],
     f"epsanet detect: error: detection needs pycocotools: {DETECTION}"),
    ("pycocotools", ["detect", "demo", "{tmp}/detect"],
     f"epsanet detect: error: detection needs pycocotools: {DETECTION}"),
    ("onnx", ONNX_EXPORT, f"epsanet export: error: ONNX export needs onnx: {EXPORT}"),
    ("onnxscript", ONNX_EXPORT, f"epsanet export: error: ONNX export needs onnxscript: {EXPORT}"),
    ("onnxruntime", ONNX_EXPORT, f"epsanet export: error: ONNX Runtime needs onnxruntime: {EXPORT}"),
    ("openvino", OPENVINO_EXPORT, f"epsanet export: error: OpenVINO needs openvino: {OPENVINO}"),
    ("nncf", [*OPENVINO_EXPORT, "--precision", "int8", "--calibration", "digits"],
     f"epsanet export: error: OpenVINO int8 quantization needs nncf: {OPENVINO}"),
    ("ultralytics", ["yolo", "demo", "{tmp}/yolo"],
     f"epsanet yolo: error: epsanet.integrations.ultralytics needs ultralytics: {YOLO}"),
    ("pytorch_grad_cam", ["explain", "{tmp}/x.png", "--model", "epsanet50_small", "--out", "{tmp}/out"],
     f"epsanet explain: error: Grad-CAM needs grad-cam: {EXPLAIN}"),
]

# (hidden module, Python code, the ImportError's message)
API = [
    ("sklearn", "import epsanet.training.data; epsanet.training.data.DigitsDataset('train')",
     f"the digits dataset needs scikit-learn: {TRAIN}"),
    ("matplotlib", "from epsanet.training.reporting import plot_curves; plot_curves([], '{tmp}/c.png')",
     f"plotting needs matplotlib: {TRAIN}"),
    ("pycocotools", "import epsanet.detection", f"detection needs pycocotools: {DETECTION}"),
    ("onnx", "import epsanet, epsanet.runtimes.exported as e; "
             "e.export_for_runtime(epsanet.se_resnet50(), '{tmp}/m.onnx', 'onnxruntime')",
     f"ONNX export needs onnx: {EXPORT}"),
    ("onnxruntime", "import epsanet.runtimes.exported as e; e.load_export('{tmp}/m.onnx')",
     f"ONNX Runtime needs onnxruntime: {EXPORT}"),
    ("openvino", "import epsanet, epsanet.runtimes.exported as e; e.serve(epsanet.se_resnet50())",
     f"OpenVINO needs openvino: {OPENVINO}"),
    ("ultralytics", "import epsanet.integrations.ultralytics",
     f"epsanet.integrations.ultralytics needs ultralytics: {YOLO}"),
    ("pytorch_grad_cam", "import epsanet; epsanet.tools.explain.explain(epsanet.se_resnet50(), [])",
     f"Grad-CAM needs grad-cam: {EXPLAIN}"),
]

OPTIONAL = sorted({hidden for hidden, _, _ in COMMANDS + API})


def _case_id(kind, hidden, what):
    words = what if isinstance(what, list) else re.findall(r"[a-z_]+", what.split(";")[-1])
    return f"{kind}-{hidden}-{'-'.join(w for w in words[:2] if not w.startswith('{'))}"


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    cases = []
    for i, (hidden, argv, _) in enumerate(COMMANDS):
        tmp = tmp_path_factory.mktemp(f"cmd{i}")
        cases.append({"id": _case_id("cli", hidden, argv), "hide": [hidden],
                      "argv": [a.format(tmp=tmp) for a in argv]})
    for i, (hidden, code, _) in enumerate(API):
        tmp = tmp_path_factory.mktemp(f"api{i}")
        cases.append({"id": _case_id("api", hidden, code), "hide": [hidden], "code": code.replace("{tmp}", str(tmp))})
    cases.append({"id": "core-command", "hide": OPTIONAL, "argv": ["weights", "--json"]})
    cases.append({"id": "core-modules", "hide": OPTIONAL, "code": "import epsanet, epsanet.cli, epsanet.training, "
                                                                  "epsanet.tools.export, epsanet.tools.benchmark, "
                                        "epsanet.training.data"})
    assert len({case["id"] for case in cases}) == len(cases)
    done = subprocess.run([sys.executable, "-c", RUNNER, json.dumps(cases)], capture_output=True, text=True,
                          cwd=ROOT, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("hidden, argv, line", COMMANDS, ids=[_case_id("cli", h, a) for h, a, _ in COMMANDS])
def test_a_command_missing_an_optional_dependency_says_which_extra_installs_it(results, hidden, argv, line):
    result = results[_case_id("cli", hidden, argv)]
    assert (result["status"], result["stderr"]) == (2, line + "\n"), result.get("error")


@pytest.mark.parametrize("hidden, code, message", API, ids=[_case_id("api", h, c) for h, c, _ in API])
def test_the_python_api_raises_an_import_error_naming_the_extra(results, hidden, code, message):
    result = results[_case_id("api", hidden, code)]
    assert (result["status"], result.get("error")) == ("ImportError", message)


def test_the_package_and_its_core_commands_need_no_optional_dependency(results):
    assert (results["core-command"]["status"], results["core-command"]["stderr"]) == (0, "")
    assert results["core-modules"]["status"] == "no error", results["core-modules"].get("error")


def test_every_extra_named_by_a_require_call_installs_the_module(tmp_path):
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    extras = {name: value for name, value in setup["options.extras_require"].items()}
    calls = []
    for path in sorted((ROOT / "epsanet").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "require":
                module, extra = (arg.value for arg in node.args[:2])
                calls.append((path.name, module, extra))
    assert len(calls) >= 10
    for file, module, extra in calls:
        distribution = DISTRIBUTIONS.get(module.partition(".")[0], module.partition(".")[0])
        assert extra in extras, f"{file}: require({module!r}, {extra!r}): setup.cfg has no extra {extra!r}"
        listed = re.findall(r"^\s*([A-Za-z0-9_.-]+)", extras[extra], re.M)
        assert distribution in listed, f"{file}: the {extra!r} extra does not install {distribution}"
