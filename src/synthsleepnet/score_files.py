"""Score recordings into output folders: one night (`score_night`) or a clinic's backlog
(`score_nights`), each with its result, every export and the report."""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import datetime as dt
import functools
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ._atomic import atomic_write_text
from ._logging import log_to_stderr, logger, verbose
from ._validation import Lights, check_int, failure_text
from ._workers import fork_is_safe, worker_pool
from .export import EXPORT_FILES, check_outputs, export_all
from .io.discover import RecordingFiles, find_recordings, find_scoring, night_id_for
from .report import REPORT_FILES, import_drawing, write_report
from .scoring.result import ScoringResult

if TYPE_CHECKING:
    from .scoring.prepare import PreparedInput
    from .scoring.score import NightScorer

__all__ = ["BatchSummary", "ScoredNight", "reuse_freed_memory", "score_night", "score_nights"]

_OUTPUTS = (*EXPORT_FILES.values(), *REPORT_FILES)


@dataclasses.dataclass(frozen=True)
class ScoredNight:
    """A scored night and the files written for it."""

    result: ScoringResult
    outputs: dict[str, Path]


def _write_outputs(result: ScoringResult, out: Path, overwrite: bool,
                   drawing: Future[tuple[Path, Path]] | None = None) -> dict[str, Path]:
    """Every export, and the report (``drawing``: being drawn by the read-ahead worker meanwhile)."""
    outputs = export_all(result, out, overwrite=overwrite)
    try:
        outputs["png"], outputs["html"] = drawing.result() if drawing else write_report(result, out)
    except BrokenProcessPool as err:
        logger.warning("the worker drawing the report stopped (%s); drawing it in this process", err)
        outputs["png"], outputs["html"] = write_report(result, out)
    return outputs


@verbose
def score_night(
    recording: str | Path,
    checkpoints: Sequence[str | Path],
    out_dir: str | Path,
    *,
    annotations: str | Path | None = None,
    channel_file: str | Path | None = None,
    overwrite: bool = False,
    threshold: float | None = None,
    require: Sequence[str] = (),
    timezone: dt.tzinfo = dt.UTC,
    device: str = "auto",
    precision: str = "auto",
    lights: Lights = (None, None),
    verbose: bool | str | int | None = None,
) -> ScoredNight:
    """Score one recording and write ``epochs.csv``, ``summary.json``, the exports and the report.

    The output folder is checked before any work: a file in its place, or outputs already there
    (a user's own ``report.html`` included), are refused unless ``overwrite``. See
    :func:`~synthsleepnet.scoring.score_recording` for the scoring itself. In a fresh process
    the recording is read and prepared in a worker while torch is imported and the models load,
    and the same worker then imports matplotlib and draws the report while this process writes
    the exports (:func:`_prepare_ahead`).
    """
    out = check_outputs(out_dir, _OUTPUTS, overwrite=overwrite)
    with _prepare_ahead(recording, annotations, checkpoints, channel_file) as ahead:
        # torch is imported here, while the worker prepares the night
        from .scoring.score import NightScorer

        scorer = NightScorer.load(checkpoints, channel_file=channel_file, device=device, precision=precision,
                                  threshold=threshold, require=require, timezone=timezone, lights=lights)
        prepared = ahead.result() if ahead else None
        result = scorer.score(prepared or scorer.prepare(recording, annotations))
        outputs = _write_outputs(result, out, overwrite, ahead.draw_report(result, out) if ahead else None)
    return ScoredNight(result, outputs)


def _prepare_in_worker(recording: str | Path, annotations: str | Path | None, checkpoints: Sequence[str | Path],
                       channel_file: str | Path | None, handoff: Path) -> PreparedInput:
    """Runs in the worker, which imports the preparation (SciPy) itself. The samples go back
    through ``handoff`` (on tmpfs where there is one) when it can take them: for an 8-hour,
    4-channel night, 46 MB pickled through the pool's pipe cost 0.2 s, the file 0.06 s."""
    from .scoring.prepare import prepare_for_checkpoints

    prepared = prepare_for_checkpoints(recording, annotations, checkpoints, channel_file)
    try:
        np.save(handoff, prepared.night.signals)
    except OSError:  # a full or missing tmpfs: the pipe it is
        handoff.unlink(missing_ok=True)
        return prepared
    prepared.night.signals = np.empty(0, dtype=np.float32)
    return prepared


@dataclasses.dataclass(frozen=True)
class _ReadAhead:
    """A night being prepared in a worker process, where its samples will come back, and the
    worker, which imports matplotlib next so it can draw the report later."""

    pool: ProcessPoolExecutor
    future: Future[PreparedInput]
    handoff: Path

    def result(self) -> PreparedInput | None:
        """The prepared night; None if the worker process died (the caller prepares it)."""
        try:
            prepared = self.future.result()
        except BrokenProcessPool as err:
            logger.warning("the read-ahead worker stopped (%s); preparing the night in this process", err)
            return None
        if self.handoff.exists():
            prepared.night.signals = np.load(self.handoff)
        return prepared

    def draw_report(self, result: ScoringResult, out: Path) -> Future[tuple[Path, Path]] | None:
        """The report being drawn in the worker (matplotlib imported there while the models ran:
        1.3 s a fresh scoring process no longer waits for); None if the worker has died."""
        try:
            return self.pool.submit(write_report, result, out)
        except BrokenProcessPool:
            return None


@contextlib.contextmanager
def _prepare_ahead(recording: str | Path, annotations: str | Path | None, checkpoints: Sequence[str | Path],
                   channel_file: str | Path | None) -> Iterator[_ReadAhead | None]:
    """Prepare ``recording`` in a forked worker process while the caller imports torch and loads the
    models, then import the report's drawing there (see :meth:`_ReadAhead.draw_report`).

    A fresh process spends about as long on each (≈ 2–4 s for an 8-hour night); side by side on
    two cores they cost one. Yields None where a worker would not help or is not safe, and the
    caller prepares the night itself: in a process that has imported torch already (a notebook:
    no import is left to hide, and forking a process that runs torch's threads is unsafe), and
    off Linux (no ``fork``).
    """
    if not fork_is_safe():
        yield None
        return
    shm = Path("/dev/shm")
    with (tempfile.TemporaryDirectory(prefix="synthsleepnet-", dir=shm if shm.is_dir() else None) as tmp,
          worker_pool(1) as pool):  # forked, as fork_is_safe()
        handoff = Path(tmp) / "signals.npy"
        preparing = pool.submit(_prepare_in_worker, recording, annotations, list(checkpoints), channel_file, handoff)
        pool.submit(import_drawing)
        yield _ReadAhead(pool, preparing, handoff)


@dataclasses.dataclass
class BatchSummary:
    """What a batch run scored, found already scored, and could not score (with the reason), and
    κ against their own scorings for the nights that came with one."""

    out_dir: Path
    scored: list[str] = dataclasses.field(default_factory=list)
    skipped: list[str] = dataclasses.field(default_factory=list)
    failed: dict[str, str] = dataclasses.field(default_factory=dict)
    reference_kappa: dict[str, float] = dataclasses.field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def table(self) -> Path:
        return self.out_dir / "nights.csv"

    def text(self) -> str:
        lines = [f"{self.out_dir}: {len(self.scored)} scored, {len(self.skipped)} already scored, "
                 f"{len(self.failed)} failed; cohort table {self.table}"]
        if self.reference_kappa:
            kappas = np.array(list(self.reference_kappa.values()))
            lines.append(f"  agreement with their own scorings ({kappas.size} night(s)): kappa median "
                         f"{np.median(kappas):.3f}, range {kappas.min():.3f}–{kappas.max():.3f}")
        lines += [f"  FAILED {night}: {why}" for night, why in self.failed.items()]
        return "\n".join(lines)


#: Respiratory columns of the cohort table (``nights.csv``); empty where not measured.
_RESPIRATORY_COLUMNS = ("AHI", "AHI_3pct", "AHI_4pct", "REI", "AHI_REM", "AHI_NREM", "AI", "HI", "OAI", "CAI", "MAI",
                        "ODI3", "ODI4", "T90_min", "spo2_mean", "spo2_min")
#: Heart-rate and variability columns of the cohort table; empty without an ECG.
_CARDIAC_COLUMNS = ("HR_mean_sleep", "HR_min_sleep", "HR_max_sleep", "HRV_RMSSD_NREM", "HRV_SDNN_NREM", "HRV_RMSSD_R",
                    "HRV_SDNN_R")
#: Body-position columns of the cohort table; empty without a readable position channel.
_POSITION_COLUMNS = ("supine_sleep_pct", "AHI_supine", "AHI_nonsupine", "positional_osa")


def _row(night: str, source: str, summary: dict[str, Any]) -> dict[str, Any]:
    stats, resp = summary["statistics"], summary["respiratory"]
    row: dict[str, Any] = {"night": night, "source": source, "n_epochs": summary["n_epochs"]}
    for key in ("TIB_min", "TST_min", "SE_pct", "SOL_min", "WASO_min", "R_latency_min", "N1_pct", "N2_pct", "N3_pct",
                "R_pct"):
        row[key] = stats.get(key)
    row.update({key: resp.get(key) for key in _RESPIRATORY_COLUMNS})
    row.update({key: (summary.get("cardiac") or {}).get(key) for key in _CARDIAC_COLUMNS})
    row.update({key: (summary.get("position") or {}).get(key) for key in _POSITION_COLUMNS})
    agreement, events = summary.get("agreement_with_reference") or {}, summary.get("event_agreement") or {}
    row.update(severity=resp.get("severity"),  # then, where the night came with a scoring, how we agree with it
               reference_accuracy=agreement.get("accuracy"), reference_kappa=agreement.get("kappa"),
               reference_AHI=events.get("AHI_reference"), reference_AHI_3pct=events.get("AHI_3pct_reference"),
               reference_AHI_4pct=events.get("AHI_4pct_reference"),
               reference_AHI_supine=events.get("AHI_supine_reference"),
               reference_AHI_nonsupine=events.get("AHI_nonsupine_reference"),
               modalities_used=";".join(summary["modalities_used"]),
               reliability=summary.get("reliability", {}).get("level"), notes=" | ".join(summary["notes"])[:500],
               error="")
    return row


def _inputs(recordings: str | Path | Sequence[str | Path]) -> list[RecordingFiles]:
    if isinstance(recordings, str | Path) and Path(recordings).is_dir():
        return find_recordings(recordings)
    paths = [Path(recordings)] if isinstance(recordings, str | Path) else [Path(p) for p in recordings]
    return [RecordingFiles(p, find_scoring(p)) for p in paths]


def reuse_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory for reuse; False where there is no glibc to ask.

    By default it hands blocks above a threshold (128 kB, adapting up to 32 MB) back to the kernel
    when freed, so every batch of a night's epochs faults its tensors in afresh. With the memory
    kept, scoring an 8-h night with the ``fast`` preset took 11.5 s instead of 12.1 s (the model
    4.9 s instead of 5.3 s; medians of 5 fresh processes, 2-core AVX2 CPU); the peak is unchanged.
    Set by the processes that score (the command, batch workers), not by the library: a notebook
    owns its process.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # macOS, Windows, musl
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(libc.mallopt(m_mmap_threshold, 32 << 20)) and bool(libc.mallopt(m_trim_threshold, 1 << 30))


def _score_into(scorer: NightScorer, prepared: PreparedInput, out: Path) -> None:
    _write_outputs(scorer.score(prepared), out, overwrite=True)


#: A batch night's outcome: None when scored (its ``summary.json`` written), else the error.
_Outcome = tuple[str, RecordingFiles, BaseException | None]


def _score_here(todo: list[tuple[str, RecordingFiles]], checkpoints: Sequence[str | Path], options: dict[str, Any],
                out: Path, progress: bool) -> Iterator[_Outcome]:
    """Score the nights in this process, the next one read and prepared in a thread meanwhile."""
    from .scoring.score import NightScorer  # torch, once the inputs are known to exist

    scorer = NightScorer.load(checkpoints, **options)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-ahead") as pool:
        ahead: dict[int, Future[PreparedInput]] = {}

        def read_ahead(k: int) -> None:
            if k < len(todo):
                ahead[k] = pool.submit(scorer.prepare, todo[k][1].recording, todo[k][1].scoring)

        read_ahead(0)
        for k, (night, item) in enumerate(tqdm(todo, desc="score", unit="night", disable=not progress)):
            read_ahead(k + 1)
            error: Exception | None = None
            try:
                _score_into(scorer, ahead.pop(k).result(), out / night)
            except Exception as err:  # one bad recording must not stop the backlog; the reason is kept
                error = err
            yield night, item, error


@functools.cache
def _worker_scorer(checkpoints: tuple[str | Path, ...], options: tuple[tuple[str, Any], ...], threads: int,
                   log_level: int) -> NightScorer:
    """The models of a batch worker process, loaded by its first night, with its share of the cores."""
    import torch

    from .scoring.score import NightScorer

    torch.set_num_threads(threads)
    reuse_freed_memory()
    log_to_stderr(log_level)
    return NightScorer.load(checkpoints, **dict(options))


class _UnusableModels(Exception):
    """A batch worker could not load the models (args: the cause): the batch stops with it."""


def _score_in_worker(checkpoints: tuple[str | Path, ...], options: tuple[tuple[str, Any], ...], threads: int,
                     log_level: int, item: RecordingFiles, out: Path) -> None:
    try:
        scorer = _worker_scorer(checkpoints, options, threads, log_level)
    except Exception as err:
        raise _UnusableModels(err) from None
    _score_into(scorer, scorer.prepare(item.recording, item.scoring), out)


def _score_in_processes(todo: list[tuple[str, RecordingFiles]], checkpoints: Sequence[str | Path],
                        options: dict[str, Any], out: Path, progress: bool, workers: int) -> Iterator[_Outcome]:
    """Score ``workers`` nights at a time, each worker a process with its share of the cores
    (:func:`~synthsleepnet._workers.worker_pool`: no worker outlives this process).

    Models a worker cannot load (a damaged checkpoint, an absent device) stop the batch with that
    error, as with one worker, instead of failing every night. When the caller stops (an error,
    an interrupt), the nights not yet handed to a worker are cancelled.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    shared = (tuple(checkpoints), tuple(options.items()), max(1, cores // workers), logger.getEffectiveLevel())
    pool = worker_pool(workers)
    try:
        futures = {pool.submit(_score_in_worker, *shared, item, out / night): (night, item) for night, item in todo}
        for future in tqdm(as_completed(futures), total=len(futures), desc="score", unit="night",
                           disable=not progress):
            error = future.exception()
            if isinstance(error, _UnusableModels):
                raise error.args[0]
            if isinstance(error, BrokenProcessPool):  # say which nights are undone, and why
                error = BrokenProcessPool("a worker process died while this night was being scored or waited "
                                          "(out of memory?); rerun to score it")
            yield *futures[future], error
    finally:
        pool.shutdown(cancel_futures=True)


@verbose
def score_nights(
    recordings: str | Path | Sequence[str | Path],
    checkpoints: Sequence[str | Path],
    out_dir: str | Path,
    *,
    channel_file: str | Path | None = None,
    overwrite: bool = False,
    threshold: float | None = None,
    require: Sequence[str] = (),
    timezone: dt.tzinfo = dt.UTC,
    device: str = "auto",
    precision: str = "auto",
    workers: int = 1,
    progress: bool = True,
    lights: Lights = (None, None),
    verbose: bool | str | int | None = None,
) -> BatchSummary:
    """Score many recordings (a folder, or files) with the models loaded once.

    Each night goes to ``out_dir/<night>/`` (the outputs of :func:`score_night`; a scoring found
    beside a recording by its naming convention is compared with it), and ``out_dir/nights.csv``
    holds one row per night: TST, SE, SOL, WASO, R latency, stage %, AHI, severity, the accuracy,
    κ and AHI of its own scoring when it has one, modalities used, reliability, notes, or the
    error. A night that fails is reported and the others are
    scored; nights already scored are kept unless ``overwrite`` (a rerun resumes). ``lights``
    (clock times, as in :func:`~synthsleepnet.scoring.score_recording`) apply to every night.

    With one worker the next recording is read and prepared in a thread while the models score
    the current one. ``workers`` > 1 scores that many nights at a time, each worker a process
    with its share of the cores and its own copy of the models (see
    :func:`~synthsleepnet._workers.worker_pool` for when a script needs the main guard): torch's
    threads idle while a night is read, prepared and written, so on 2 cores 2 workers scored 1.4x
    the nights per hour.
    """
    workers = check_int("workers", workers, 1, 256)
    out = check_outputs(out_dir, (), overwrite=True)
    items = _inputs(recordings)
    if not items:
        raise FileNotFoundError(f"no recordings found in {recordings}")
    summary = BatchSummary(out)
    rows: list[dict[str, Any]] = []
    todo = []
    for item in items:
        night = night_id_for(item.recording)
        done = out / night / "summary.json"
        if done.exists() and not overwrite:
            summary.skipped.append(night)
            rows.append(_row(night, str(item.recording), json.loads(done.read_text("utf-8"))))
        else:
            todo.append((night, item))
    options = {"channel_file": channel_file, "device": device, "precision": precision, "threshold": threshold,
               "require": tuple(require), "timezone": timezone, "lights": lights}
    outcomes = (_score_in_processes(todo, checkpoints, options, out, progress, min(workers, len(todo)))
                if workers > 1 and len(todo) > 1 else _score_here(todo, checkpoints, options, out, progress))
    for night, item, error in outcomes:
        if error is None:
            summary.scored.append(night)
            rows.append(_row(night, str(item.recording), json.loads((out / night / "summary.json").read_text())))
            continue
        summary.failed[night] = failure_text(error, item.recording)
        logger.error("%s failed: %s", night, summary.failed[night])
        rows.append({"night": night, "source": str(item.recording), "error": summary.failed[night]})
    table = pd.DataFrame(rows).sort_values("night", kind="stable")
    atomic_write_text(summary.table, table.to_csv(index=False, float_format="%.2f"))
    summary.reference_kappa = {str(row["night"]): float(row["reference_kappa"]) for row in rows
                               if row.get("reference_kappa") is not None and np.isfinite(row["reference_kappa"])}
    return summary
