"""How the scoring model is called, measured before adopting a change (issue #15).

Two settings of the call that leave its predictions as they are, for a scoring model (BatchNorms
and LoRA folded, as scoring runs it) on a night of ``--epochs`` 30-s epochs (4 channels), every
time shown per 8-hour night (960 epochs):

- ``--batch-sizes``: epochs per model call (``SleepClassifier.predict_proba(batch_size=)``), the
  sizes in turn for ``--repeats`` rounds in one process, medians; the largest probability change
  against the first size;
- ``--compile PRESET...``: ``torch.compile`` (inductor), which the issue allows "if and only if it measures
  faster including its start-up". Eager, then compiled, in a child process whose first compiled
  call includes the compilation; twice per preset, with an empty compiler cache (a first use) and
  again with that cache (every later process). The start-up is the first compiled call minus a
  compiled call; the nights a process must score to pay it back follow.
- ``--onnx PRESET...``: ONNX Runtime, which the issue names beside it. The scoring model is
  exported once (``torch.onnx.export``, dynamo; a window of epochs per row, any number of rows),
  then: the start-up of a scoring process each way, in fresh child processes (torch: importing
  the scoring module and loading the checkpoint as ``synthsleepnet score`` does; ONNX Runtime:
  its import and an inference session), and a night's model seconds each way in turn (windows of
  ``seq_len`` epochs, as many per call as scoring puts in one), with the largest probability
  change. Needs ``onnx``, ``onnxscript`` and ``onnxruntime`` (``make bench-env``).

    python benchmarks/model_call.py [--presets fast] [--epochs 960] [--repeats 3]
        [--batch-sizes 320 160 96] [--compile fast] [--onnx fast]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from synthsleepnet.models.classifier import SleepClassifier

NIGHT_EPOCHS = 960


def _model_and_night(preset: str, epochs: int) -> tuple[SleepClassifier, dict[str, np.ndarray]]:
    from _measure import random_night, scoring_model

    return scoring_model(preset), random_night(epochs)


def _timed(model: SleepClassifier, night: dict[str, np.ndarray], batch_size: int | None = None
           ) -> tuple[float, np.ndarray]:
    """The call's seconds and probabilities; ``batch_size`` None: scoring's own (the default)."""
    from synthsleepnet._device import resolve_runtime

    runtime = resolve_runtime("cpu", "auto")
    start = time.perf_counter()
    if batch_size is None:
        proba = model.predict_proba(night, runtime=runtime)
    else:
        proba = model.predict_proba(night, runtime=runtime, batch_size=batch_size)
    return time.perf_counter() - start, proba


def _batch_sizes(preset: str, epochs: int, sizes: list[int], repeats: int) -> None:
    import numpy as np

    model, night = _model_and_night(preset, epochs)
    _, reference = _timed(model, night, sizes[0])  # oneDNN's first-call set-up, as in every scoring process
    seconds: dict[int, list[float]] = {size: [] for size in sizes}
    change = dict.fromkeys(sizes, 0.0)
    for _ in range(repeats):
        for size in sizes:
            took, proba = _timed(model, night, size)
            seconds[size].append(took)
            change[size] = max(change[size], float(np.abs(proba - reference).max()))
    median = {size: statistics.median(took) for size, took in seconds.items()}
    for size in sizes:
        print(f"| `{preset}` | {size} | {median[size] * NIGHT_EPOCHS / epochs:.2f} s | "
              f"{median[sizes[0]] / median[size]:.2f}x | {change[size]:.1e} |", flush=True)


def _compiled_child(preset: str, epochs: int, repeats: int) -> dict[str, float]:
    import numpy as np

    model, night = _model_and_night(preset, epochs)
    _, eager_proba = _timed(model, night)
    eager = statistics.median(_timed(model, night)[0] for _ in range(repeats))
    model.compile()
    first, proba = _timed(model, night)
    compiled = statistics.median(_timed(model, night)[0] for _ in range(repeats))
    return {"eager": eager, "first": first, "compiled": compiled, "max_diff": float(np.abs(proba - eager_proba).max())}


def _compiled(preset: str, epochs: int, repeats: int) -> None:
    scale = NIGHT_EPOCHS / epochs
    with tempfile.TemporaryDirectory() as cache:
        for state in ("empty", "filled"):
            run = subprocess.run([sys.executable, __file__, "--child", preset, str(epochs), str(repeats)],
                                 capture_output=True, text=True, env={**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache},
                                 check=True)
            row = json.loads(run.stdout.strip().splitlines()[-1])
            startup = row["first"] - row["compiled"]
            saved = (row["eager"] - row["compiled"]) * scale
            payback = f"{startup / saved:.0f}" if saved > 0 else "never"
            print(f"| `{preset}` | {state} | {row['eager'] * scale:.2f} s | {row['compiled'] * scale:.2f} s | "
                  f"{row['eager'] / row['compiled']:.2f}x | {startup:.1f} s | {payback} | {row['max_diff']:.1e} |",
                  flush=True)


def _export_onnx(model: SleepClassifier, path: Path, windows: int) -> float:
    """Export ``model``'s probabilities for (windows, seq_len, samples) inputs, one per channel,
    traced with ``windows`` windows (the number may vary where the model lets the exporter keep
    it symbolic; ``tiny``'s frame cutting fixes it); returns the seconds the export took."""
    import contextlib
    import io

    import torch
    from _measure import CHANNELS

    from synthsleepnet._config import PreprocessingConfig

    class Probabilities(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *signals: torch.Tensor) -> torch.Tensor:
            return torch.softmax(self.model(dict(zip(CHANNELS, signals, strict=True))), -1)

    example = tuple(torch.zeros(windows, model.seq_len, PreprocessingConfig().epoch_samples) for _ in CHANNELS)
    dim = torch.export.Dim("windows", min=1, max=1024)
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # the exporter narrates its passes
        torch.onnx.export(Probabilities().eval(), example, str(path), dynamo=True, input_names=list(CHANNELS),
                          output_names=["probabilities"], dynamic_shapes=(({0: dim},) * len(CHANNELS),))  # one entry: the *signals
    return time.perf_counter() - start


def _startup_child(kind: str, path: str) -> dict[str, float]:
    """Seconds from before the first import to a model ready to score, in a fresh process."""
    start = time.perf_counter()
    if kind == "torch":
        from synthsleepnet.scoring.score import load_scorers

        load_scorers([path])
    else:
        import onnxruntime

        onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    return {"startup": time.perf_counter() - start}


def _startup(kind: str, path: Path, repeats: int) -> float:
    """The median start-up of ``repeats`` fresh processes."""
    took = []
    for _ in range(repeats):
        run = subprocess.run([sys.executable, __file__, "--startup-child", kind, str(path)], capture_output=True,
                             text=True, check=True)
        took.append(json.loads(run.stdout.strip().splitlines()[-1])["startup"])
    return statistics.median(took)


def _onnx(preset: str, epochs: int, repeats: int) -> None:
    import numpy as np
    import onnxruntime
    from _measure import CHANNELS

    from synthsleepnet import PreprocessingConfig
    from synthsleepnet._config import get_preset
    from synthsleepnet.models import CheckpointMeta, ModelSpec, build_model, save_checkpoint

    model, night = _model_and_night(preset, epochs)
    per_call = 160 // model.seq_len  # windows per call, as scoring's default batch of 160 epochs
    whole = epochs // (model.seq_len * per_call) * model.seq_len * per_call  # whole calls of whole windows
    night = {c: x[:whole] for c, x in night.items()}
    with tempfile.TemporaryDirectory() as work:
        spec = ModelSpec("sleep_classifier", get_preset(preset), CHANNELS, 5, "sequence")
        checkpoint = save_checkpoint(Path(work) / "model.safetensors", build_model(spec), CheckpointMeta(
            phase="finetune", spec=spec, task="stage", preprocessing=PreprocessingConfig()))  # unfolded, as saved
        exported = Path(work) / "model.onnx"
        export_seconds = _export_onnx(model, exported, per_call)
        session = onnxruntime.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
        windows = {c: x.reshape(-1, model.seq_len, x.shape[-1]) for c, x in night.items()}

        def run_onnx() -> tuple[float, np.ndarray]:
            start = time.perf_counter()
            parts = [session.run(None, {c: w[i:i + per_call] for c, w in windows.items()})[0]
                     for i in range(0, len(windows[CHANNELS[0]]), per_call)]
            return time.perf_counter() - start, np.concatenate(parts).reshape(whole, -1)

        _timed(model, night), run_onnx()  # first calls set up oneDNN and ORT's arenas
        seconds: dict[str, list[float]] = {"torch": [], "onnx": []}
        change = 0.0
        for _ in range(repeats):
            took, reference = _timed(model, night)
            seconds["torch"].append(took)
            took, proba = run_onnx()
            seconds["onnx"].append(took)
            change = max(change, float(np.abs(proba - reference).max()))
        startup = {kind: _startup(kind, path, repeats) for kind, path in (("torch", checkpoint), ("onnx", exported))}
    scale = NIGHT_EPOCHS / whole
    ours, theirs = (statistics.median(seconds[kind]) * scale for kind in ("torch", "onnx"))
    print(f"| `{preset}` | {export_seconds:.1f} s | {startup['torch']:.2f} s | {startup['onnx']:.2f} s | "
          f"{ours:.2f} s | {theirs:.2f} s | {ours / theirs:.2f}x | {change:.1e} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["fast"])
    parser.add_argument("--epochs", type=int, default=NIGHT_EPOCHS, help="epochs timed (shown per 8-h night)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls each way (medians)")
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[320, 160, 96], metavar="EPOCHS")
    parser.add_argument("--compile", nargs="+", default=[], metavar="PRESET",
                        help="also measure torch.compile for these presets (minutes each)")
    parser.add_argument("--onnx", nargs="+", default=[], metavar="PRESET",
                        help="also measure ONNX Runtime for these presets (a minute each)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--startup-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_compiled_child(args.child[0], int(args.child[1]), int(args.child[2]))))
        return
    if args.startup_child:
        print(json.dumps(_startup_child(*args.startup_child)))
        return
    from _measure import describe_cpu

    print(f"{describe_cpu()}; {args.epochs} epochs × 4 channels timed, shown per 8-h night ({NIGHT_EPOCHS} "
          f"epochs); medians of {args.repeats} calls")
    change = "largest probability change"
    _header("preset", "epochs per call", "model seconds", f"speed-up (vs {args.batch_sizes[0]})", change)
    for preset in args.presets:
        _batch_sizes(preset, args.epochs, args.batch_sizes, args.repeats)
    if args.compile:
        _header("preset", "compiler cache", "eager", "compiled", "speed-up", "start-up", "nights to pay it back", change)
    for preset in args.compile:
        _compiled(preset, args.epochs, args.repeats)
    if args.onnx:
        _header("preset", "export (once a model)", "start-up: torch", "start-up: ONNX Runtime", "model seconds: torch",
                "model seconds: ONNX Runtime", "speed-up", change)
    for preset in args.onnx:
        _onnx(preset, args.epochs, args.repeats)


def _header(*columns: str) -> None:
    """A Markdown table's header, after a blank line."""
    print(f"\n| {' | '.join(columns)} |\n|{'---|' * len(columns)}")


if __name__ == "__main__":
    main()
