"""Warm start vs random initialisation, measured on scikit-learn's digits (1,797 8x8 images).

Does initialising an EPSANet (or an SE/ECA-ResNet) from ResNet-50 weights with
``epsanet.transplant`` beat random initialisation after the same number of fine-tuning steps?

Source weights (``--source``):
  digits04  (default, offline) a plain torchvision ResNet-50 trained here on digits 0-4: a
            different real task from the fine-tuning task (digits 5-9, other classes). It stands
            in for ImageNet weights, which cannot be downloaded on a machine without internet.
  imagenet  torchvision's ResNet50_Weights.IMAGENET1K_V2 (needs network access once). The digits
            are then normalised with ImageNet's mean and std.

Fine-tuning: digits 5-9, ``--train-per-class`` images per class for training, ``--test-per-class``
other images per class for testing; every variant gets the same steps, batch size, optimiser,
data order and head initialisation for a given seed; only the backbone initialisation differs.
Test accuracy is measured after each budget of ``--steps``. Prints a table (mean +- standard
deviation over seeds) and writes it as JSON with ``--json``. Needs scikit-learn (``pip install
-e .[bench]``).

    python benchmarks/warm_start_digits.py                       # offline substitute
    python benchmarks/warm_start_digits.py --source imagenet     # the real thing, with network
"""
import argparse
import json
import os
import statistics
import time
from typing import Dict, Iterator, List, Tuple

import torch
import torch.nn.functional as F
import torchvision
from safetensors.torch import load_file, save_file
from sklearn.datasets import load_digits

import epsanet
from epsanet._utils.files import atomic_file

VARIANTS = {
    "random": "random initialisation",
    "transplant": "epsanet.transplant",
    "transplant-no-psa": "epsanet.transplant(psa_from_3x3=False): PSA branches not initialised",
}
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def digits(img_size: int, imagenet_norm: bool) -> Tuple[torch.Tensor, torch.Tensor]:
    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    x = F.interpolate(x, size=(img_size, img_size), mode="bilinear", align_corners=False).repeat(1, 3, 1, 1)
    if imagenet_norm:
        x = (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    else:
        x = (x - 0.5) / 0.5
    return x, torch.tensor(data.target)


def split_target(x: torch.Tensor, y: torch.Tensor, train_per_class: int, test_per_class: int, seed: int):
    """Digits 5-9 relabelled 0-4: disjoint training and test images, so many per class."""
    g = torch.Generator().manual_seed(seed)
    train, test = [], []
    for digit in range(5, 10):
        idx = (y == digit).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        train.append(idx[:train_per_class])
        test.append(idx[train_per_class:train_per_class + test_per_class])
    train, test = torch.cat(train), torch.cat(test)
    return (x[train], y[train] - 5), (x[test], y[test] - 5)


def train(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, budgets: List[int], batch_size: int, lr: float,
          seed: int) -> Iterator[int]:
    """AdamW on random batches; yields after each step budget (the model is left in train mode)."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    g = torch.Generator().manual_seed(seed)
    for step in range(1, max(budgets) + 1):
        model.train()
        batch = torch.randint(len(x), (batch_size,), generator=g)
        loss = F.cross_entropy(model(x[batch]), y[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step in budgets:
            yield step


@torch.no_grad()
def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    correct = sum((model(x[i:i + 256]).argmax(1) == y[i:i + 256]).sum().item() for i in range(0, len(x), 256))
    return 100.0 * correct / len(x)


def source_weights(args: argparse.Namespace, x: torch.Tensor, y: torch.Tensor) -> Dict[str, torch.Tensor]:
    """The ResNet-50 weights to transplant, without the classifier (it knows other classes)."""
    if args.source == "imagenet":
        state = torchvision.models.resnet50(weights=torchvision.models.ResNet50_Weights.IMAGENET1K_V2).state_dict()
    elif args.source_cache and os.path.exists(args.source_cache):
        state = load_file(args.source_cache)
        print(f"source ResNet-50 (digits 0-4) read from {args.source_cache}", flush=True)
    else:
        torch.manual_seed(1234)
        resnet = torchvision.models.resnet50(num_classes=5)
        source = y < 5
        start = time.perf_counter()
        for _ in train(resnet, x[source], y[source], [args.pretrain_steps], args.batch_size, args.lr, seed=1234):
            pass
        print(f"source ResNet-50 trained on digits 0-4 for {args.pretrain_steps} steps in "
              f"{time.perf_counter() - start:.0f} s; accuracy on its training images: "
              f"{accuracy(resnet, x[source], y[source]):.1f}%", flush=True)
        state = resnet.state_dict()
        if args.source_cache:
            os.makedirs(os.path.dirname(args.source_cache) or ".", exist_ok=True)
            with atomic_file(args.source_cache) as tmp:
                save_file(state, tmp)
    return {k: v for k, v in state.items() if not k.startswith("fc.")}


def run(args: argparse.Namespace) -> List[dict]:
    x, y = digits(args.img_size, imagenet_norm=args.source == "imagenet")
    resnet = source_weights(args, x, y)
    rows = []
    for name in args.models:
        variants = [v for v in VARIANTS if v != "transplant-no-psa" or name.startswith("epsanet")]
        results = {(v, steps): [] for v in variants for steps in args.steps}
        for seed in args.seeds:
            (train_x, train_y), (test_x, test_y) = split_target(x, y, args.train_per_class, args.test_per_class, seed)
            for variant in variants:
                torch.manual_seed(seed)  # the same initialisation of everything a variant does not transplant
                model = epsanet.create_model(name, num_classes=5)
                if variant != "random":
                    epsanet.transplant(resnet, model, psa_from_3x3=variant == "transplant")
                start = time.perf_counter()
                for steps in train(model, train_x, train_y, args.steps, args.batch_size, args.lr, seed):
                    acc = accuracy(model, test_x, test_y)
                    results[variant, steps].append(acc)
                    print(f"{name} {variant} seed {seed} after {steps} steps: {acc:.1f}% "
                          f"({time.perf_counter() - start:.0f} s)", flush=True)
        for (variant, steps), accs in results.items():
            rows.append({"model": name, "init": variant, "steps": steps, "accuracies": accs,
                         "mean": statistics.mean(accs), "std": statistics.stdev(accs) if len(accs) > 1 else 0.0})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", choices=["digits04", "imagenet"], default="digits04")
    parser.add_argument("--source-cache", default="runs/warm_start/resnet50_digits04.safetensors",
                        help="where the digits 0-4 ResNet-50 is kept between runs ('' to retrain every time)")
    parser.add_argument("--models", nargs="+", default=["epsanet50_small", "se_resnet50"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--img-size", type=int, default=32)
    parser.add_argument("--train-per-class", type=int, default=50)
    parser.add_argument("--test-per-class", type=int, default=60)
    parser.add_argument("--steps", nargs="+", type=int, default=[15, 45],
                        help="fine-tuning step budgets after which to test, the same for every variant")
    parser.add_argument("--pretrain-steps", type=int, default=120, help="steps of the digits 0-4 ResNet-50")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, help="torch threads (1 is fastest on a busy shared machine)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = run(args)
    print(f"\nsource: {args.source}; fine-tuning on digits 5-9 ({args.train_per_class} training and "
          f"{args.test_per_class} test images per class), batches of {args.batch_size}, {args.img_size} px, "
          f"seeds {args.seeds}\n")
    print("| model | initialisation | steps | test accuracy (%) | per seed |")
    print("|---|---|---:|---:|---|")
    for r in rows:
        print(f"| {r['model']} | {VARIANTS[r['init']]} | {r['steps']} | {r['mean']:.1f} ± {r['std']:.1f} | "
              f"{', '.join(f'{a:.1f}' for a in r['accuracies'])} |")
    if args.json:
        with atomic_file(args.json) as tmp:
            tmp.write_text(json.dumps({"args": vars(args), "results": rows}, indent=2))


if __name__ == "__main__":
    main()
