"""A report a clinician can look at: hypnogram, stage probabilities, events, SpO2, statistics."""

from __future__ import annotations

import base64
import html
import importlib
import io
from pathlib import Path
from typing import Any

import numpy as np

from ._atomic import atomic_write_bytes, atomic_write_text
from .io.position_codes import POSITIONS, UNKNOWN_POSITION
from .positional import POSITIONAL_RATIO, describe_position
from .respiratory import describe_respiratory
from .scoring.result import ScoringResult
from .stats import in_bed
from .tasks import STAGES

__all__ = ["REPORT_FILES", "import_drawing", "plot_report", "write_report"]

#: What :func:`write_report` writes.
REPORT_FILES: tuple[str, str] = ("report.png", "report.html")

# clinical hypnogram order, top to bottom
_ORDER = {"W": 0, "R": 1, "N1": 2, "N2": 3, "N3": 4}
_COLORS = {"W": "#f2c14e", "N1": "#9ad1d4", "N2": "#3c91e6", "N3": "#1b3b6f", "R": "#e4572e"}


def _hours(result: ScoringResult) -> np.ndarray:
    return np.arange(result.n_epochs + 1) * result.epoch_s / 3600


def import_drawing() -> None:
    """Import what :func:`plot_report` draws with (matplotlib, 0.5–1.3 s) ahead of need: a fresh
    scoring process's read-ahead worker does it after preparing the night, while the models run."""
    for module in ("matplotlib.figure", "matplotlib.backends.backend_agg"):
        importlib.import_module(module)


def plot_report(result: ScoringResult) -> Any:
    """A matplotlib figure: hypnogram (+ reference), stage probabilities, events, SpO2.

    Built on ``matplotlib.figure.Figure`` with the Agg canvas, not pyplot: no GUI backend, no
    global figure registry, and 0.4 s less to import.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    traces = [(draw, ratio) for draw, ratio, trace in ((_plot_spo2, 1.2, result.spo2),
                                                        (_plot_heart_rate, 1.0, result.heart_rate),
                                                        (_plot_position, 0.9, result.body_position))
              if trace is not None]
    rows = 3 + len(traces)
    width, height = 13.0, 2.0 * rows + 1
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    # margins in inches for the tick labels, titles and the legends right of the axes: what
    # tight_layout finds for this layout, fixed (it measured every text again: 0.3 s a report)
    margins = {"left": 0.96 / width, "right": 1 - 1.43 / width, "bottom": 0.6 / height, "top": 1 - 0.35 / height,
               "hspace": 0.26}
    axes = fig.subplots(rows, 1, sharex=True,
                        gridspec_kw={"height_ratios": [2.2, 1.4, 0.8] + [ratio for _, ratio in traces], **margins})
    t = _hours(result)
    ax = axes[0]
    levels = np.array([_ORDER.get(s, np.nan) for s in result.stages], dtype=float)
    if result.reference is not None:
        ref = np.array([_ORDER.get(s, np.nan) for s in result.reference], dtype=float)
        ax.step(t, np.r_[ref, ref[-1]], where="post", color="0.6", lw=2.5, label="reference")
    ax.step(t, np.r_[levels, levels[-1]], where="post", color="k", lw=1.0, label="SynthSleepNet")
    rem = np.flatnonzero(np.array(result.stages) == "R")
    ax.hlines(np.full(rem.size, _ORDER["R"]), t[rem], t[rem + 1], color=_COLORS["R"], lw=3)  # R in colour
    _shade_lights_on(ax, result)
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
    _plot_events(axes[2], result)
    for ax, (draw, _) in zip(axes[3:], traces, strict=True):
        draw(ax, result)
    axes[-1].set_xlabel("hours from recording start")
    axes[-1].set_xlim(0, t[-1])
    return fig


def _shade_lights_on(ax: Any, result: ScoringResult) -> None:
    """Grey before lights off and after lights on: the recording outside time in bed."""
    bed = in_bed(result.n_epochs, result.epoch_s, result.lights_off_s, result.lights_on_s)
    spans = [(a, b) for a, b in ((0, bed.start), (bed.stop, result.n_epochs)) if b > a]
    for i, (first, stop) in enumerate(spans):
        ax.axvspan(first * result.epoch_s / 3600, stop * result.epoch_s / 3600, color="0.88", lw=0, zorder=0,
                   label=None if i else "lights on")


_EVENT_COLORS = {"apnea": "#c0392b", "hypopnea": "#e67e22"}


def _event_bars(ax: Any, events: Any, row: float, kind: str, height: float, alpha: float = 1.0) -> None:
    chosen = events[events["event"].str.startswith(kind)]  # apnea_obstructive etc. draw as apneas
    ax.broken_barh([(o / 3600, d / 3600) for o, d in zip(chosen["onset_s"], chosen["duration_s"], strict=True)],
                   (row - height / 2, height), color=_EVENT_COLORS[kind], alpha=alpha)


def _plot_events(ax: Any, result: ScoringResult) -> None:
    """Predicted apneas and hypopneas; the reference's beneath them, with the agreement."""
    import pandas as pd

    events = result.respiratory_events()
    rows = {"apnea": 1.0, "hypopnea": 0.0}
    for kind, row in rows.items():
        _event_bars(ax, events, row + 0.15, kind, 0.45 if result.reference_events is not None else 0.8)
        if result.reference_events is not None:
            reference = pd.DataFrame(result.reference_events, columns=["onset_s", "duration_s", "event"])
            _event_bars(ax, reference, row - 0.3, kind, 0.3, alpha=0.45)
    ax.set_yticks([0, 1], ["hypopnea", "apnea"])
    ax.set_ylim(-0.6, 1.6)
    resp = result.respiratory()
    title = describe_respiratory(resp)
    agreement = result.event_agreement()
    if agreement:
        title += (f"  ·  reference (pale, beneath): AHI {agreement['AHI_reference']:.1f}/h, event F1 "
                  f"{agreement['event_f1']:.2f} (any overlap)")
    ax.set_title(title, loc="left", fontsize=9)


def _plot_spo2(ax: Any, result: ScoringResult) -> None:
    """SpO2 with its ≥ 3 % desaturations shaded."""
    spo2 = np.asarray(result.spo2, dtype=float)
    ax.plot(np.arange(spo2.size) / 3600, spo2, color="#2c3e50", lw=0.6)
    desaturations = result.desaturations()
    if desaturations is not None:  # one collection, not a patch per desaturation (130 in a severe night)
        spans = [(o / 3600, d / 3600) for o, d in zip(desaturations["onset_s"], desaturations["duration_s"], strict=True)]
        ax.broken_barh(spans, (0, 1), transform=ax.get_xaxis_transform(), color="#8e44ad", alpha=0.15, lw=0)
    resp = result.respiratory()
    ax.set_title(f"ODI3 {resp['ODI3']:.1f}/h, ODI4 {resp['ODI4']:.1f}/h, T90 {resp['T90_min']:.1f} min, "
                 f"minimum {resp['spo2_min']:.0f} % (shaded: ≥ 3 % desaturations)", loc="left", fontsize=9)
    ax.set_ylabel("SpO2 %")
    finite = spo2[np.isfinite(spo2) & (spo2 > 50)]
    ax.set_ylim(max(min(finite.min() if finite.size else 95, 95) - 2, 50), 100.5)


def _plot_heart_rate(ax: Any, result: ScoringResult) -> None:
    """The heart rate at 1 Hz (gaps where the ECG showed no beats)."""
    rate = np.asarray(result.heart_rate, dtype=float)
    ax.plot(np.arange(rate.size) / 3600, rate, color="#a93226", lw=0.5)
    cardiac = result.cardiac() or {}
    ax.set_title(f"heart rate in sleep: mean {_fmt(cardiac.get('HR_mean_sleep', np.nan))}, lowest "
                 f"{_fmt(cardiac.get('HR_min_sleep', np.nan))}, highest {_fmt(cardiac.get('HR_max_sleep', np.nan))} bpm; "
                 f"highest in the recording {_fmt(cardiac.get('HR_max_recording', np.nan))} bpm"
                 + (f"; RMSSD NREM {_fmt(cardiac['HRV_RMSSD_NREM'])}, R {_fmt(cardiac['HRV_RMSSD_R'])} ms"
                    if "HRV_RMSSD_NREM" in cardiac else ""), loc="left", fontsize=9)
    ax.set_ylabel("bpm")
    finite = rate[np.isfinite(rate)]
    if finite.size:
        ax.set_ylim(max(finite.min() - 5, 0), finite.max() + 5)


def _plot_position(ax: Any, result: ScoringResult) -> None:
    """Body position at 1 Hz, supine on top (gaps where it is unknown)."""
    trace = np.asarray(result.body_position, dtype=float)
    trace[trace == UNKNOWN_POSITION] = np.nan
    ax.step(np.arange(trace.size) / 3600, trace, where="post", color="#5b2c6f", lw=1.0)
    ax.set_yticks(range(len(POSITIONS)), POSITIONS, fontsize=8)
    ax.set_ylim(len(POSITIONS) - 0.5, -0.5)
    ax.set_title(describe_position(result.position()), loc="left", fontsize=9)


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


def _respiratory_rows(resp: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [("AHI", _fmt(resp["AHI"], " /h")), ("Severity", resp["severity"])]
    if resp.get("staged") is False:  # no stage model: the index is over the recording, as in home tests
        rows.insert(1, ("REI (no sleep staging)", _fmt(resp["REI"], " /h")))
    if "AHI_4pct" in resp:
        rows.insert(1, ("AHI, hypopneas with ≥ 3 % desat. or arousal / ≥ 4 % desat.",
                        f"{_fmt(resp['AHI_3pct'])} / {_fmt(resp['AHI_4pct'])} /h"))
    if "AHI_REM" in resp:
        rows += [("AHI in REM / NREM", f"{_fmt(resp['AHI_REM'])} / {_fmt(resp['AHI_NREM'])} /h"),
                 ("Apnea index (AI)", _fmt(resp["AI"], " /h")), ("Hypopnea index (HI)", _fmt(resp["HI"], " /h")),
                 ("Obstructive / central / mixed AI", f"{_fmt(resp['OAI'])} / {_fmt(resp['CAI'])} / "
                                                      f"{_fmt(resp['MAI'])} /h"),
                 ("Events counted (in sleep)", str(resp["n_events"]))]
        rows += [(f"  {kind.replace('_', ' ')}", f"{n}; mean {_fmt(resp['mean_duration_s'][kind], ' s')}, "
                                                  f"longest {_fmt(resp['max_duration_s'][kind], ' s')}")
                 for kind, n in resp["counts"].items() if n]
        if "hypopneas_confirmed" in resp and resp["counts"]["hypopnea"]:
            rows.append(("Hypopneas with a ≥ 3 % desaturation", str(resp["hypopneas_confirmed"])))
    if "ODI3" in resp:
        rows += [("ODI3 / ODI4", f"{_fmt(resp['ODI3'])} / {_fmt(resp['ODI4'])} /h"),
                 ("T90 (SpO2 < 90 %)", f"{_fmt(resp['T90_min'], ' min')} ({_fmt(resp['T90_pct'], ' %')})"),
                 ("SpO2 mean / minimum", f"{_fmt(resp['spo2_mean'])} / {_fmt(resp['spo2_min'], ' %')}")]
    if "note" in resp:
        rows.append(("Note", resp["note"]))
    return rows


def _cardiac_rows(cardiac: dict[str, float] | None) -> list[tuple[str, str]]:
    if cardiac is None:
        return [("Heart rate", "no usable ECG (see the notes)")]
    return [("Mean in sleep (lowest–highest)", f"{_fmt(cardiac['HR_mean_sleep'])} ({_fmt(cardiac['HR_min_sleep'])}–"
                                               f"{_fmt(cardiac['HR_max_sleep'])}) bpm"),
            ("Highest in the recording", _fmt(cardiac["HR_max_recording"], " bpm")),
            ("Mean in wake / NREM / R", f"{_fmt(cardiac['HR_mean_W'])} / {_fmt(cardiac['HR_mean_NREM'])} / "
                                        f"{_fmt(cardiac['HR_mean_R'])} bpm"),
            ("Sleep above 90 / below 40 bpm (30-s epochs)", f"{_fmt(cardiac['HR_over_90_sleep_min'])} / "
                                                            f"{_fmt(cardiac['HR_under_40_sleep_min'], ' min')}"),
            ("Sleep with a heart rate", _fmt(cardiac["HR_known_sleep_pct"], " %")), *_hrv_rows(cardiac)]


def _hrv_rows(cardiac: dict[str, float]) -> list[tuple[str, str]]:
    """The variability rows, where the beats were kept (results saved before them have none)."""
    if "HRV_RMSSD_NREM" not in cardiac:
        return []
    kinds = ("W", "NREM", "R")
    return [(f"HRV {name} in wake / NREM / R (5-min segments)",
             " / ".join(_fmt(cardiac[f"HRV_{name}_{kind}"]) for kind in kinds) + " ms")
            for name in ("RMSSD", "SDNN")] + [
            ("5-min segments in wake / NREM / R", " / ".join(f"{cardiac[f'HRV_segments_{kind}']:.0f}" for kind in kinds))]


def _position_rows(position: dict[str, Any] | None) -> list[tuple[str, str]]:
    if position is None:
        return [("Body position", "no position channel with known codes (see the notes)")]

    def line(minutes: float, pct: float, ahi: float) -> str:
        return f"{_fmt(minutes, ' min')} ({_fmt(pct, ' %')}); AHI {_fmt(ahi, ' /h')}"

    rows = [("Supine", line(position["supine_sleep_min"], position["supine_sleep_pct"], position["AHI_supine"])),
            ("Non-supine", line(position["nonsupine_sleep_min"], 100 - position["supine_sleep_pct"],
                                position["AHI_nonsupine"]))]
    rows += [(f"  {name}", line(position["sleep_min"][name], position["sleep_pct"][name],
                                position["AHI_by_position"][name]))
             for name in POSITIONS[1:] if position["sleep_min"][name]]
    if "AHI_4pct_supine" in position:
        rows.append(("AHI supine / non-supine, hypopneas by the 3 % rule",
                     f"{_fmt(position['AHI_3pct_supine'])} / {_fmt(position['AHI_3pct_nonsupine'])} /h"))
        rows.append(("AHI supine / non-supine, hypopneas by the 4 % rule",
                     f"{_fmt(position['AHI_4pct_supine'])} / {_fmt(position['AHI_4pct_nonsupine'])} /h"))
    positional = {True: "yes", False: "no", None: "n/a"}[position["positional_osa"]]
    return rows + [(f"Positional (AHI ≥ 5, supine ≥ {POSITIONAL_RATIO:g}× non-supine)", positional),
                   ("Position changes in bed", str(position["position_changes"])),
                   ("Sleep with a known position", _fmt(position["position_known_sleep_pct"], " %"))]


def _html(result: ScoringResult, png: bytes) -> str:
    s = result.sleep_statistics()
    resp = result.respiratory()
    stats = [("Time in bed", _fmt(s["TIB_min"], " min")), ("Total sleep time", _fmt(s["TST_min"], " min")),
             ("Sleep efficiency", _fmt(s["SE_pct"], " %")), ("Sleep onset latency", _fmt(s["SOL_min"], " min")),
             ("WASO", _fmt(s["WASO_min"], " min")), ("R latency (from sleep onset)", _fmt(s["R_latency_min"], " min")),
             ("Awakenings", _fmt(s["awakenings"]))]
    stats += [(f"{k}", f"{_fmt(s[f'{k}_min'], ' min')} ({_fmt(s[f'{k}_pct'], ' % of TST')})") for k in STAGES[1:]]
    respiratory = _respiratory_rows(resp)
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
    events = result.event_agreement()
    if events:
        setup.append(("Respiratory events vs reference", f"F1 {events['event_f1']:.2f} (any overlap), AHI "
                                                         f"{_fmt(events['AHI'])} vs {_fmt(events['AHI_reference'])} /h"))
        if "AHI_4pct_reference" in events:
            rule = (f"{_fmt(events.get('AHI_4pct', float('nan')))} vs {_fmt(events['AHI_4pct_reference'])} /h (the "
                    f"reference's hypopneas confirmed by desaturations from {events['reference_desaturations_from']})")
            setup.append(("AHI by the 4 % rule vs reference", rule))
        if "AHI_supine_reference" in events:
            setup.append(("AHI supine / non-supine vs reference",
                          f"{_fmt(events['AHI_supine'])} / {_fmt(events['AHI_nonsupine'])} vs "
                          f"{_fmt(events['AHI_supine_reference'])} / {_fmt(events['AHI_nonsupine_reference'])} /h"))
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
30-s epochs as events (a lower bound when events cluster), in sleep only; desaturations are ≥ 3 % / ≥ 4 %
falls from the highest SpO2 of the preceding 2 minutes, artefacts excluded; statistics follow AASM
definitions (stage R latency from sleep onset).</p>
<img alt="hypnogram, stage probabilities, respiratory events and SpO2" src="data:image/png;base64,{image}">
<div class="grid"><div><h2>Sleep statistics</h2>{_table(stats)}</div>
<div><h2>Respiratory</h2>{_table(respiratory)}</div><div><h2>Heart rate</h2>{_table(_cardiac_rows(result.cardiac()))}</div>
<div><h2>Sleep by body position</h2>{_table(_position_rows(result.position()))}</div>
<div><h2>Recording</h2>{_table(setup)}</div></div>
<h2>Notes</h2><ul>{notes or '<li>none</li>'}</ul></body></html>
"""
