"""Prepare a cohort into an epoch store: parallel across nights, resumable, atomic per night.

Two engines run the nights: ``local`` (a process pool on this machine) and ``dask`` (a Dask
distributed cluster — on SLURM/PBS through dask-jobqueue, on Kubernetes through
dask-kubernetes, or a ``LocalCluster``). Each night is one task that reads its recording and
writes its folder atomically (so workers need the inputs and the store on a shared file
system); a failing night is reported with its file and the others go on; the manifest is
assembled once, at the end, from the nights on disk; a rerun skips finished nights.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from .._config import PreprocessingConfig, config_hash
from .._logging import logger, verbose
from .._validation import check_option, failure_text
from .._workers import worker_pool
from ..io.annotations import embedded_scoring, read_scoring
from ..io.channels import load_channel_table
from ..io.discover import RecordingFiles, find_recordings, find_scoring, night_id_for, subject_id
from ..io.recording import read_recording
from ..preprocessing.pipeline import prepare_recording
from .epoch_store import create_store, rebuild_manifest
from .lock import store_lock
from .night_files import remove_partial_nights, write_night_files

__all__ = ["PrepareSummary", "night_id_for", "prepare_store"]


@dataclasses.dataclass
class PrepareSummary:
    """Outcome of preparing a cohort: which nights were written, skipped or failed, and why."""

    store: Path
    prepared: list[str] = dataclasses.field(default_factory=list)
    skipped: list[str] = dataclasses.field(default_factory=list)
    failed: dict[str, str] = dataclasses.field(default_factory=dict)
    reports: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed

    def text(self) -> str:
        lines = [f"store {self.store}: {len(self.prepared)} prepared, {len(self.skipped)} skipped "
                 f"(already there), {len(self.failed)} failed"]
        lines += [f"  FAILED {name}: {why}" for name, why in self.failed.items()]
        return "\n".join(lines)


def _prepare_one(item: RecordingFiles, store: Path, night_id: str, config: PreprocessingConfig,
                 channel_file: str | None, required: tuple[str, ...], subject: str, cohort: str
                 ) -> tuple[str, str | None, str]:
    """Worker: prepare and write one night. Returns (night_id, error or None, report text).

    Any exception is this night's failure, never the cohort's: it is returned with the file
    named, and the other nights go on.
    """
    try:
        recording = read_recording(item.recording)
        scoring = read_scoring(item.scoring, epoch_s=config.epoch_s) if item.scoring \
            else embedded_scoring(recording, config.epoch_s)  # an EDF+ export's own stages
        night = prepare_recording(recording, scoring, config=config,
                                  channel_table=load_channel_table(channel_file), required=required)
        meta = night.metadata()
        meta.update(subject=subject, cohort=cohort, source=str(item.recording),
                    scoring=str(scoring.source) if scoring else None)
        write_night_files(store / "nights" / night_id, night.signals, night.labels, night.events, meta,
                          config.store_dtype)
    except Exception as err:  # one bad night must not stop the others; the reason is reported
        return night_id, failure_text(err, item.recording, item.scoring), ""
    return night_id, None, night.report.summary()


def _done(store: Path, night_id: str, digest: str) -> bool:
    import json

    meta = store / "nights" / night_id / "meta.json"
    return meta.exists() and json.loads(meta.read_text("utf-8")).get("preprocessing_hash") == digest


@verbose
def prepare_store(
    inputs: str | Path | Sequence[RecordingFiles | str | Path],
    store: str | Path,
    *,
    config: PreprocessingConfig | None = None,
    scoring_dirs: Iterable[str | Path] = (),
    channel_file: str | Path | None = None,
    required: Iterable[str] = (),
    cohort: str = "",
    subject_pattern: str | None = None,
    workers: int = 1,
    engine: str = "local",
    scheduler: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
    verbose: bool | str | int | None = None,
) -> PrepareSummary:
    """Prepare recordings into an epoch store, one night per folder, in parallel.

    Nights already in the store with the same preprocessing are skipped, so an interrupted run
    resumes where it stopped; a crash mid-night leaves no half night (see ``night_files``).

    Parameters
    ----------
    inputs : str | Path | sequence
        A folder (searched recursively), or a list of recordings or :class:`RecordingFiles`;
        recordings without an explicit scoring are paired with one by naming convention
        (:func:`~synthsleepnet.io.find_scoring`).
    store : str | Path
        The store folder; created if needed.
    config : PreprocessingConfig | None
        Preprocessing settings; must match those of an existing store.
    scoring_dirs : iterable of path
        Extra folders to search for scoring files (NSRR keeps them apart from the EDFs).
    channel_file : str | Path | None
        A TOML/YAML file of extra channel aliases.
    required : iterable of str
        Modalities or channels every night must have; nights without them fail.
    cohort : str
        Cohort name written into the manifest.
    subject_pattern : str | None
        Regex with one group that extracts the subject from a file name (see ``subject_id``).
    workers : int
        Processes preparing nights at once (``local`` engine).
    engine : str
        ``local`` (a process pool) or ``dask`` (the cluster at ``scheduler``).
    scheduler : str | None
        Address of the Dask scheduler (``tcp://host:8786``), for ``engine="dask"``.
    overwrite : bool
        Re-prepare nights already in the store.
    progress : bool
        Show a progress bar.
    verbose : bool | str | int | None
        Log level for this call.

    Returns
    -------
    PrepareSummary
        Nights prepared, skipped and failed (with the reason, naming the file).
    """
    config = config or PreprocessingConfig()
    store = create_store(store, config)
    dirs = [Path(d) for d in scoring_dirs]
    if isinstance(inputs, str | Path):
        items = find_recordings(inputs, scoring_dirs=dirs)
    else:  # bare paths get their scoring by the same naming rules as a folder's recordings
        items = [i if isinstance(i, RecordingFiles) else RecordingFiles(Path(i), find_scoring(Path(i), dirs))
                 for i in inputs]
    if not items:
        raise FileNotFoundError(f"no recordings found in {inputs}")
    check_option("engine", engine, ("local", "dask"))
    if engine == "dask" and not scheduler:
        raise ValueError("engine='dask' needs the scheduler's address (--scheduler tcp://host:8786)")
    ids = [night_id_for(i.recording) for i in items]
    clashes = sorted({n for n in ids if ids.count(n) > 1})
    if clashes:
        raise ValueError(f"recordings share night id(s) {clashes}; rename the files or prepare "
                         "them into separate stores")
    with store_lock(store):
        run = (lambda args: _run_dask(args, str(scheduler))) if engine == "dask" else \
            (lambda args: _run_local(args, workers))
        return _prepare_items(store, items, ids, config, channel_file, tuple(required), cohort, subject_pattern,
                              run, overwrite, progress)


_Result = tuple[str, str | None, str]


def _prepare_items(store: Path, items: list[RecordingFiles], ids: list[str], config: PreprocessingConfig,
                   channel_file: str | Path | None, required: tuple[str, ...], cohort: str,
                   subject_pattern: str | None, run: Callable[[list[tuple[Any, ...]]], Iterable[_Result]],
                   overwrite: bool, progress: bool) -> PrepareSummary:
    for name in remove_partial_nights(store / "nights"):
        logger.warning("removed a half-written night left by an interrupted run: %s", name)
    summary = PrepareSummary(store)
    digest = config_hash(config)
    todo = []
    for item, night_id in zip(items, ids, strict=True):
        if not overwrite and _done(store, night_id, digest):
            summary.skipped.append(night_id)
        else:
            todo.append((item, night_id))
    channel = str(channel_file) if channel_file else None
    args = [(item, store, night_id, config, channel, required,
             subject_id(item.recording.stem, subject_pattern), cohort) for item, night_id in todo]
    bar = tqdm(total=len(args), desc="prepare", unit="night", disable=not progress or not args)
    try:
        for night_id, error, report in run(args):
            if error is None:
                summary.prepared.append(night_id)
                summary.reports[night_id] = report
                logger.info("%s", report)
            else:
                summary.failed[night_id] = error
                logger.error("%s failed: %s", night_id, error)
            bar.update()
    finally:
        bar.close()
        try:
            rebuild_manifest(store)
        except OSError as err:  # a full disk must not hide the summary of what was prepared
            summary.failed["(manifest)"] = f"{store / 'manifest.csv'} could not be written ({err}); rerun to rebuild it"
            logger.error("%s", summary.failed["(manifest)"])
    return summary


def _run_local(args: list[tuple[Any, ...]], workers: int) -> Iterable[_Result]:
    if workers <= 1 or len(args) <= 1:
        for a in args:
            yield _prepare_one(*a)
        return
    with worker_pool(workers) as pool:
        futures = {pool.submit(_prepare_one, *a): a[2] for a in args}
        for future in as_completed(futures):
            try:
                yield future.result()
            except BrokenProcessPool:  # a worker was killed (out of memory?); say which nights are undone
                yield futures[future], ("a worker process died while this night was being prepared or waited "
                                        "(out of memory?); rerun to prepare it"), ""


def _run_dask(args: list[tuple[Any, ...]], scheduler: str) -> Iterable[_Result]:
    """Each night a task on the Dask cluster at ``scheduler``; results as they finish."""
    try:
        from distributed import Client
        from distributed import as_completed as dask_completed
    except ImportError as err:
        raise ImportError("engine='dask' needs Dask distributed: pip install 'synthsleepnet[cluster]'") from err
    if not args:
        return
    with Client(scheduler) as client:
        futures = {client.submit(_prepare_one, *a, key=f"prepare-{a[2]}", pure=False, retries=0): a[2]
                   for a in args}
        for future in dask_completed(list(futures)):
            try:
                yield future.result()
            except Exception as err:  # the worker itself died (memory, node lost): this night is undone
                yield futures[future], (f"the Dask worker preparing this night failed ({type(err).__name__}: "
                                        f"{err}); rerun to prepare it"), ""
