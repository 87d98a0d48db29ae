"""Where epsanet50_small's time goes in OpenVINO and ONNX Runtime, against torchvision's resnet50.

    python benchmarks/runtime_profile.py export            # writes graphs to $GAP_DIR (default /tmp/epsanet-gap)
    python benchmarks/runtime_profile.py profile ort 1     # per stage / per kind table, batch 1
    python benchmarks/runtime_profile.py profile ov 16
    python benchmarks/runtime_profile.py ratio             # whole-model ratios, interleaved

Ratios are epsanet speed / resnet50 speed measured round-robin in one run (shared machine:
compare ratios, not absolute times). Threads: 2.
"""
import json
import os
import re
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
import torchvision

import epsanet
from epsanet.runtimes import onnxruntime as ort_rt
from epsanet.runtimes import openvino as ov_rt
from epsanet.runtimes.exported import prepare

THREADS = int(os.environ.get("GAP_THREADS", 2))
BASE = os.environ.get("GAP_BASE", "resnet50")  # the baseline graph: resnet50, resnet50_int8
DIR = Path(os.environ.get("GAP_DIR", "/tmp/epsanet-gap"))
torch.set_num_threads(THREADS)


def models():
    torch.manual_seed(0)
    eps = epsanet.create_model("epsanet50_small").eval()
    res = torchvision.models.resnet50().eval()
    return eps, res


def export(plans="measure", tag="", only=None):
    DIR.mkdir(parents=True, exist_ok=True)
    eps, res = models()
    example = torch.randn(2, 3, 224, 224)
    for backend, suffix in ([(ov_rt, ".xml"), (ort_rt, ".onnx")] if not only else [only]):
        m, graph, plan = prepare(eps, backend, example, "fp32", plans, log=print)
        backend.save(graph, DIR / f"epsanet{tag}{suffix}")
        json.dump(plan, open(DIR / f"epsanet{tag}{suffix}.plan.json", "w"), indent=1)
        if not tag:
            backend.save(backend.convert(res, example), DIR / f"resnet50{suffix}")


# ---------------------------------------------------------------- sessions
def ort_session(path, level="all", threads=THREADS, profile=False, layout=True, spinning=True):
    import onnxruntime as ort
    o = ort.SessionOptions()
    if not spinning:
        o.add_session_config_entry("session.intra_op.allow_spinning", "0")
    o.intra_op_num_threads = threads
    o.inter_op_num_threads = 1
    o.graph_optimization_level = {"none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
                                  "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                                  "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
                                  "layout": getattr(ort.GraphOptimizationLevel, "ORT_ENABLE_LAYOUT",
                                                    ort.GraphOptimizationLevel.ORT_ENABLE_ALL),
                                  "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}[level]
    if not layout:
        o.add_session_config_entry("optimization.disable_specified_optimizers", "NchwcTransformer")
    if profile:
        o.enable_profiling = True
        o.profile_file_prefix = str(DIR / "ortprof")
    s = ort.InferenceSession(str(path), o, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    return s, (lambda x: s.run(None, {name: x})[0])


def ov_compiled(path, config=None, threads=THREADS, perf=False):
    import openvino as ov
    cfg = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1,
           "INFERENCE_PRECISION_HINT": "f32"}
    cfg.update(config or {})
    if perf:
        cfg["PERF_COUNT"] = True
    core = ov.Core()
    model = core.read_model(str(path)) if not hasattr(path, "get_ops") else path
    c = core.compile_model(model, "CPU", cfg)
    r = c.create_infer_request()
    return r, (lambda x: r.infer({0: x})[0])


# ---------------------------------------------------------------- classification of nodes
# Every profiled node becomes (stage, kind, exec) with its time. OpenVINO's node names carry the
# module path (``__module.layer1.0.conv2/aten::...``); ONNX Runtime's do not, so its nodes are
# placed by their shapes (spatial size -> stage, weight shape -> kind) in execution order.
STAGE_OF_SIZE = {112: "stem", 56: "layer1", 28: "layer2", 14: "layer3", 7: "layer4"}


def classify_ov(name, node_type, exec_type):
    m = re.search(r"layer(\d)\.\d+\.?([a-z_]*\d?)", name)
    stage = f"layer{m.group(1)}" if m else ("head" if re.search(r"\bfc\b|module\.fc|global_pool|avgpool", name)
                                             else "stem/in")
    part = m.group(2) if m else ""
    if node_type == "Reorder":
        kind = "reorder"
    elif part == "conv2" or "conv2/" in name:
        if node_type in ("Convolution", "GroupConvolution"):
            kind = "branch conv (resnet: 3x3 conv)"
        elif re.search(r"aten::sum|aten::view/Reshape_[0-5]\b|aten::flatten", name) or node_type == "ReduceSum":
            kind = "branch conv (resnet: 3x3 conv)"  # depthwise + sum's reduction
        elif node_type == "Concat":
            kind = "PSA concat"
        else:
            kind = "PSA SE/softmax/mul tail"
    elif node_type in ("Convolution", "GroupConvolution") and m:
        kind = "1x1 conv (conv1/conv3/downsample)"
    elif node_type in ("Convolution", "GroupConvolution"):
        kind = "stem conv"
    else:
        kind = f"other {node_type}"
    return stage, kind


def _spatial(shapes):
    for d in shapes:
        dims = list(d.values())[0]
        if len(dims) >= 4 and dims[-1] in STAGE_OF_SIZE and dims[-1] == dims[-2]:
            return dims[-1]
    return None


# ---------------------------------------------------------------- ORT profile
def profile_ort(path, batch, level="all", runs=10, layout=True):
    s, run = ort_session(path, level, profile=True, layout=layout)
    x = np.random.randn(batch, 3, 224, 224).astype(np.float32)
    for _ in range(3):
        run(x)
    s.end_profiling()
    s, run = ort_session(path, level, profile=True, layout=layout)
    for _ in range(3):
        run(x)
    prof = s.end_profiling()
    os.remove(prof)
    # The first runs of a session are slow: profile a fresh session after warming the arena up.
    s, run = ort_session(path, level, profile=True, layout=layout)
    run(x)
    for _ in range(runs):
        run(x)
    prof = s.end_profiling()
    events = json.load(open(prof))
    os.remove(prof)
    rows = {}
    order = []
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            node = e["name"][: -len("_kernel_time")]
            if node not in rows:
                rows[node] = [e["args"], 0.0]
                order.append(node)
            rows[node][1] += e["dur"] / 1e3 / (runs + 1)
    out = {}
    stage = "stem"
    for node in order:
        args, ms = rows[node]
        op = args.get("op_name", "?")
        ins, outs = args.get("input_type_shape", []), args.get("output_type_shape", [])
        size = _spatial(outs) if op == "Conv" else (_spatial(ins) or _spatial(outs))
        if size is not None and op not in ("ReorderInput", "ReorderOutput"):
            stage = STAGE_OF_SIZE[size]
        if op in ("Gemm",) or (op == "Flatten"):
            stage = "head"
        nchwc = "nchwc" if "nchwc" in node.lower() else "plain"
        if op in ("ReorderInput", "ReorderOutput"):
            kind = "reorder"
        elif op == "Conv":
            w = list(ins[1].values())[0]
            cin = list(ins[0].values())[0][1]
            groups = cin // w[1]
            if w[2] == 1:
                kind = "1x1 conv (conv1/conv3/downsample)"
            elif stage == "stem":
                kind = "stem conv"
            else:
                kind = "branch conv (resnet: 3x3 conv)"
            nchwc += f" k{w[2]} g{groups} {cin}->{w[0]}"
        elif op in ("ReduceSum", "Reshape") and stage.startswith("layer") and any(
                len(list(d.values())[0]) >= 5 for d in ins + outs):
            kind = "branch conv (resnet: 3x3 conv)"
        elif op == "Concat":
            kind = "PSA concat"
        elif stage.startswith("layer") and op in ("ReduceMean", "MatMul", "Add", "Relu", "Sigmoid", "Softmax", "Mul",
                                                   "Reshape", "Gemm"):
            big = any(len(list(d.values())[0]) == 4 and list(d.values())[0][-1] > 1 for d in ins)
            kind = "PSA SE/softmax/mul tail" if not (op in ("Add", "Relu") and big and False) else "residual"
        else:
            kind = f"other {op}"
        out[node] = (stage, kind, f"{op} {nchwc}", ms)
    return out


# ---------------------------------------------------------------- OV profile
def profile_ov(path, batch, config=None, runs=10):
    r, run = ov_compiled(path, config, perf=True)
    x = np.random.randn(batch, 3, 224, 224).astype(np.float32)
    for _ in range(3):
        run(x)
    acc = defaultdict(float)
    info = {}
    for _ in range(runs):
        run(x)
        for p in r.profiling_info:
            acc[p.node_name] += p.real_time.total_seconds() * 1e3 / runs
            info[p.node_name] = (p.node_type, p.exec_type)
    # Fused nodes take another node's name (resnet50's convs are named after the folded BatchNorm's
    # Multiply): classify them by the original layers the runtime model lists.
    original = {}
    last_block = None
    for op in r.get_compiled_model().get_runtime_model().get_ordered_ops():
        rt = op.get_rt_info()
        if "originalLayersNames" not in rt:
            continue
        names = str(rt["originalLayersNames"].value).split(",")
        module = [x for x in names if "__module" in x]
        label = (module or names)[0]
        block = re.search(r"(__module\.layer\d\.\d+)", ",".join(names))
        if block:
            last_block = block.group(1)
        if "__module" not in op.get_friendly_name() and str(rt["layerType"].value) == "Convolution":
            # resnet50's BatchNorm-folded convs are named after a Multiply: name them by the
            # block they sit in (in execution order) and their kernel size
            k = re.findall(r"\d+", str(op.input(1).get_partial_shape())) if op.get_input_size() > 1 else []
            part = "conv2" if k and k[-1] != "1" else "conv1"
            if last_block is None:
                label = "__module.conv1/Convolution"
            else:
                label = f"{last_block}.{part}/Convolution"
        original[op.get_friendly_name()] = label
    out = {}
    for n, ms in acc.items():
        stage, kind = classify_ov(n if "__module" in n else original.get(n, n), *info[n])
        out[n] = (stage, kind, f"{info[n][0]} {info[n][1]}", ms)
    return out


def summarize(nodes):
    res = {"total": 0.0, "stage": defaultdict(float), "kind": defaultdict(float), "exec": defaultdict(float),
           "stage x kind": defaultdict(float)}
    for _name, (stage, kind, ex, ms) in nodes.items():
        res["stage"][stage] += ms
        res["kind"][kind] += ms
        res["stage x kind"][f"{stage} | {kind}"] += ms
        if kind.startswith("branch") or kind.startswith("reorder") or "concat" in kind:
            res["exec"][f"{kind[:6]}: {ex}"] += ms
        res["total"] += ms
    return res


def print_compare(a, b, labels=("epsanet", "resnet50"), parts=("stage", "kind", "stage x kind", "exec")):
    print(f"{'':58s}{labels[0]:>10s}{labels[1]:>10s}   (ms per inference, summed node times)")
    print(f"{'TOTAL':58s}{a['total']:10.2f}{b['total']:10.2f}")
    for part in parts:
        keys = sorted(set(a[part]) | set(b[part]), key=lambda k: (part == "stage x kind" and k,
                                                                   -(a[part].get(k, 0) + b[part].get(k, 0))))
        print(f"-- by {part}")
        for k in keys[:40]:
            va, vb = a[part].get(k, 0), b[part].get(k, 0)
            if va + vb < 0.002 * (a["total"] + b["total"]):
                continue
            print(f"   {k[:55]:55s}{va:10.2f}{vb:10.2f}")


def top_nodes(nodes, n=25):
    for name, (stage, _kind, ex, ms) in sorted(nodes.items(), key=lambda kv: -kv[1][3])[:n]:
        print(f"   {ms:8.3f} ms  {stage:7s} {ex[:42]:42s} {name[-70:]}")


# ---------------------------------------------------------------- interleaved ratio
ROUNDS = int(os.environ.get("GAP_ROUNDS", 12))


def ratios(calls, batches=(1, 16), rounds=ROUNDS):
    """calls: {label: fn(x)}; 'resnet50' must be among them. Returns {batch: {label: ratio}}."""
    from epsanet._utils.timing import time_interleaved
    out = {}
    for b in batches:
        x = np.random.randn(b, 3, 224, 224).astype(np.float32)
        fns = {k: (lambda f=f, x=x: f(x)) for k, f in calls.items()}
        times = time_interleaved(fns, rounds if b == 1 else max(4, rounds // 3), warmup=2, statistic=min)
        out[b] = {k: times["resnet50" if "|" not in k else k.split("|")[0] + "|resnet50"] / t for k, t in times.items()}
        out[b]["_ms"] = {k: round(t * 1e3, 2) for k, t in times.items()}
    return out


def print_ratios(res):
    labels = [k for k in res[1] if k != "_ms"]
    print(f"{'variant':50s}" + "".join(f"{'b' + str(b):>9s}" for b in res))
    for k in labels:
        print(f"{k:50s}" + "".join(f"{res[b][k]:8.2f}x" for b in res))
    print("ms:", {b: res[b]["_ms"] for b in res})


# ---------------------------------------------------------------- variants of the exported graph
def _dw_accumulate(x, weight, groups, stride, padding, dilation, method, groups_to_run):
    """depthwise_1x1 without the Concat of the depthwise passes: one 1x1 conv per pass, summed
    (runtimes fuse a conv's output add)."""
    import torch.nn.functional as F

    from epsanet.layers import _psa_fast as fast
    if method != "depthwise_1x1":
        return _ORIGINAL_GROUPED(x, weight, groups, stride, padding, dilation, method, groups_to_run)
    out_channels, in_per_group, kh, kw = weight.shape
    out_per_group = out_channels // groups
    channels = groups * in_per_group
    filters = fast.depthwise_weight(weight, groups).view(channels, out_per_group, 1, kh, kw)
    ones = fast.group_sum_weight(groups, in_per_group, out_per_group, x.dtype, x.device).view(
        out_channels, out_per_group, channels, 1, 1)
    out = None
    for j in range(out_per_group):
        y = F.conv2d(x, filters[:, j], None, stride, padding, dilation, channels)
        z = F.conv2d(y, ones[:, j])
        out = z if out is None else out + z
    return out


def _gap_tail(self, x, plans, weights):
    """_attend_fast with the pooled mean as adaptive_avg_pool2d (GlobalAveragePool)."""
    import torch.nn.functional as F

    from epsanet.layers import _psa_fast as fast
    branches = []
    for index in [3, 2, 1, 0]:
        method, groups_to_run = plans[index]
        k = self.kernel_sizes[index]
        branches.append(fast.grouped_conv2d(x, weights[index], self.groups[index], self.stride,
                                            self.dilation * (k // 2), self.dilation, method, groups_to_run))
    feats = torch.cat(branches, 1)
    n = feats.shape[0]
    attention = self._scale_attention(F.adaptive_avg_pool2d(feats, 1).view(n, 4, self.split)).view(
        n, 4 * self.split, 1, 1)
    return torch.addcmul(self.out_shift, feats, attention * self.out_scale)


_ORIGINAL_GROUPED = None
VARIANTS = {"acc": "depthwise_1x1 passes summed by per-pass 1x1 convs (no Concat)",
            "gap": "GlobalAveragePool instead of ReduceMean in the PSA tail"}


def export_variant(variant, plan_tag="_dw", backends="both"):
    """epsanet{plan_tag}{variant}.xml/.onnx: the plans of epsanet{plan_tag} with a code variant."""
    global _ORIGINAL_GROUPED
    from epsanet.layers import _psa_fast as fast
    from epsanet.runtimes.plans import apply_plans
    _ORIGINAL_GROUPED = fast.grouped_conv2d
    if "acc" in variant:
        fast.grouped_conv2d = _dw_accumulate
    if "gap" in variant:
        fast.FastPSA._attend_fast = _gap_tail
    eps, _ = models()
    example = torch.randn(2, 3, 224, 224)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        expected = epsanet.create_model("epsanet50_small", psa_layer="psa_reference").eval()
        expected.load_state_dict(eps.state_dict())
        expected = expected(x)
    for backend, suffix in [(ov_rt, ".xml"), (ort_rt, ".onnx")]:
        if backends != "both" and backends != backend.NAME:
            continue
        plan = json.load(open(DIR / f"epsanet{plan_tag}{suffix}.plan.json"))
        m, _, _ = prepare(eps, backend, example, "fp32", "rule")
        apply_plans(m, plan)
        graph = backend.convert(m, example)
        out = torch.from_numpy(backend.compile(graph, "fp32")(x.numpy()))
        err = ((out.double() - expected.double()).norm() / expected.double().norm()).item()
        print(f"{backend.NAME}: variant {variant} relative error vs reference PSA {err:.2e}")
        backend.save(graph, DIR / f"epsanet{plan_tag}{variant}{suffix}")


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "export":
        export(*(sys.argv[2:4] or ["measure"]))
    elif cmd == "int8":
        # int8 copies (random calibration: for speed only) of resnet50 and epsanet{tag} ...: name + "_int8"
        which = sys.argv[2]
        batches = [np.random.randn(2, 3, 224, 224).astype(np.float32) for _ in range(4)]
        for name in sys.argv[3:]:
            if which == "ov":
                graph = ov_rt.quantize(ov_rt.load(DIR / f"{name}.xml"), batches)
                ov_rt.save(graph, DIR / f"{name}_int8.xml")
            else:
                graph = ort_rt.quantize(ort_rt.load(DIR / f"{name}.onnx"), batches)
                ort_rt.save(graph, DIR / f"{name}_int8.onnx")
            print("quantized", name)
    elif cmd == "variant":
        export_variant(sys.argv[2], *(sys.argv[3:5]))
    elif cmd == "profile":
        rt, batch = sys.argv[2], int(sys.argv[3])
        extra = sys.argv[4] if len(sys.argv) > 4 else ""
        if rt == "ort":
            a = profile_ort(DIR / f"epsanet{extra}.onnx", batch)
            b = profile_ort(DIR / "resnet50.onnx", batch)
        else:
            a = profile_ov(DIR / f"epsanet{extra}.xml", batch)
            b = profile_ov(DIR / "resnet50.xml", batch)
        print_compare(summarize(a), summarize(b))
        print("top epsanet nodes:")
        top_nodes(a)
        print("top resnet50 nodes:")
        top_nodes(b, 12)
    elif cmd == "ratio":
        # ratio [ort|ov|both] [tag ...]: epsanet graphs epsanet{tag}.onnx / .xml against resnet50
        which = sys.argv[2] if len(sys.argv) > 2 else "both"
        tags = sys.argv[3:] or [""]
        calls = {}
        if which in ("ort", "both"):
            calls["ort|resnet50"] = ort_session(DIR / f"{BASE}.onnx")[1]
            for tag in tags:
                calls[f"ort|epsanet{tag}"] = ort_session(DIR / f"epsanet{tag}.onnx")[1]
        if which in ("ov", "both", "ov-bf16"):
            cfg = {"INFERENCE_PRECISION_HINT": "bf16"} if which == "ov-bf16" else {}
            calls["ov|resnet50"] = ov_compiled(DIR / f"{BASE}.xml", cfg)[1]
            for tag in tags:
                calls[f"ov|epsanet{tag}"] = ov_compiled(DIR / f"epsanet{tag}.xml", cfg)[1]
        print_ratios(ratios(calls))
    elif cmd == "ov-options":
        tag = sys.argv[2] if len(sys.argv) > 2 else ""
        variants = {"f32 latency 2t": ({}, THREADS), "f32 1 thread": ({}, 1),
                    "f32 throughput hint": ({"PERFORMANCE_HINT": "THROUGHPUT"}, THREADS),
                    "bf16": ({"INFERENCE_PRECISION_HINT": "bf16"}, THREADS)}
        chosen = sys.argv[3].split(",") if len(sys.argv) > 3 else list(variants)
        calls = {}
        for name in chosen:
            cfg, threads = variants[name]
            calls[f"{name}|resnet50"] = ov_compiled(DIR / "resnet50.xml", cfg, threads)[1]
            calls[f"{name}|epsanet{tag}"] = ov_compiled(DIR / f"epsanet{tag}.xml", cfg, threads)[1]
        print_ratios(ratios(calls))
    elif cmd == "ort-options":
        # ORT session options, each pair (resnet50, epsanet{tag}) built the same way
        tag = sys.argv[2] if len(sys.argv) > 2 else ""
        variants = {"default(all,2t)": {}, "1 thread": {"threads": 1}, "no spinning": {"spinning": False},
                    "extended (no NCHWc)": {"level": "extended"}, "all minus NchwcTransformer": {"layout": False},
                    "basic": {"level": "basic"}}
        chosen = sys.argv[3].split(",") if len(sys.argv) > 3 else list(variants)
        calls = {}
        for name in chosen:
            kw = variants[name]
            calls[f"{name}|resnet50"] = ort_session(DIR / "resnet50.onnx", **kw)[1]
            calls[f"{name}|epsanet{tag}"] = ort_session(DIR / f"epsanet{tag}.onnx", **kw)[1]
        print_ratios(ratios(calls))
