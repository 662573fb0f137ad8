"""Write a scored night in the formats other tools read; writes are atomic and validated."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from ._atomic import atomic_write_bytes as _atomic
from ._json import strict_json
from .scoring.result import ScoringResult

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["EXPORT_FILES", "check_outputs", "export_all", "write_bids_events", "write_edf_annotations",
           "write_edfbrowser_annotations", "write_epochs_csv", "write_hrv_segments_csv", "write_respiratory_events_csv",
           "write_summary_json"]

#: What :func:`export_all` writes, by kind.
EXPORT_FILES: dict[str, str] = {"epochs": "epochs.csv", "summary": "summary.json", "edf": "annotations.edf",
                                "bids": "events.tsv", "edfbrowser": "annotations_edfbrowser.txt",
                                "respiratory": "respiratory_events.csv", "hrv": "hrv_segments.csv",
                                "result": "result.json"}


def write_epochs_csv(result: ScoringResult, path: str | Path) -> Path:
    """Per epoch: onset, time, stage, five stage probabilities, confidence, apnea/hypopnea."""
    return _atomic(Path(path), result.to_dataframe().to_csv(index=False, float_format="%.4f").encode())


def _with_clock_times(result: ScoringResult, table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with the clock time of each ``onset_s`` beside it."""
    table.insert(1, "time", [(result.start + dt.timedelta(seconds=float(o))).isoformat() for o in table["onset_s"]])
    return table


def write_respiratory_events_csv(result: ScoringResult, path: str | Path) -> Path:
    """One row per respiratory event: onset (seconds and clock time), duration, type, stage at
    onset, the linked desaturation and what confirms a hypopnea (header only when none)."""
    events = _with_clock_times(result, result.respiratory_events())
    stages = result.stages
    events["stage"] = [stages[min(int(o // result.epoch_s), len(stages) - 1)] for o in events["onset_s"]]
    return _atomic(Path(path), events.to_csv(index=False, float_format="%.1f").encode())


def write_hrv_segments_csv(result: ScoringResult, path: str | Path) -> Path:
    """One row per 5-minute segment of wake, NREM or R in bed: onset (seconds and clock time),
    kind, stages, normal intervals, their coverage, mean heart rate, SDNN and RMSSD (header only
    without the ECG's beats)."""
    table = _with_clock_times(result, result.hrv_segments())
    return _atomic(Path(path), table.to_csv(index=False, float_format="%.2f").encode())


def write_summary_json(result: ScoringResult, path: str | Path) -> Path:
    """Statistics, AHI, agreement, channels and model identity (strict JSON: NaN becomes null)."""
    return _atomic(Path(path), strict_json(result.summary()).encode())


def write_bids_events(result: ScoringResult, path: str | Path) -> Path:
    """BIDS ``events.tsv``: onset and duration in seconds, ``trial_type``."""
    events = result.as_events().rename(columns={"onset_s": "onset", "duration_s": "duration",
                                                "description": "trial_type"})
    return _atomic(Path(path), events.to_csv(sep="\t", index=False, float_format="%.3f").encode())


def write_edfbrowser_annotations(result: ScoringResult, path: str | Path) -> Path:
    """A CSV text file EDFbrowser imports (Tools → Import annotations → ASCII/CSV): onset in
    seconds from the recording start, duration in seconds, description."""
    events = result.as_events()
    lines = ["Onset,Duration,Annotation"] + [f"{o:.3f},{d:.3f},{t}" for o, d, t in events.itertuples(index=False)]
    return _atomic(Path(path), ("\n".join(lines) + "\n").encode())


def write_edf_annotations(result: ScoringResult, path: str | Path) -> Path:
    """An EDF+ file holding only annotations (stage runs, respiratory events), same start time."""
    import edfio

    events = result.as_events()
    start = result.start
    edf = edfio.Edf(
        [],
        recording=edfio.Recording(startdate=start.date(), equipment_code="synthsleepnet"),
        starttime=start.time().replace(tzinfo=None),
        annotations=[edfio.EdfAnnotation(float(o), float(d), str(t)) for o, d, t in events.itertuples(index=False)],
    )
    buffer = io.BytesIO()
    edf.write(buffer)
    return _atomic(Path(path), buffer.getvalue())


def check_outputs(out_dir: str | Path, names: Iterable[str], *, overwrite: bool) -> Path:
    """Refuse, before any work, an output folder that is a file or that holds outputs already.

    A user's own file of the same name (``report.html``) is never replaced without ``overwrite``.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"output folder {out} is a file; give a folder")
    existing = [name for name in names if (out / name).exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{out} already holds {existing}; pass overwrite=True (--overwrite) to replace them")
    return out


def export_all(result: ScoringResult, out_dir: str | Path, *, overwrite: bool = False) -> dict[str, Path]:
    """Every export into ``out_dir``; refuses to replace existing outputs unless ``overwrite``."""
    out = check_outputs(out_dir, EXPORT_FILES.values(), overwrite=overwrite)
    targets = {kind: out / name for kind, name in EXPORT_FILES.items()}
    write_epochs_csv(result, targets["epochs"])
    write_summary_json(result, targets["summary"])
    write_edf_annotations(result, targets["edf"])
    write_bids_events(result, targets["bids"])
    write_edfbrowser_annotations(result, targets["edfbrowser"])
    write_respiratory_events_csv(result, targets["respiratory"])
    write_hrv_segments_csv(result, targets["hrv"])
    _atomic(targets["result"], result.to_json().encode())
    return targets
