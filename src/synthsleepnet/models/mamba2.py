"""Mamba2 in pure PyTorch: the chunked state-space-duality (SSD) scan, for CPUs.

Parameterised like ``mamba_ssm.Mamba2`` (Dao & Gu, 2024, arXiv:2405.21060), with the same
parameter names and shapes (``in_proj``, ``conv1d``, ``dt_bias``, ``A_log``, ``D``, ``norm``,
``out_proj``), so weights move between the two. On CUDA with ``mamba_ssm`` installed the fused
Triton scan is used; everywhere else the chunked form below, which equals the sequential
recurrence ``h_t = exp(dt_t A) h_{t-1} + dt_t x_t B_t``, ``y_t = C_t h_t + D x_t``
(:func:`ssd_sequential`, the reference it is tested against).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Mamba2", "ssd_chunked", "ssd_sequential"]


def _segment_sum(x: torch.Tensor) -> torch.Tensor:
    """``out[..., i, j] = sum(x[..., j+1 : i+1])`` for j ≤ i, −inf above the diagonal."""
    length = x.shape[-1]
    x = x[..., None].expand(*x.shape, length)
    strict = torch.tril(torch.ones(length, length, dtype=torch.bool, device=x.device), diagonal=-1)
    sums = torch.cumsum(x.masked_fill(~strict, 0), dim=-2)
    lower = torch.tril(torch.ones(length, length, dtype=torch.bool, device=x.device))
    return sums.masked_fill(~lower, -torch.inf)


def ssd_chunked(x: torch.Tensor, dt: torch.Tensor, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor,
                chunk: int = 16) -> torch.Tensor:
    """Chunked SSD scan.

    Parameters
    ----------
    x : (B, L, H, P) inputs per head; dt : (B, L, H) step sizes (after softplus);
    a : (H,) negative decay rates; b, c : (B, L, G, N) input/output projections (G groups).

    Returns
    -------
    y : (B, L, H, P), without the ``D`` skip term.
    """
    batch, length, heads, p = x.shape
    groups = b.shape[2]
    b = b.repeat_interleave(heads // groups, dim=2)
    c = c.repeat_interleave(heads // groups, dim=2)
    pad = (-length) % chunk
    if pad:
        x, dt, b, c = (F.pad(t, (0, 0) * (t.dim() - 2) + (0, pad)) for t in (x, dt, b, c))
    n_chunks = x.shape[1] // chunk

    def chunks(t: torch.Tensor) -> torch.Tensor:
        return t.reshape(batch, n_chunks, chunk, *t.shape[2:])

    xd = chunks(x * dt[..., None])                                   # (B, C, l, H, P)
    adt = chunks(dt * a).permute(0, 3, 1, 2)                         # (B, H, C, l)
    b, c = chunks(b), chunks(c)                                      # (B, C, l, H, N)
    a_cum = torch.cumsum(adt, dim=-1)
    decay = torch.exp(_segment_sum(adt))                             # (B, H, C, l, l)
    y_diag = torch.einsum("bclhn,bcshn,bhcls,bcshp->bclhp", c, b, decay, xd)
    to_end = torch.exp(a_cum[..., -1:] - a_cum)                      # (B, H, C, l)
    states = torch.einsum("bclhn,bhcl,bclhp->bchpn", b, to_end, xd)  # state at each chunk end
    states = torch.cat([torch.zeros_like(states[:, :1]), states], dim=1)
    chunk_decay = torch.exp(_segment_sum(F.pad(a_cum[..., -1], (1, 0))))  # (B, H, C+1, C+1)
    states = torch.einsum("bhzc,bchpn->bzhpn", chunk_decay, states)[:, :-1]
    y_off = torch.einsum("bclhn,bchpn,bhcl->bclhp", c, states, torch.exp(a_cum))
    return (y_diag + y_off).reshape(batch, n_chunks * chunk, heads, p)[:, :length]


def ssd_sequential(x: torch.Tensor, dt: torch.Tensor, a: torch.Tensor, b: torch.Tensor,
                   c: torch.Tensor) -> torch.Tensor:
    """The naive recurrence, one time step at a time (reference for tests)."""
    batch, length, heads, p = x.shape
    b = b.repeat_interleave(heads // b.shape[2], dim=2)
    c = c.repeat_interleave(heads // c.shape[2], dim=2)
    h = x.new_zeros(batch, heads, p, b.shape[-1])
    ys = []
    for t in range(length):
        decay = torch.exp(dt[:, t] * a)[..., None, None]
        h = decay * h + (dt[:, t, :, None] * x[:, t])[..., None] * b[:, t, :, None, :]
        ys.append(torch.einsum("bhpn,bhn->bhp", h, c[:, t]))
    return torch.stack(ys, dim=1)


class _GatedRMSNorm(nn.Module):
    """``RMSNorm(y · silu(z))`` (mamba_ssm's RMSNormGated with norm_before_gate=False)."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        y = y * F.silu(z)
        return y * torch.rsqrt(y.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class Mamba2(nn.Module):
    """Mamba2 mixer: (B, L, d_model) → (B, L, d_model), causal.

    Parameters follow ``mamba_ssm.Mamba2``; the paper's temporal module uses d_state 16,
    d_conv 4, expand 2.
    """

    def __init__(self, d_model: int, d_state: int = 16, d_conv: int = 4, expand: int = 2,
                 headdim: int = 64, ngroups: int = 1, chunk_size: int = 16,
                 dt_min: float = 0.001, dt_max: float = 0.1, a_init_range: tuple[float, float] = (1, 16)) -> None:
        super().__init__()
        self.d_inner = expand * d_model
        if self.d_inner % headdim:
            raise ValueError(f"expand × d_model ({self.d_inner}) must be divisible by headdim ({headdim})")
        self.d_state, self.headdim, self.ngroups, self.chunk_size = d_state, headdim, ngroups, chunk_size
        self.nheads = self.d_inner // headdim
        conv_dim = self.d_inner + 2 * ngroups * d_state
        self.in_proj = nn.Linear(d_model, 2 * self.d_inner + 2 * ngroups * d_state + self.nheads, bias=False)
        self.conv1d = nn.Conv1d(conv_dim, conv_dim, d_conv, groups=conv_dim, padding=d_conv - 1)
        # initial values are computed on the CPU whatever the default device: a model built on the
        # ``meta`` device (to check a checkpoint's layout) then needs no meta arithmetic
        cpu = torch.device("cpu")
        log_dt = torch.empty(self.nheads, device=cpu).uniform_(math.log(dt_min), math.log(dt_max))
        dt = log_dt.exp().clamp(min=1e-4)
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus
        self.A_log = nn.Parameter(torch.empty(self.nheads, device=cpu).uniform_(*a_init_range).log())
        self.D = nn.Parameter(torch.ones(self.nheads))
        self.norm = _GatedRMSNorm(self.d_inner)
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=False)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        batch, length, _ = u.shape
        z, xbc, dt = self.in_proj(u).split(
            [self.d_inner, self.d_inner + 2 * self.ngroups * self.d_state, self.nheads], dim=-1)
        xbc = F.silu(self.conv1d(xbc.transpose(1, 2))[..., :length].transpose(1, 2))
        x, b, c = xbc.split([self.d_inner, self.ngroups * self.d_state, self.ngroups * self.d_state], dim=-1)
        dt = F.softplus(dt + self.dt_bias)
        a = -torch.exp(self.A_log.float())
        x = x.reshape(batch, length, self.nheads, self.headdim)
        b = b.reshape(batch, length, self.ngroups, self.d_state)
        c = c.reshape(batch, length, self.ngroups, self.d_state)
        y = self._scan(x, dt, a, b, c) + x * self.D[:, None]
        return self.out_proj(self.norm(y.reshape(batch, length, self.d_inner), z))

    def _scan(self, x: torch.Tensor, dt: torch.Tensor, a: torch.Tensor, b: torch.Tensor,
              c: torch.Tensor) -> torch.Tensor:
        if x.is_cuda:
            try:
                from mamba_ssm.ops.triton.ssd_combined import mamba_chunk_scan_combined
            except ImportError:
                pass
            else:
                return mamba_chunk_scan_combined(x, dt, a, b, c, chunk_size=max(self.chunk_size, 16))
        return ssd_chunked(x, dt, a, b, c, self.chunk_size)
