"""The one prepared GPU check: correctness next to the CPU, speed, Mamba2, and a NCCL DDP step.

Runs in under 8 minutes on one H100 and prints a Markdown table (and writes gpu_check.json):

(a) a few pretraining (NeuroNet), fusion (SynthSleepNet) and fine-tuning (LoRA + Mamba2) steps of
    each preset on CUDA next to the same steps on the CPU: same seed, same batch, same masks (the
    masks are drawn from one CPU generator), fp32 on the CPU and bf16 autocast on the GPU; the
    losses must agree within bf16 tolerance;
(b) training throughput of the paper NeuroNet and fusion at bf16 (epochs/s, peak GPU memory), and
    scoring a simulated 8-hour night on the GPU end to end (prepare → encode → temporal module);
(c) the chunked Mamba2 scan against the sequential recurrence on CUDA in float64 (and against
    ``mamba_ssm``'s fused kernel when it is importable);
(d) a 1-process NCCL DDP training step through the package's own loop.

It needs only what the GPU image has (torch, numpy, scipy, pandas, safetensors, tqdm): the night
is simulated in memory, never written as EDF. ``--device cpu --quick`` runs every path on the CPU
in about a minute (the test suite does, so the script cannot rot).

    PYTHONPATH=src python3 benchmarks/gpu_check.py [--out DIR] [--device cuda] [--quick]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _measure import CHANNELS

from synthsleepnet._config import ModelConfig, PreprocessingConfig, TrainConfig, get_preset
from synthsleepnet._device import Runtime
from synthsleepnet.models import CheckpointMeta, ModelSpec, build_model, save_checkpoint
from synthsleepnet.models.classifier import SleepClassifier
from synthsleepnet.models.mamba2 import ssd_chunked, ssd_sequential
from synthsleepnet.models.neuronet import NeuroNet
from synthsleepnet.models.synthsleepnet import SynthSleepNet
from synthsleepnet.training.losses import neuronet_loss, synthsleepnet_loss

ROWS: list[dict[str, Any]] = []


def _row(check: str, result: str, ok: bool | None, **numbers: Any) -> None:
    ROWS.append({"check": check, "result": result, "ok": ok, **numbers})
    mark = "" if ok is None else ("PASS" if ok else "FAIL")
    print(f"| {check} | {result} | {mark} |", flush=True)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --- (a) the same steps on both devices ---------------------------------------------------------
def _steps(make: Callable[[], torch.nn.Module], loss_of: Callable[[torch.nn.Module, torch.Generator], torch.Tensor],
           device: torch.device, dtype: torch.dtype | None, n: int = 3) -> list[float]:
    """``n`` AdamW steps from a seeded model; masks from a seeded CPU generator (identical on both)."""
    torch.manual_seed(0)
    model = make().to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    runtime = Runtime(device, dtype)
    losses = []
    for step in range(n):
        generator = torch.Generator().manual_seed(step)
        with runtime.autocast():
            loss = loss_of(model, generator)
        opt.zero_grad(set_to_none=True)
        loss.float().backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


def _step_cases(config: ModelConfig, x: torch.Tensor
                ) -> dict[str, tuple[Callable[[], torch.nn.Module], Callable[[Any, torch.Generator], torch.Tensor]]]:
    """Per kind of training: how to build its model, and its loss on ``x``."""
    return {
        "pretrain NeuroNet": (lambda: NeuroNet(config.encoder, config.neuronet),
                              lambda m, g: neuronet_loss(m.pretext(x.to(_dev(m)), g), config.neuronet)["loss"]),
        "pretrain fusion": (lambda: SynthSleepNet(CHANNELS, config.encoder, config.fusion),
                            lambda m, g: synthsleepnet_loss(
                                m.pretext({ch: x.to(_dev(m)) for ch in CHANNELS}, g), config.fusion)["loss"]),
        "fine-tune (LoRA + Mamba2)": (lambda: SleepClassifier(CHANNELS, config, 5, "sequence"),
                                      lambda m, g: _sequence_loss(m, x)),
    }


def check_steps(device: torch.device, presets: list[str], quick: bool) -> None:
    gen = torch.Generator().manual_seed(1)
    batch = 4 if quick else 8
    x = torch.randn(batch, 3000, generator=gen)
    for preset in presets:
        config = get_preset(preset)
        config = dataclasses.replace(config, temporal=dataclasses.replace(config.temporal, dropout=0.0))
        for name, (make, loss_of) in _step_cases(config, x).items():
            cpu = _steps(make, loss_of, torch.device("cpu"), None)
            dev = _steps(make, loss_of, device, torch.bfloat16 if device.type == "cuda" else None)
            worst = max(abs(a - b) / max(abs(a), 1e-6) for a, b in zip(cpu, dev, strict=True))
            _row(f"(a) {preset}: {name}, 3 steps", f"losses CPU fp32 {cpu[-1]:.4f} vs {device.type} "
                 f"{'bf16' if device.type == 'cuda' else 'fp32'} {dev[-1]:.4f}; max relative gap {worst:.2e}",
                 worst < 3e-2, preset=preset, cpu_losses=cpu, device_losses=dev)


def _dev(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def _sequence_loss(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    seq = x[:1].repeat(20, 1).reshape(1, 20, 3000).to(_dev(model))
    logits = model({ch: seq for ch in CHANNELS})
    target = torch.arange(20, device=logits.device) % 5
    return torch.nn.functional.cross_entropy(logits.reshape(-1, 5).float(), target)


# --- (b) throughput ----------------------------------------------------------------------------
def _throughput(model: torch.nn.Module, loss_of: Callable[[], torch.Tensor], device: torch.device,
                epochs_per_step: int, steps: int) -> tuple[float, float]:
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    runtime = Runtime(device, torch.bfloat16 if device.type == "cuda" else None)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for i in range(steps + 2):
        if i == 2:
            _sync(device)
            t0 = time.perf_counter()
        with runtime.autocast():
            loss = loss_of()
        opt.zero_grad(set_to_none=True)
        loss.float().backward()
        opt.step()
    _sync(device)
    rate = steps * epochs_per_step / (time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    return rate, peak


def check_throughput(device: torch.device, quick: bool) -> None:
    preset = "tiny" if quick else "paper"
    config = get_preset(preset)
    batch = 16 if quick else 256
    precision = "bf16" if device.type == "cuda" else "fp32"
    torch.manual_seed(0)
    neuronet = NeuroNet(config.encoder, config.neuronet).to(device)
    x = torch.randn(batch, 3000, device=device)
    g = torch.Generator(device=device).manual_seed(0)
    rate, peak = _throughput(neuronet, lambda: neuronet_loss(neuronet.pretext(x, g), config.neuronet)["loss"],
                             device, batch, 2 if quick else 8)
    _row(f"(b) {preset} NeuroNet pretraining, batch {batch}, {precision}", f"{rate:,.0f} epochs/s; peak {peak:.1f} GiB",
         None, epochs_per_s=rate, peak_gib=peak)
    fusion_batch = 8 if quick else 64
    fusion = SynthSleepNet(CHANNELS, config.encoder, config.fusion).to(device)
    xs = {ch: torch.randn(fusion_batch, 3000, device=device) for ch in CHANNELS}
    rate, peak = _throughput(fusion, lambda: synthsleepnet_loss(fusion.pretext(xs, g), config.fusion)["loss"],
                             device, fusion_batch, 2 if quick else 6)
    _row(f"(b) {preset} fusion pretraining, 4 channels, batch {fusion_batch}, {precision}",
         f"{rate:,.0f} epochs/s ({4 * rate:,.0f} epoch-channels/s); peak {peak:.1f} GiB", None,
         epochs_per_s=rate, peak_gib=peak)


def check_scoring(device: torch.device, quick: bool, workdir: Path) -> None:
    from synthsleepnet.io.recording import Recording, Signal
    from synthsleepnet.scoring import score_recording
    from synthsleepnet.simulate import simulate_night

    hours = 1.0 if quick else 8.0
    preset = "tiny" if quick else "paper"
    night = simulate_night(7, hours)
    signals = [Signal.from_array(label, data, sfreq, unit) for label, (data, sfreq, unit) in night.signals.items()]
    recording = Recording(workdir / "night.edf", signals, night.start, [])
    torch.manual_seed(0)
    spec = ModelSpec("sleep_classifier", get_preset(preset), CHANNELS, 5, "sequence")
    meta = CheckpointMeta(phase="finetune", spec=spec, task="stage", preprocessing=PreprocessingConfig())
    checkpoint = save_checkpoint(workdir / f"{preset}.safetensors", build_model(spec), meta)
    for _ in range(2):  # the first run warms up kernels and caches; the second is timed
        _sync(device)
        t0 = time.perf_counter()
        result = score_recording(recording, [checkpoint], device=str(device))
        _sync(device)
        seconds = time.perf_counter() - t0
    ok = result.n_epochs == int(hours * 120) and result.stage_proba is not None
    _row(f"(b) score a simulated {hours:g}-h night ({preset}, 4 channels) on {device.type}",
         f"{seconds:.1f} s end to end ({result.n_epochs} epochs; second run)", ok, seconds=seconds)


# --- (c) Mamba2 --------------------------------------------------------------------------------
def check_mamba(device: torch.device) -> None:
    g = torch.Generator().manual_seed(0)
    b, length, h, p, groups, n = 2, 40, 4, 16, 1, 16
    args = [torch.randn(b, length, h, p, generator=g, dtype=torch.float64),
            torch.rand(b, length, h, generator=g, dtype=torch.float64),
            -torch.rand(h, generator=g, dtype=torch.float64) * 4,
            torch.randn(b, length, groups, n, generator=g, dtype=torch.float64),
            torch.randn(b, length, groups, n, generator=g, dtype=torch.float64)]
    moved = [a.to(device) for a in args]
    x, dt, a, b_ssm, c_ssm = moved
    gap = (ssd_chunked(x, dt, a, b_ssm, c_ssm, chunk=16) - ssd_sequential(x, dt, a, b_ssm, c_ssm)).abs().max().item()
    _row(f"(c) chunked Mamba2 vs sequential recurrence on {device.type}, float64", f"max abs difference {gap:.1e}",
         gap < 1e-10, max_abs_diff=gap)
    try:
        from mamba_ssm.ops.triton.ssd_combined import mamba_chunk_scan_combined
    except ImportError:
        _row("(c) chunked Mamba2 vs mamba_ssm fused kernel", "mamba_ssm not installed: not compared", None)
        return
    x, dt, a, b_ssm, c_ssm = (t.to(device, torch.float32) for t in args)
    fused = mamba_chunk_scan_combined(x, dt, a, b_ssm, c_ssm, chunk_size=16)
    gap = (fused - ssd_chunked(x, dt, a, b_ssm, c_ssm, chunk=16)).abs().max().item()
    _row("(c) chunked Mamba2 vs mamba_ssm fused kernel, float32", f"max abs difference {gap:.1e}", gap < 1e-3,
         max_abs_diff=gap)


# --- (d) DDP -------------------------------------------------------------------------------------
def check_ddp(device: torch.device, workdir: Path) -> None:
    from torch.utils.data import TensorDataset

    from synthsleepnet.training import fit

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK="0", LOCAL_RANK="0", WORLD_SIZE="1")
    backend = "nccl" if device.type == "cuda" else "gloo"
    torch.distributed.init_process_group(backend, rank=0, world_size=1)
    try:
        spec = ModelSpec("sleep_classifier", get_preset("tiny"), CHANNELS[:2], 5, "epoch")
        model = build_model(spec)
        meta = CheckpointMeta(phase="probe", spec=spec, task="stage", preprocessing=PreprocessingConfig())
        g = torch.Generator().manual_seed(0)
        x = {ch: torch.randn(16, 3000, generator=g) for ch in CHANNELS[:2]}
        items = TensorDataset(x[CHANNELS[0]], x[CHANNELS[1]], torch.randint(0, 5, (16,), generator=g))

        def step(batch: Any, _: torch.Generator) -> dict[str, torch.Tensor]:
            logits = model({CHANNELS[0]: batch[0], CHANNELS[1]: batch[1]})
            return {"loss": torch.nn.functional.cross_entropy(logits.float(), batch[2])}

        config = TrainConfig(epochs=1, batch_size=8, device=str(device), precision="bf16" if device.type == "cuda"
                             else "fp32")
        result = fit(model, items, step, config=config, out_dir=workdir / "ddp", meta=meta, progress=False)
        wrapped = torch.distributed.is_initialized() and torch.distributed.get_backend() == backend
        ok = result.checkpoint.exists() and np.isfinite(result.history[-1]["loss"]) and wrapped
        _row(f"(d) 1-process {backend.upper()} DDP step through fit()", f"loss {result.history[-1]['loss']:.4f}; "
             f"checkpoint written", ok)
    finally:
        torch.distributed.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu, for a smoke run")
    parser.add_argument("--quick", action="store_true", help="tiny preset and short runs (a smoke test)")
    parser.add_argument("--out", default=".", help="folder for gpu_check.json")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("CUDA is not available here; run with --device cpu --quick for a smoke test")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"device: {name}; torch {torch.__version__}\n\n| check | result | |\n|---|---|---|")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        check_steps(device, ["tiny"] if args.quick else ["tiny", "small", "paper"], args.quick)
        check_throughput(device, args.quick)
        check_scoring(device, args.quick, Path(tmp))
        check_mamba(device)
        check_ddp(device, Path(tmp))
    seconds = time.perf_counter() - t0
    print(f"\n{sum(r['ok'] is False for r in ROWS)} failed of {sum(r['ok'] is not None for r in ROWS)} checks; "
          f"{seconds:.0f} s")
    out = Path(args.out) / "gpu_check.json"
    out.write_text(json.dumps({"device": name, "torch": torch.__version__, "seconds": seconds, "rows": ROWS},
                              indent=1, default=str))
    if any(r["ok"] is False for r in ROWS):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
