"""The YOLO demo: YOLO11n with and without the zoo's EMA, CBAM and EPSA, trained from scratch on the
generated shapes set on CPU with one recipe and seed, compared in one table.

Run it offline through ``epsanet yolo demo`` (which sets ``YOLO_OFFLINE=1`` before Ultralytics is
imported); it writes ``results.json`` and ``results.md`` next to the runs.
"""
import json
import platform
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import torch
import ultralytics
from ultralytics import YOLO
from ultralytics.utils.torch_utils import get_flops

from ..._utils.errors import InvalidArgumentError
from ..._utils.files import write_json, write_text
from ...detection.shapes import make_shapes_dataset, shapes_splits
from ...tools.stats import count_macs
from . import model_yaml, use_local_fonts

__all__ = ["DEMO_MODELS", "DEMO_RECIPE", "run_demo", "results_table"]

# name -> model YAML given to ultralytics.YOLO; "yolo11n" is Ultralytics' own.
DEMO_MODELS = {
    "yolo11n": "yolo11n.yaml",
    "yolo11n-ema": "yolo11n-ema",
    "yolo11n-cbam": "yolo11n-cbam",
    "yolo11n-epsa": "yolo11n-epsa",
}
# One recipe for every model: Ultralytics' defaults otherwise (SGD/AdamW auto, mosaic, ...).
DEMO_RECIPE = {"epochs": 30, "imgsz": 160, "batch": 16, "seed": 0, "deterministic": True, "workers": 0,
               "device": "cpu", "plots": False, "amp": False}
# Ultralytics reports GFLOPs at 640 px.
FLOPS_IMGSZ = 640


def run_demo(output_dir: Path, *, models: Sequence[str] = tuple(DEMO_MODELS), train_images: int = 300,
             val_images: int = 100, overrides: Optional[Dict[str, Any]] = None) -> List[Dict[str, Any]]:
    """Train each of ``models`` on the shapes set under ``output_dir`` and write the results table."""
    output_dir = Path(output_dir)
    unknown = sorted(set(models) - set(DEMO_MODELS))
    if unknown:
        raise InvalidArgumentError(f"unknown demo model {', '.join(unknown)}: choose from {', '.join(DEMO_MODELS)}")
    data_root = output_dir / "shapes-yolo"
    if not (data_root / "data.yaml").is_file():
        make_shapes_dataset(data_root, train_images=train_images, val_images=val_images, layout="yolo")
    data = shapes_splits(data_root)["train"]["data_yaml"]
    use_local_fonts()
    recipe = {**DEMO_RECIPE, **(overrides or {})}
    rows = []
    for name in models:
        rows.append(_train_one(name, data, output_dir / "runs", recipe))
        _write_results(output_dir, rows, recipe, train_images, val_images)
    return rows


def _train_one(name: str, data: Path, project: Path, recipe: Dict[str, Any]) -> Dict[str, Any]:
    source = DEMO_MODELS[name]
    model = YOLO(source if source.endswith(".yaml") else model_yaml(source))
    wall, cpu = time.perf_counter(), time.process_time()
    results = model.train(data=str(data), project=str(project.resolve()), name=name, exist_ok=True, **recipe)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    trained = model.trainer.best if Path(model.trainer.best).is_file() else model.trainer.last
    net = YOLO(trained).model.float()
    metrics = results.results_dict
    return {
        "model": name,
        "params": sum(p.numel() for p in net.parameters()),
        "gflops_ultralytics": round(get_flops(net, FLOPS_IMGSZ), 2),
        "gflops_torch": round(2 * count_macs(net, (3, FLOPS_IMGSZ, FLOPS_IMGSZ)) / 1e9, 2),
        "map50": round(float(metrics["metrics/mAP50(B)"]), 4),
        "map50_95": round(float(metrics["metrics/mAP50-95(B)"]), 4),
        "train_wall_s": round(wall, 1),
        "train_cpu_s": round(cpu, 1),
        "weights": str(trained),
    }


def results_table(rows: Sequence[Dict[str, Any]]) -> str:
    """The demo's markdown table."""
    lines = ["| model | params | GFLOPs (Ultralytics) | GFLOPs (torch) | mAP50 | mAP50-95 | train time (wall) "
             "| train CPU time |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['params']:,} | {r['gflops_ultralytics']:.2f} | {r['gflops_torch']:.2f} "
                     f"| {r['map50']:.3f} | {r['map50_95']:.3f} | {r['train_wall_s'] / 60:.1f} min "
                     f"| {r['train_cpu_s'] / 60:.1f} min |")
    return "\n".join(lines)


def _write_results(output_dir: Path, rows: List[Dict[str, Any]], recipe: Dict[str, Any], train_images: int,
                   val_images: int) -> None:
    setup = {
        "cpu": _cpu_name(), "threads": torch.get_num_threads(), "torch": torch.__version__,
        "ultralytics": ultralytics.__version__, "train_images": train_images, "val_images": val_images,
        "recipe": recipe, "gflops_imgsz": FLOPS_IMGSZ,
    }
    write_json(output_dir / "results.json", {"setup": setup, "results": rows})
    text = (f"# epsanet yolo demo\n\n{results_table(rows)}\n\nShapes set: {train_images} train / {val_images} val "
            f"images; recipe: {json.dumps(recipe)}; {setup['cpu']}, {setup['threads']} threads, torch "
            f"{setup['torch']}, Ultralytics {setup['ultralytics']}. GFLOPs at {FLOPS_IMGSZ} px: Ultralytics' "
            "(thop: counts only the layers it knows, so it misses PSA's functional convolutions) and torch's "
            "FLOP counter (every matmul and convolution).\n")
    write_text(output_dir / "results.md", text)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
