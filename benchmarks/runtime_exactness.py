"""Check that epsanet50_small exported with the PSA plans of a runtime (e.g. depthwise_1x1 branches)
matches the eager model: the planned torch model and the runtime's outputs, relative error.

    EPSANET_CACHE_DIR=/tmp/epsanet-gap/cache python benchmarks/runtime_exactness.py
"""
import json
import sys
import warnings

import torch

import epsanet
from epsanet.runtimes import onnxruntime as ort_rt
from epsanet.runtimes import openvino as ov_rt
from epsanet.runtimes.exported import prepare, relative_error
from epsanet.runtimes.plans import apply_plans

warnings.simplefilter("ignore")
torch.manual_seed(0)
model = epsanet.create_model("epsanet50_small").eval()
x = torch.randn(2, 3, 224, 224)
with torch.no_grad():
    reference = epsanet.create_model("epsanet50_small", psa_layer="psa_reference").eval()
    reference.load_state_dict(model.state_dict())
    expected = reference(x)
for backend, path in ((ov_rt, sys.argv[1] if len(sys.argv) > 1 else "/tmp/epsanet-gap/epsanet_dw.xml.plan.json"),
                      (ort_rt, sys.argv[2] if len(sys.argv) > 2 else "/tmp/epsanet-gap/epsanet_dw.onnx.plan.json")):
    plan = json.load(open(path))
    methods = sorted({b["method"] for s in plan["shapes"] for b in s["branches"]})
    deployed, graph, _ = prepare(model, backend, x, "fp32", "rule")
    apply_plans(deployed, plan)
    with torch.no_grad():
        planned = deployed(x)
    graph = backend.convert(deployed, x)
    out = torch.from_numpy(backend.compile(graph, "fp32")(x.numpy()))
    print(f"{backend.NAME:12s} methods {methods}: torch planned vs reference {relative_error(planned, expected):.2e}, "
          f"runtime vs reference {relative_error(out, expected):.2e}")
