"""The README's benchmark: EPSANet against torchvision's resnet50 and the official PSA formulation.

    python benchmarks/bench_models.py                       # EPSANet-50 Small, results in benchmarks/results/
    python benchmarks/bench_models.py epsanet101_small epsanet50_large --threads 2

Arguments are those of ``epsanet bench`` (model names first); the table goes to stdout, and
``results/bench.json`` and ``results/bench.png`` are written next to this script unless ``--json``
or ``--chart`` is given.
"""
import sys
from pathlib import Path

from epsanet.cli import main

RESULTS = Path(__file__).resolve().parent / "results"

if __name__ == "__main__":
    args = sys.argv[1:]
    RESULTS.mkdir(exist_ok=True)
    if "--json" not in args:
        args += ["--json", str(RESULTS / "bench.json")]
    if "--chart" not in args:
        args += ["--chart", str(RESULTS / "bench.png")]
    sys.exit(main(["bench", *args]))
