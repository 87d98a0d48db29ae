"""The main job, end to end: train EPSANet-50 on the built-in digits, evaluate it, export it as a
hub folder, reload that folder through ``torch.hub.load`` and ``timm.create_model`` and check that
every route gives the same accuracy."""
import json
from pathlib import Path
from typing import Any, Dict, Optional

import timm
import torch

from .._utils.errors import PathNotFoundError, RunFailedError
from .._utils.files import write_json
from .config import resolve_config
from .data import DIGITS
from .engine import train
from .evaluation import evaluate_model

__all__ = ["run_demo", "TARGET_TOP1"]

# What the demo must reach on the held-out digits.
TARGET_TOP1 = 95.0
MODEL = "epsanet50_small"


def _repo_dir() -> Path:
    for candidate in (Path(__file__).resolve().parents[2], Path.cwd()):
        if (candidate / "hubconf.py").is_file():
            return candidate
    raise PathNotFoundError("no hubconf.py next to the package or in the current folder: run the demo from a "
                            "clone of the epsanet repository")


def run_demo(output_dir: str = "runs/demo", device: str = "auto", repo_dir: Optional[str] = None) -> Dict[str, Any]:
    """Run the demo into ``output_dir`` and return its report (also written to ``demo.json``).

    Training continues the run already in ``output_dir`` (a finished run is not retrained), so
    repeating the demo is cheap. Raises ``RuntimeError`` when the accuracy is below
    :data:`TARGET_TOP1` or the reloaded models disagree.
    """
    out = Path(output_dir)
    result = train(resolve_config({"data": DIGITS, "model": MODEL, "output_dir": str(out), "resume": "auto",
                                   "device": device}))
    best = result.best_dir
    routes = {"hub folder (epsanet eval)": evaluate_model(str(best), DIGITS, device=device, workers=0,
                                                           output_dir=str(out / "eval"))}

    hub_model = torch.hub.load(str(repo_dir or _repo_dir()), MODEL, source="local", weights=str(best))
    routes["torch.hub.load"] = evaluate_model("torch.hub.load", DIGITS, device=device, workers=0,
                                              loaded_model=hub_model)
    timm_model = timm.create_model(f"local-dir:{best}", pretrained=True)
    routes["timm.create_model"] = evaluate_model(f"local-dir:{best}", DIGITS, device=device, workers=0,
                                                 loaded_model=timm_model)

    summary = json.loads((out / "summary.json").read_text())
    report = {
        "model": MODEL, "output_dir": str(out), "best_model": str(best), "target_top1": TARGET_TOP1,
        "train": {"epochs": summary["epochs"], "seconds": summary["train_seconds"],
                  "best_val_top1": summary["best_val_top1"], "best_epoch": summary["best_epoch"],
                  "images_per_second": round(sum(r["train_images_per_second"] for r in result.history)
                                             / max(len(result.history), 1), 1)},
        "evaluations": {name: {k: r[k] for k in ("top1", "top5", "images", "images_per_second")}
                        for name, r in routes.items()},
    }
    write_json(out / "demo.json", report)
    print(f"\nEPSANet-50 (Small) on the held-out digits ({routes['torch.hub.load']['images']} images), "
          f"trained {summary['epochs']} epochs in {summary['train_seconds']:.0f} s:")
    for name, r in routes.items():
        print(f"  {name:28s} top-1 {r['top1']:6.2f}%  top-5 {r['top5']:6.2f}%  {r['images_per_second']:7.1f} img/s")
    top1s = {r["top1"] for r in routes.values()}
    if len(top1s) != 1:
        raise RuntimeError(f"the reloaded models disagree ({sorted(top1s)}): the export or a loader is broken")
    top1 = top1s.pop()
    if top1 < TARGET_TOP1:
        raise RunFailedError(f"top-1 {top1:.2f}% is below the demo's target of {TARGET_TOP1}%: delete {out} and "
                             "run again, or train longer with `epsanet train --epochs N`")
    print(f"demo passed: {top1:.2f}% >= {TARGET_TOP1}% by every route; report in {out / 'demo.json'}")
    return report
