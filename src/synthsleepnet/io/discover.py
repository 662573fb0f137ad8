"""Find recordings in a folder and pair each with its scoring file by the cohorts' naming rules."""

from __future__ import annotations

import dataclasses
import functools
import os
import re
from collections.abc import Iterable
from pathlib import Path

__all__ = ["RecordingFiles", "find_recordings", "find_scoring", "night_id_for", "subject_id"]

RECORDING_SUFFIXES = (".edf", ".bdf", ".rec", ".vhdr", ".set", ".fif")
_SCORING_ONLY = re.compile(r"(hypnogram|sleepscoring|scoring|annotations?|events|nsrr|profusion)$", re.I)


@dataclasses.dataclass(frozen=True)
class RecordingFiles:
    """A recording and its scoring file (None when none was found)."""

    recording: Path
    scoring: Path | None


def _is_scoring_name(path: Path) -> bool:
    return bool(_SCORING_ONLY.search(re.split(r"[-_]", path.stem)[-1]))


def _candidates(stem: str) -> list[str | re.Pattern[str]]:
    """Scoring file names for a recording stem, most specific first: exact names, and one
    pattern for Sleep-EDF whose hypnograms differ from the recording in the eighth letter.

    Names are compared exactly, never as glob patterns, so a recording called ``n[12].edf`` or
    ``night*.edf`` is paired with its own scoring only.
    """
    base = re.sub(r"[-_](psg|eeg|raw)$", "", stem, flags=re.I)
    names: list[str | re.Pattern[str]] = [
        f"{stem}-nsrr.xml", f"{base}-nsrr.xml", f"{stem}.xml", f"{base}.xml",   # NSRR
        f"{stem}-profusion.xml", f"{base}-profusion.xml",                        # NSRR Profusion
        f"{base}_sleepscoring.edf", f"{base}_sleepscoring.txt",                   # HMC
        f"{base}-Hypnogram.edf", f"{base}_hypnogram.edf",
        f"{base}_events.tsv", f"{base}_events.csv",                              # BIDS
        f"{base}.tsv", f"{base}.csv", f"{base}.txt",
        f"{base}_hypnogram.txt", f"{base}-hypnogram.txt", f"{base}_hypnogram.csv"]
    if re.fullmatch(r"S[CT]\d{4}[A-Z]\d", base, flags=re.I):                   # Sleep-EDF
        names.append(re.compile(re.escape(base[:7]) + r"[A-Z]-Hypnogram\.edf"))
    return names


def find_scoring(recording: Path, search_dirs: Iterable[Path] = ()) -> Path | None:
    """The scoring file of ``recording`` in its folder or ``search_dirs``, by naming convention.

    Conventions: NSRR ``<name>-nsrr.xml`` (then ``<name>-profusion.xml``); Sleep-EDF ``SC4001E0-PSG.edf`` ↔
    ``SC4001E?-Hypnogram.edf``; HMC ``SN001.edf`` ↔ ``SN001_sleepscoring.edf``; BIDS
    ``sub-01_task-sleep_eeg.edf`` ↔ ``sub-01_task-sleep_events.tsv``; otherwise the same stem
    with ``.xml``, ``.tsv``, ``.csv`` or ``.txt``.
    """
    return _match(recording, [(folder, _listing(folder)) for folder in [recording.parent, *search_dirs]])


@functools.lru_cache(maxsize=64)
def _cached_listing(folder: Path, mtime_ns: int) -> frozenset[str]:
    with os.scandir(folder) as entries:
        return frozenset(e.name for e in entries if e.is_file())


def _listing(folder: Path) -> frozenset[str]:
    """File names in ``folder`` (listed once per folder state, so pairing a cohort stays linear)."""
    return _cached_listing(folder, folder.stat().st_mtime_ns) if folder.is_dir() else frozenset()


def _match(recording: Path, listings: list[tuple[Path, frozenset[str]]]) -> Path | None:
    for candidate in _candidates(recording.stem):
        for folder, names in listings:
            if isinstance(candidate, str):
                if candidate in names and folder / candidate != recording:
                    return folder / candidate
            else:
                hit = min((n for n in names if candidate.fullmatch(n)), default=None)
                if hit is not None:
                    return folder / hit
    return None


def find_recordings(folder: str | Path, *, scoring_dirs: Iterable[str | Path] = ()) -> list[RecordingFiles]:
    """All recordings under ``folder`` (recursively, sorted), each paired with its scoring.

    Files whose names mark them as scorings (``*-Hypnogram.edf``, ``*_sleepscoring.edf``) are not
    taken as recordings.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise NotADirectoryError(f"not a folder: {folder}")
    dirs = [Path(d) for d in scoring_dirs]
    files = sorted(p for p in folder.rglob("*")
                   if p.suffix.lower() in RECORDING_SUFFIXES and p.is_file() and not _is_scoring_name(p))
    return [RecordingFiles(p, find_scoring(p, dirs)) for p in files]


_SUBJECT_RULES = (
    (re.compile(r"^(S[CT]\d\d\d)\d", re.I), 1),                # Sleep-EDF: SC4ssN -> SC4ss
    (re.compile(r"^(?:shhs\d|mesa-sleep|mros-visit\d|cfs-visit\d|chat-(?:baseline|followup|nonrandomized))"
                r"-(\w+?)(?:-|$)", re.I), 1),                # NSRR: a child's CHAT baseline and follow-up are one
    (re.compile(r"^(sub-[A-Za-z0-9]+)"), 1),                   # BIDS
)


def night_id_for(recording: Path) -> str:
    """Folder-safe night id from a recording's file name (``SC4001E0-PSG.edf`` → ``SC4001E0-PSG``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", recording.stem)


def subject_id(stem: str, pattern: str | None = None) -> str:
    """The subject a recording belongs to, so splits never put one person in two sets.

    With ``pattern`` (a regex with one group), that group; otherwise the cohort rules for
    Sleep-EDF (``SC4001E0`` → ``SC400``), NSRR (``shhs1-200001`` → ``200001``, ``chat-followup-300001``
    → ``300001``, as is the same child's ``chat-baseline-300001``) and BIDS
    (``sub-01_...`` → ``sub-01``); otherwise the stem itself.

    Examples
    --------
    >>> subject_id("SC4012E0-PSG"), subject_id("shhs2-200077"), subject_id("night07")
    ('SC401', '200077', 'night07')
    """
    if pattern is not None:
        match = re.search(pattern, stem)
        if not match or not match.groups():
            raise ValueError(f"subject pattern {pattern!r} does not match {stem!r} with a group")
        return match.group(1)
    for rule, group in _SUBJECT_RULES:
        match = rule.search(stem)
        if match:
            return match.group(group)
    return stem
