"""GFLOP/s of every way of computing each PSA branch convolution of EPSANet Small and Large.

For each branch shape (stage input, kernel, groups) it times, interleaved, every candidate the
autotuner considers (``epsanet.layers.psa.branch_conv_candidates``: the native grouped
convolution, groups merged pairwise with block-diagonal weights, the depthwise + channel-sum
decomposition), in NCHW and channels_last, and marks the rule's default plan (``*``), the one
taken with ``EPSANET_AUTOTUNE=0``. GFLOP/s count useful work only
(the grouped convolution's FLOPs), so methods compare directly.

    python benchmarks/branch_convs.py                    # fp32 inference, batch 16
    python benchmarks/branch_convs.py --dtype bf16
    python benchmarks/branch_convs.py --train --batch-size 8
"""
import argparse

import torch

from epsanet._utils.timing import time_interleaved
from epsanet.layers._autotune import isa_summary, machine_key
from epsanet.layers.psa import branch_conv_candidates, branch_conv_plan, grouped_conv2d

SMALL, LARGE = (1, 4, 8, 16), (32, 32, 32, 32)
KERNELS = (3, 5, 7, 9)
# (label, in_channels, input size, stride, groups) of the PSA modules of each stage at 224 px
# (the first block of stages 2-4 applies the stride).
STAGES = [
    ("small layer1", 64, 56, 1, SMALL), ("small layer2.0", 128, 56, 2, SMALL), ("small layer2", 128, 28, 1, SMALL),
    ("small layer3", 256, 14, 1, SMALL), ("small layer4", 512, 7, 1, SMALL),
    ("large layer1", 128, 56, 1, LARGE), ("large layer2", 256, 28, 1, LARGE),
    ("large layer3", 512, 14, 1, LARGE), ("large layer4", 1024, 7, 1, LARGE),
]


def methods(in_channels: int, groups: int):
    found = set(branch_conv_candidates(in_channels // groups, in_channels // 4 // groups, groups))
    found.add(("depthwise", groups))
    return sorted(found, key=lambda m: (m[0], -m[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--train", action="store_true", help="time forward + backward")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    print(f"# {machine_key()['cpu']}, {isa_summary()}; {args.dtype} {'training' if args.train else 'inference'}, "
          f"batch {args.batch_size}, {torch.get_num_threads()} threads, torch {torch.__version__}; "
          f"GFLOP/s of useful work, * = the rule's plan")
    print("| branch | " + " | ".join(["method", "NCHW", "channels_last"]) + " |\n|---|---|---:|---:|")
    for label, in_channels, size, stride, all_groups in STAGES:
        split = in_channels // 4
        for kernel, groups in zip(KERNELS, all_groups):
            if groups == 1:
                continue
            weight = torch.randn(split, in_channels // groups, kernel, kernel, dtype=dtype) * 0.05
            runs = {}
            for layout in (torch.contiguous_format, torch.channels_last):
                x = torch.randn(args.batch_size, in_channels, size, size, dtype=dtype).contiguous(memory_format=layout)
                for method, groups_to_run in methods(in_channels, groups):
                    def run(x=x, method=method, groups_to_run=groups_to_run, weight=weight, groups=groups,
                            stride=stride, kernel=kernel):
                        if args.train:
                            xi, wi = x.detach().requires_grad_(), weight.detach().requires_grad_()
                            out = grouped_conv2d(xi, wi, groups, stride, kernel // 2, 1, method, groups_to_run)
                            out.sum().backward()
                        else:
                            with torch.inference_mode():
                                grouped_conv2d(x, weight, groups, stride, kernel // 2, 1, method, groups_to_run)
                    runs[(method, groups_to_run, layout)] = run
            seconds = time_interleaved(runs, args.repeats)
            out = size // stride
            flops = (2 * args.batch_size * out * out * split * (in_channels // groups) * kernel ** 2
                     * (3 if args.train else 1))
            plan = branch_conv_plan(in_channels // groups, split // groups, groups, kernel, "cpu", dtype)
            for method, groups_to_run in methods(in_channels, groups):
                speeds = [flops / seconds[(method, groups_to_run, layout)] / 1e9
                          for layout in (torch.contiguous_format, torch.channels_last)]
                mark = "*" if (method, groups_to_run) == plan else ""
                print(f"| {label} k{kernel} g{groups} | {method} {groups_to_run} groups{mark} | "
                      f"{speeds[0]:.1f} | {speeds[1]:.1f} |", flush=True)


if __name__ == "__main__":
    main()
