"""AASM sleep statistics from a hypnogram: one implementation, documented definitions.

Definitions (times in minutes, percentages in %; epochs of ``epoch_s`` seconds):

- **TIB** (time in bed): lights off to lights on where known (either bounds its own end),
  otherwise the whole hypnogram; unscored epochs count in TIB.
- **SOL** (sleep onset latency): from the start of TIB to the first epoch of any sleep stage
  (AASM: the first epoch scored other than W).
- **SPT** (sleep period time): first to last sleep epoch, inclusive.
- **TST** (total sleep time): N1 + N2 + N3 + R epochs (unscored epochs are not sleep).
- **SE** (sleep efficiency): TST / TIB × 100.
- **WASO** (wake after sleep onset): W epochs within SPT.
- **R latency** (REM latency): from sleep onset to the first R epoch (AASM). YASA reports
  ``Lat_REM`` from the start of the recording; ours equals ``Lat_REM − SOL``.
- **Stage minutes** and **% of TST** for N1, N2, N3, R (keys use the stage names of
  :data:`synthsleepnet.tasks.STAGES`: ``R_min``, ``R_pct``).
- **Awakenings**: runs of one or more W epochs within SPT.
- **Unscored**: minutes of epochs scored −1 (movement, ``?``, artefact) within TIB.

A night without sleep has TST 0 and SE 0; SOL, WASO, R latency and the stage percentages are
NaN (undefined), never 0.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._logging import logger
from .tasks import STAGES, UNSCORED

if TYPE_CHECKING:
    from .io.annotations import Scoring
    from .io.channels import ChannelTable
    from .io.recording import Recording

__all__ = ["in_bed", "place_lights", "scoring_statistics", "sleep_statistics"]

#: The respiratory indices :func:`scoring_statistics` adds for a scoring with respiratory events.
SCORED_INDICES = ("AHI", "AHI_3pct", "AHI_4pct", "AHI_REM", "AHI_NREM", "AI", "HI", "OAI", "CAI", "MAI", "ODI3",
                  "ODI4", "ArI", "n_events")


def place_lights(lights: tuple[dt.time | None, dt.time | None], start: dt.datetime | None, length_s: float, *,
                 marked: tuple[float | None, float | None] = (None, None), source: str = "recording"
                 ) -> tuple[float | None, float | None]:
    """Lights off and on in seconds from ``start``: clock times placed in a night of
    ``length_s`` seconds (it may run past midnight), a time not given taken from ``marked``.

    Raises
    ------
    ValueError
        Naming ``source``: a clock time is given but the night's start time is unknown, a time
        falls outside the night, or lights on is not after lights off.

    Examples
    --------
    >>> place_lights((dt.time(23, 0), dt.time(6, 30)), dt.datetime(2024, 1, 1, 22, 30), 9 * 3600)
    (1800.0, 28800.0)
    """
    if lights == (None, None):
        return marked
    if start is None:
        raise ValueError(f"{source}: its start time is unknown (anonymised, or a scoring file that states none), "
                         "so lights at clock times cannot be placed in it")
    start_s = start.hour * 3600 + start.minute * 60 + start.second + start.microsecond / 1e6
    placed: list[float | None] = []
    for mark, clock, fallback in zip(("off", "on"), lights, marked, strict=True):
        if clock is None:
            placed.append(fallback)
            continue
        seconds = (clock.hour * 3600 + clock.minute * 60 + clock.second - start_s) % 86400
        if seconds > length_s:
            raise ValueError(f"{source}: lights {mark} at {clock} is not within the night "
                             f"({start:%H:%M:%S} to {start + dt.timedelta(seconds=length_s):%H:%M:%S})")
        placed.append(seconds)
    off, on = placed
    if off is not None and on is not None and on <= off:
        raise ValueError(f"{source}: lights on ({lights[1] or 'as marked'}) is not after lights off "
                         f"({lights[0] or 'as marked'})")
    return off, on


def in_bed(n_epochs: int, epoch_s: float, lights_off_s: float | None = None,
           lights_on_s: float | None = None) -> slice:
    """The epochs of time in bed: from the one holding lights off to the one holding lights on
    (the whole hypnogram where unmarked)."""
    first = int(np.floor(lights_off_s / epoch_s)) if lights_off_s is not None else 0
    last = int(np.ceil(lights_on_s / epoch_s)) if lights_on_s is not None else n_epochs
    return slice(max(first, 0), min(last, n_epochs))


def sleep_statistics(stages: np.ndarray, epoch_s: float = 30.0, *, lights_off_s: float | None = None,
                     lights_on_s: float | None = None) -> dict[str, float]:
    """AASM sleep statistics of a hypnogram (codes 0 W, 1 N1, 2 N2, 3 N3, 4 R, −1 unscored).

    Parameters
    ----------
    stages : array of int, shape (E,)
        One stage code per epoch from the start of the recording.
    epoch_s : float
        Epoch length in seconds.
    lights_off_s, lights_on_s : float | None
        Lights marks in seconds from the start; they bound TIB when given.

    Returns
    -------
    dict
        ``TIB_min, SPT_min, TST_min, SE_pct, SOL_min, WASO_min, R_latency_min``, per stage
        ``<stage>_min`` and ``<stage>_pct`` (of TST), ``awakenings``, ``unscored_min``.

    Examples
    --------
    >>> import numpy as np
    >>> s = sleep_statistics(np.array([0, 0, 1, 2, 2, 0, 2, 4, 4, 0]))
    >>> s["TST_min"], s["SOL_min"], s["WASO_min"], s["R_latency_min"], s["awakenings"]
    (3.0, 1.0, 0.5, 2.5, 1.0)
    """
    stages = np.asarray(stages).astype(int)
    if stages.ndim != 1:
        raise ValueError(f"stages must be one-dimensional, got shape {stages.shape}")
    if stages.size == 0:
        raise ValueError("the hypnogram holds no epochs: the scoring has no sleep stages")
    unknown = sorted(set(np.unique(stages).tolist()) - {UNSCORED, *range(len(STAGES))})
    if unknown:
        raise ValueError(f"stage codes must be -1 (unscored), 0 W, 1 N1, 2 N2, 3 N3 or 4 R; got {unknown}")
    tib = stages[in_bed(stages.size, epoch_s, lights_off_s, lights_on_s)]
    minutes = epoch_s / 60
    asleep = np.flatnonzero(tib > 0)
    stats: dict[str, float] = {"TIB_min": tib.size * minutes}
    tst = float(np.count_nonzero(tib > 0)) * minutes
    stats["TST_min"] = tst
    stats["SE_pct"] = 100 * tst / stats["TIB_min"] if tib.size else float("nan")
    if asleep.size:
        spt = tib[asleep[0]:asleep[-1] + 1]
        stats["SPT_min"] = spt.size * minutes
        stats["SOL_min"] = float(asleep[0]) * minutes
        stats["WASO_min"] = float(np.count_nonzero(spt == 0)) * minutes
        rem = np.flatnonzero(tib == STAGES.index("R"))
        stats["R_latency_min"] = float(rem[0] - asleep[0]) * minutes if rem.size else float("nan")
        wake = (spt == 0).astype(int)
        stats["awakenings"] = float(np.count_nonzero(np.diff(np.r_[0, wake]) == 1))
    else:
        stats.update(SPT_min=0.0, SOL_min=float("nan"), WASO_min=float("nan"),
                     R_latency_min=float("nan"), awakenings=float("nan"))
    for code, name in enumerate(STAGES[1:], start=1):
        stats[f"{name}_min"] = float(np.count_nonzero(tib == code)) * minutes
        stats[f"{name}_pct"] = 100 * stats[f"{name}_min"] / tst if tst else float("nan")
    stats["unscored_min"] = float(np.count_nonzero(tib < 0)) * minutes
    return stats


def scoring_statistics(scoring: str | Path | Scoring, *,
                       lights: tuple[dt.time | None, dt.time | None] = (None, None),
                       recording: str | Path | Recording | None = None,
                       channel_table: ChannelTable | None = None) -> dict[str, Any]:
    """AASM sleep statistics of a scoring file, with the scorer's own AHI when it scores breathing,
    and with its ``recording`` the heart rate and its variability by the scorer's stages.

    :func:`sleep_statistics` of its hypnogram within its lights marks (or ``lights`` given as
    clock times, :func:`place_lights`), and, when it scores respiratory events, the scorer's own
    indices (:func:`~synthsleepnet.respiratory.scored_indices`: AHI, AI, HI, OAI, CAI, MAI and,
    where the file states each desaturation's depth, the AHI by the AASM 3 % and 4 % rules and
    the ODI3 and ODI4; where it marks arousals, the arousal index). With ``recording`` (and the
    ``channel_table`` that maps its labels), the cardiac measures and the heart-rate variability
    of its first usable ECG (:mod:`synthsleepnet.cardiac`), the scoring aligned to the recording
    as for training. What reading changed is logged as warnings.

    Raises
    ------
    ValueError
        Naming the file: it cannot be read, holds no stages, the lights cannot be placed, the
        recording has no usable ECG or the scoring belongs to another recording.
    FileNotFoundError
        If the file does not exist.
    """
    from .io.annotations import Scoring, read_scoring
    from .respiratory import scored_indices

    scoring = scoring if isinstance(scoring, Scoring) else read_scoring(scoring)
    source = str(scoring.source or "scoring")
    if scoring.n_epochs == 0:
        raise ValueError(f"{source}: holds no sleep stages, so there are no statistics to compute")
    if recording is not None:
        from .io.recording import Recording, read_recording

        recording = recording if isinstance(recording, Recording) else read_recording(recording)
    # a scoring that states no start begins with its recording, whose start then places clock times
    start = scoring.start if scoring.start is not None or recording is None else recording.start
    marks = place_lights(lights, start, scoring.n_epochs * scoring.epoch_s,
                         marked=(scoring.lights_off_s, scoring.lights_on_s), source=source)
    stats: dict[str, Any] = sleep_statistics(scoring.stages, scoring.epoch_s, lights_off_s=marks[0],
                                             lights_on_s=marks[1])
    if scoring.respiratory_scored:
        indices = scored_indices(scoring.events, scoring.stages, scoring.epoch_s,
                                 bed=in_bed(scoring.n_epochs, scoring.epoch_s, *marks),
                                 desaturations=scoring.desaturations)
        stats.update({key: indices[key] for key in SCORED_INDICES if key in indices})
    for note in scoring.notes:
        logger.warning("%s: %s", source, note)
    if recording is not None:
        stats.update(_cardiac_by_scoring(scoring, recording, lights, channel_table))
    return stats


def _cardiac_by_scoring(scoring: Scoring, recording: Recording, lights: tuple[dt.time | None, dt.time | None],
                        channel_table: ChannelTable | None) -> dict[str, float]:
    """The recording's heart rate and its variability by the scoring's stages, aligned to it."""
    from .cardiac import cardiac_measures, heart_rate, hrv_measures, recording_beats
    from .io.channels import load_channel_table
    from .preprocessing.labels import align_scoring

    notes: list[str] = []
    found = recording_beats(recording, channel_table or load_channel_table(), notes)
    if found is None:
        raise ValueError(f"{recording.path}: no heart rate: " + ("; ".join(notes) or "no channel reads as an ECG"))
    beats, duration_s = found
    n_epochs = int(duration_s // scoring.epoch_s)
    aligned = align_scoring(scoring, recording.start, n_epochs, scoring.epoch_s, source=str(recording.path))
    for note in aligned.notes[len(scoring.notes):]:  # the scoring's own are said already
        logger.warning("%s: %s", recording.path, note)
    marks = place_lights(lights, recording.start, n_epochs * scoring.epoch_s, marked=aligned.lights_s,
                         source=str(recording.path))
    stages = aligned.labels[:, aligned.names.index("stage")]
    bed = in_bed(n_epochs, scoring.epoch_s, *marks)
    return {**cardiac_measures(heart_rate(beats, duration_s), stages, scoring.epoch_s, in_bed=bed),
            **hrv_measures(beats, stages, scoring.epoch_s, in_bed=bed)}
