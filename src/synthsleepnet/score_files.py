"""Score recordings into output folders: the result, every export and the report of each night."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from ._logging import verbose
from .export import EXPORT_FILES, check_outputs, export_all
from .report import REPORT_FILES, write_report
from .scoring.result import ScoringResult
from .scoring.score import score_recording

__all__ = ["ScoredNight", "score_night"]


@dataclasses.dataclass(frozen=True)
class ScoredNight:
    """A scored night and the files written for it."""

    result: ScoringResult
    outputs: dict[str, Path]


@verbose
def score_night(
    recording: str | Path,
    checkpoints: Sequence[str | Path],
    out_dir: str | Path,
    *,
    annotations: str | Path | None = None,
    channel_file: str | Path | None = None,
    overwrite: bool = False,
    threshold: float = 0.5,
    require: Sequence[str] = (),
    timezone: dt.tzinfo = dt.UTC,
    device: str = "auto",
    precision: str = "auto",
    verbose: bool | str | int | None = None,
) -> ScoredNight:
    """Score one recording and write ``epochs.csv``, ``summary.json``, the exports and the report.

    The output folder is checked before any work: a file in its place, or outputs already there
    (a user's own ``report.html`` included), are refused unless ``overwrite``. See
    :func:`~synthsleepnet.scoring.score_recording` for the scoring itself.
    """
    names = [*EXPORT_FILES.values(), *REPORT_FILES]
    out = check_outputs(out_dir, names, overwrite=overwrite)
    result = score_recording(recording, checkpoints, annotations=annotations, channel_file=channel_file,
                             threshold=threshold, require=require, timezone=timezone, device=device,
                             precision=precision)
    outputs = export_all(result, out, overwrite=overwrite)
    outputs["png"], outputs["html"] = write_report(result, out)
    return ScoredNight(result, outputs)
