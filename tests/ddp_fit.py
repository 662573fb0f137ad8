"""Run by tests/test_training.py: the training loop on a small regression, 1 or 2 processes."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from helpers import head_and_meta
from safetensors.torch import load_file
from torch.utils.data import TensorDataset

from synthsleepnet._config import TrainConfig
from synthsleepnet.training import fit


def main(out: str) -> None:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 16, generator=g), torch.randint(0, 3, (64,), generator=g)
    torch.manual_seed(0)
    model, meta = head_and_meta(16, 5)
    y = y % 5
    for m in model.modules():  # no BatchNorm: its statistics stay per process under DDP on CPU
        if isinstance(m, torch.nn.BatchNorm1d):
            m.eval()
            m.track_running_stats = False
    model.net[1] = torch.nn.Identity()
    model.net[5] = torch.nn.Identity()

    def step(batch: tuple[torch.Tensor, torch.Tensor], _: torch.Generator) -> dict[str, torch.Tensor]:
        return {"loss": torch.nn.functional.cross_entropy(model(batch[0]), batch[1])}

    config = TrainConfig(epochs=2, batch_size=16, base_lr=0.05, precision="fp32", device="cpu", seed=3)
    result = fit(model, TensorDataset(x, y), step, config=config, out_dir=out, meta=meta, progress=False)
    if torch.distributed.is_initialized():
        weights = torch.cat([p.detach().flatten() for p in model.parameters()])
        gathered = [torch.zeros_like(weights) for _ in range(torch.distributed.get_world_size())]
        torch.distributed.all_gather(gathered, weights)
        if torch.distributed.get_rank() == 0:
            torch.save(torch.stack(gathered), Path(out) / "ranks.pt")
        torch.distributed.barrier()  # both ranks leave together: no rank tears gloo down under the other
        torch.distributed.destroy_process_group()
    assert load_file(str(result.checkpoint))  # noqa: S101


if __name__ == "__main__":
    main(sys.argv[1])
