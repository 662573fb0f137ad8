"""int8 dynamic quantisation of the Linear layers, measured before adopting it (issue #15).

Every ``nn.Linear`` of a scoring model (BatchNorms and LoRA folded, as scoring runs it) replaced
by torch's dynamically quantised one (int8 weights, activations quantised per call), against
the same model in fp32, side by side in one process:

- speed: the model's time for a night of ``--epochs`` 30-s epochs (4 channels), per preset,
  fp32 and int8 alternating, median of ``--repeats``; the share of the fp32 time in matrix
  products (``addmm``/``mm``: the Linear layers and the stem's product over the unfolded signal,
  torch profiler) bounds what int8 Linear layers could save;
- accuracy: for each trained stage checkpoint given, the test split's macro-F1 and κ both ways.

    python benchmarks/int8_linear.py [--presets fast small paper] [--epochs 960]
        [--checkpoints A.safetensors ... --store STORE]
"""

from __future__ import annotations

import argparse
import copy
import importlib
import statistics
import time
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any, TypeVar
from unittest import mock

import numpy as np
import torch
from _measure import describe_cpu, random_night, scoring_model
from torch import nn
from torch.ao.quantization import quantize_dynamic
from torch.profiler import ProfilerActivity, profile

from synthsleepnet._device import Runtime, resolve_runtime
from synthsleepnet.models.classifier import SleepClassifier
from synthsleepnet.models.inference import fuse_for_inference
from synthsleepnet.training import evaluate

M = TypeVar("M", bound=nn.Module)


def int8_linear(model: M) -> M:
    """``model`` with every ``nn.Linear`` dynamically quantised to int8 (in place)."""
    with warnings.catch_warnings():  # torch marks its eager quantisation deprecated (moving to torchao)
        warnings.simplefilter("ignore")
        quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8, inplace=True)
    return model


def _product_share(model: SleepClassifier, night: dict[str, np.ndarray], runtime: Runtime) -> float:
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        model.predict_proba(night, runtime=runtime)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    products = sum(e.self_cpu_time_total for e in events if e.key in ("aten::addmm", "aten::mm"))
    return products / total


def speed(preset: str, n_epochs: int, repeats: int, runtime: Runtime) -> dict[str, Any]:
    """fp32 against int8 model time for one preset (random weights: time does not depend on them),
    and the largest change int8 makes to the same model's probabilities."""
    fp32 = scoring_model(preset)
    int8 = int8_linear(copy.deepcopy(fp32))
    night = random_night(n_epochs)
    runs: dict[str, Callable[[], Any]] = {"fp32": lambda: fp32.predict_proba(night, runtime=runtime),
                                          "int8": lambda: int8.predict_proba(night, runtime=runtime)}
    times: dict[str, list[float]] = {k: [] for k in runs}
    outputs = {name: run() for name, run in runs.items()}  # warm-up
    for _ in range(repeats):
        for name, run in runs.items():
            t0 = time.perf_counter()
            outputs[name] = run()
            times[name].append(time.perf_counter() - t0)
    a, b = (statistics.median(times[k]) for k in ("fp32", "int8"))
    deviation = float(np.abs(outputs["fp32"] - outputs["int8"]).max())
    return {"preset": preset, "fp32_s": a, "int8_s": b, "speedup": a / b,
            "product_share": _product_share(fp32, night, runtime), "max_proba_change": deviation}


def _quantised_loading() -> Any:
    """``evaluate`` loading each classifier folded and quantised, as a quantised scorer would."""
    evaluate_module = importlib.import_module("synthsleepnet.training.evaluate")  # the package's name is the function
    load = evaluate_module.load_classifier

    def load_int8(*args: Any, **kwargs: Any) -> Any:
        model, meta = load(*args, **kwargs)
        return int8_linear(fuse_for_inference(model)), meta

    return mock.patch.object(evaluate_module, "load_classifier", load_int8)


def accuracy(checkpoint: Path, store: Path) -> dict[str, Any]:
    """Test-split macro-F1 and κ of one checkpoint, fp32 and int8."""
    row: dict[str, Any] = {"checkpoint": str(checkpoint)}
    for name in ("fp32", "int8"):
        with _quantised_loading() if name == "int8" else nullcontext():
            m = evaluate(checkpoint, store, device="cpu", precision="fp32", feature_cache=False)
        row[f"{name}_macro_f1"], row[f"{name}_kappa"] = m["macro_f1"], m["kappa"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["fast", "small", "paper"])
    parser.add_argument("--epochs", type=int, default=960, help="epochs of the timed night (960: 8 hours)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--checkpoints", nargs="*", type=Path, default=[], help="trained stage classifiers")
    parser.add_argument("--store", type=Path, help="the store the checkpoints were trained on (its test split)")
    args = parser.parse_args()
    runtime = resolve_runtime("cpu", "fp32")
    print(f"{describe_cpu()}; torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"quantised engine {torch.backends.quantized.engine}")
    print(f"\nmodel time for a night of {args.epochs} epochs x 4 channels (median of {args.repeats}, alternating):")
    print(f"{'preset':<7} {'fp32 s':>8} {'int8 s':>8} {'speed-up':>9} {'addmm+mm share':>15} {'max |dp|':>9}")
    for preset in args.presets:
        r = speed(preset, args.epochs, args.repeats, runtime)
        print(f"{r['preset']:<7} {r['fp32_s']:>8.2f} {r['int8_s']:>8.2f} {r['speedup']:>8.2f}x "
              f"{r['product_share']:>14.0%} {r['max_proba_change']:>9.3f}", flush=True)
    if args.checkpoints:
        print(f"\ntest split of {args.store} (fp32 -> int8):")
        for checkpoint in args.checkpoints:
            r = accuracy(checkpoint, args.store)
            print(f"{checkpoint}: macro-F1 {r['fp32_macro_f1']:.3f} -> {r['int8_macro_f1']:.3f} "
                  f"({r['int8_macro_f1'] - r['fp32_macro_f1']:+.3f}), kappa {r['fp32_kappa']:.3f} -> "
                  f"{r['int8_kappa']:.3f} ({r['int8_kappa'] - r['fp32_kappa']:+.3f})", flush=True)


if __name__ == "__main__":
    main()
