"""A report a clinician can look at: hypnogram, stage probabilities, events, SpO2, statistics."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import numpy as np

from ._atomic import atomic_write_bytes, atomic_write_text
from .scoring.result import ScoringResult
from .tasks import STAGES

__all__ = ["REPORT_FILES", "plot_report", "write_report"]

#: What :func:`write_report` writes.
REPORT_FILES: tuple[str, str] = ("report.png", "report.html")

# clinical hypnogram order, top to bottom
_ORDER = {"W": 0, "R": 1, "N1": 2, "N2": 3, "N3": 4}
_COLORS = {"W": "#f2c14e", "N1": "#9ad1d4", "N2": "#3c91e6", "N3": "#1b3b6f", "R": "#e4572e"}


def _hours(result: ScoringResult) -> np.ndarray:
    return np.arange(result.n_epochs + 1) * result.epoch_s / 3600


def plot_report(result: ScoringResult) -> Any:
    """A matplotlib figure: hypnogram (+ reference), stage probabilities, events, SpO2.

    Built on ``matplotlib.figure.Figure`` with the Agg canvas, not pyplot: no GUI backend, no
    global figure registry, and 0.4 s less to import.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = 3 + (result.spo2 is not None)
    fig = Figure(figsize=(13, 2.0 * rows + 1))
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 1, sharex=True,
                        gridspec_kw={"height_ratios": [2.2, 1.4, 0.8] + ([1.2] if rows == 4 else [])})
    t = _hours(result)
    ax = axes[0]
    levels = np.array([_ORDER.get(s, np.nan) for s in result.stages], dtype=float)
    if result.reference is not None:
        ref = np.array([_ORDER.get(s, np.nan) for s in result.reference], dtype=float)
        ax.step(t, np.r_[ref, ref[-1]], where="post", color="0.6", lw=2.5, label="reference")
    ax.step(t, np.r_[levels, levels[-1]], where="post", color="k", lw=1.0, label="SynthSleepNet")
    rem = np.flatnonzero(np.array(result.stages) == "R")
    ax.hlines(np.full(rem.size, _ORDER["R"]), t[rem], t[rem + 1], color=_COLORS["R"], lw=3)  # R in colour
    ax.set_yticks(list(_ORDER.values()), list(_ORDER))
    ax.set_ylim(4.5, -0.5)
    ax.set_ylabel("stage")
    agreement = result.agreement()
    title = f"{Path(result.source).name}  ·  start {result.start:%Y-%m-%d %H:%M}"
    if result.reliability.get("level", "full") != "full":
        title += f"  ·  RELIABILITY {result.reliability['level'].upper()}"
    if agreement:
        title += f"  ·  agreement with reference: accuracy {agreement['accuracy']:.2f}, κ {agreement['kappa']:.2f}"
    ax.set_title(title, loc="left", fontsize=10)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    ax = axes[1]
    if result.stage_proba is not None:
        proba = np.vstack([result.stage_proba, result.stage_proba[-1:]])
        ax.stackplot(t, proba.T, colors=[_COLORS[s] for s in STAGES], labels=list(STAGES), step="post")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    ax.set_ylim(0, 1)
    ax.set_ylabel("probability")
    ax = axes[2]
    events = result.respiratory_events()
    for row, kind, color in ((1, "apnea", "#c0392b"), (0, "hypopnea", "#e67e22")):
        chosen = events[events["event"] == kind]
        ax.broken_barh([(o / 3600, d / 3600) for o, d in zip(chosen["onset_s"], chosen["duration_s"], strict=True)],
                       (row - 0.4, 0.8), color=color)
    ax.set_yticks([0, 1], ["hypopnea", "apnea"])
    ax.set_ylim(-0.6, 1.6)
    resp = result.ahi()
    ax.set_title(f"AHI {resp['ahi']:.1f}/h ({resp['severity']})" if resp["ahi"] == resp["ahi"]
                 else "AHI not estimated", loc="left", fontsize=9)
    if result.spo2 is not None:
        ax = axes[3]
        spo2 = np.asarray(result.spo2)
        ax.plot(np.arange(spo2.size) / 3600, spo2, color="#2c3e50", lw=0.6)
        ax.set_ylabel("SpO2 %")
        ax.set_ylim(max(min(spo2.min(), 95) - 2, 50), 100.5)
    axes[-1].set_xlabel("hours from recording start")
    axes[-1].set_xlim(0, t[-1])
    fig.tight_layout()
    return fig


def _table(rows: list[tuple[str, str]]) -> str:
    return "<table>" + "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows) + "</table>"


def _fmt(value: float, unit: str = "") -> str:
    return "n/a" if value != value else f"{value:.1f}{unit}"


def write_report(result: ScoringResult, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``report.png`` and a self-contained ``report.html`` (image embedded)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    plot_report(result).savefig(buffer, format="png", dpi=110)
    png = buffer.getvalue()
    png_path, html_path = (out / name for name in REPORT_FILES)
    atomic_write_bytes(png_path, png)
    atomic_write_text(html_path, _html(result, png))
    return png_path, html_path


def _html(result: ScoringResult, png: bytes) -> str:
    s = result.sleep_statistics()
    resp = result.ahi()
    stats = [("Time in bed", _fmt(s["TIB_min"], " min")), ("Total sleep time", _fmt(s["TST_min"], " min")),
             ("Sleep efficiency", _fmt(s["SE_pct"], " %")), ("Sleep onset latency", _fmt(s["SOL_min"], " min")),
             ("WASO", _fmt(s["WASO_min"], " min")), ("R latency (from sleep onset)", _fmt(s["R_latency_min"], " min")),
             ("Awakenings", _fmt(s["awakenings"]))]
    stats += [(f"{k}", f"{_fmt(s[f'{k}_min'], ' min')} ({_fmt(s[f'{k}_pct'], ' % of TST')})") for k in STAGES[1:]]
    respiratory = [("AHI", _fmt(resp["ahi"], " /h")), ("Severity", resp["severity"]),
                   ("Events counted", str(resp["n_events"]))]
    respiratory += [(f"  {k}", str(v)) for k, v in resp.get("events_by_type", {}).items()]
    setup = [("Recording", result.source), ("Start", result.start.isoformat()),
             ("Channels used", ", ".join(result.channels_used)),
             ("Channels missing", ", ".join(result.channels_missing) or "none"),
             ("Models", "; ".join(f"{m['task']}: {Path(m['checkpoint']).name} ({m['phase']}, {m['preset']})"
                                  for m in result.models)),
             ("Preprocessing", result.preprocessing_hash)]
    agreement = result.agreement()
    if agreement:
        setup.append(("Agreement with reference", f"accuracy {agreement['accuracy']:.3f}, κ {agreement['kappa']:.3f} "
                                                  f"over {agreement['n_epochs']} epochs"))
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in result.notes)
    level = result.reliability.get("level", "full")
    banner = "" if level == "full" else (
        f'<div class="banner {level}"><strong>Reliability: {level}.</strong> '
        + html.escape("; ".join(result.reliability.get("reasons", []))) + "</div>")
    image = base64.b64encode(png).decode()
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Sleep report · {html.escape(Path(result.source).name)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;color:#222}} table{{border-collapse:collapse;margin:0 2em 1em 0}}
th,td{{padding:3px 10px;border-bottom:1px solid #ddd;text-align:left}} th{{font-weight:600}}
.grid{{display:flex;flex-wrap:wrap}} img{{max-width:100%}} .note{{color:#666;font-size:90%}}
.banner{{padding:.8em 1em;margin:1em 0;border-radius:4px}} .low{{background:#f8d7da;color:#721c24}}
.reduced{{background:#fff3cd;color:#856404}}</style></head>
<body><h1>Sleep report</h1>{banner}
<p class="note">Automatic scoring by SynthSleepNet. Review before clinical use. AHI counts runs of flagged
30-s epochs as events (a lower bound when events cluster); statistics follow AASM definitions
(stage R latency from sleep onset).</p>
<img alt="hypnogram, stage probabilities, respiratory events and SpO2" src="data:image/png;base64,{image}">
<div class="grid"><div><h2>Sleep statistics</h2>{_table(stats)}</div>
<div><h2>Respiratory</h2>{_table(respiratory)}</div><div><h2>Recording</h2>{_table(setup)}</div></div>
<h2>Notes</h2><ul>{notes or '<li>none</li>'}</ul></body></html>
"""
