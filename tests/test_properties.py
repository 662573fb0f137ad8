"""Property tests: any bytes in an EDF header or a scoring file give a result or a clear error,
never a traceback of another kind (hypothesis searches for counter-examples)."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import numpy as np
from edf_faults import FIXED_FIELDS, SIGNAL_FIELDS, write_edf
from hypothesis import example, given, settings
from hypothesis import strategies as st

from synthsleepnet import AnnotationError, PSGReadError, read_recording, read_scoring
from synthsleepnet.io.recording import Recording

_WORK = Path(tempfile.mkdtemp(prefix="ssn-properties-"))
atexit.register(shutil.rmtree, _WORK, ignore_errors=True)
_TEMPLATE = write_edf(_WORK / "template.edf", {"EEG C4-M1": (np.sin(np.arange(2000) / 7) * 40, 100.0),
                                               "SpO2": (np.full(20, 95.0), 1.0)},
                      annotations=[(3.0, 4.0, "Sleep stage W")]).read_bytes()
_NUMBERS = st.text(alphabet="0123456789.-+eEnaif x", max_size=8)


def _read_everything(path: Path) -> Recording | None:
    """Open a recording and read every channel; only our documented errors may escape."""
    try:
        recording = read_recording(path)
    except PSGReadError:
        return None
    for sig in recording.signals:
        try:
            assert sig.data.size == sig.n_samples or sig.problem
        except PSGReadError:
            continue
    return recording


def _field_offset(name: str, signal: int | None) -> tuple[int, int]:
    if signal is None:
        return FIXED_FIELDS[name]
    offset = 256
    for field, width in SIGNAL_FIELDS:
        if field == name:
            return offset + signal * width, width
        offset += width * 3  # the template has 2 signals and an annotation signal


@settings(max_examples=250, deadline=None)
@given(field=st.sampled_from([*FIXED_FIELDS, *(f for f, _ in SIGNAL_FIELDS)]), signal=st.integers(0, 2),
       value=st.one_of(_NUMBERS, st.binary(max_size=16).map(lambda b: b.decode("latin-1"))))
def test_any_header_field_value_gives_a_recording_or_a_clear_error(field: str, signal: int, value: str) -> None:
    raw = bytearray(_TEMPLATE)
    offset, width = _field_offset(field, None if field in FIXED_FIELDS else signal)
    raw[offset:offset + width] = value.encode("latin-1").ljust(width)[:width]
    path = _WORK / "mutated.edf"
    path.write_bytes(bytes(raw))
    _read_everything(path)


@settings(max_examples=150, deadline=None)
@given(cut=st.integers(0, len(_TEMPLATE)), tail=st.binary(max_size=600))
def test_truncated_or_extended_files_give_a_recording_or_a_clear_error(cut: int, tail: bytes) -> None:
    path = _WORK / "cut.edf"
    path.write_bytes(_TEMPLATE[:cut] + tail)
    _read_everything(path)


@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=1500))
def test_any_bytes_give_a_recording_or_a_clear_error(data: bytes) -> None:
    path = _WORK / "noise.edf"
    path.write_bytes(data)
    _read_everything(path)


_CELLS = st.one_of(st.sampled_from(["W", "N1", "N2", "N3", "R", "REM", "?", "Obstructive apnea", "Hypopnea",
                                    "Lights off", "Sleep stage 2", "x", "", "onset", "duration"]),
                   st.floats(allow_nan=True, allow_infinity=True).map(str), st.text(max_size=6))


@settings(max_examples=200, deadline=None)
@given(suffix=st.sampled_from([".csv", ".tsv", ".txt"]), header=st.booleans(),
       rows=st.lists(st.lists(_CELLS, min_size=1, max_size=4), max_size=8))
@example(suffix=".csv", header=False, rows=[[""], ["onset"]])  # a blank first line: pandas' sniffer failed
def test_any_table_gives_a_scoring_or_a_clear_error(suffix: str, header: bool, rows: list[list[str]]) -> None:
    sep = "\t" if suffix == ".tsv" else ","
    lines = (["onset" + sep + "duration" + sep + "description"] if header else []) + [sep.join(r) for r in rows]
    path = _WORK / f"scoring{suffix}"
    path.write_text("\n".join(lines), encoding="utf-8")
    try:
        scoring = read_scoring(path)
    except AnnotationError:
        return
    assert scoring.n_epochs <= 7 * 24 * 120  # never more than a week of epochs


@settings(max_examples=150, deadline=None)
@given(start=st.one_of(_NUMBERS, st.floats().map(str)), duration=st.one_of(_NUMBERS, st.floats().map(str)),
       concept=st.sampled_from(["Stage 2 sleep|2", "Wake|0", "Obstructive apnea|Obstructive Apnea", "Hypopnea",
                                "Stage 9 sleep|9", "Arousal|Arousal ()"]))
def test_any_nsrr_event_gives_a_scoring_or_a_clear_error(start: str, duration: str, concept: str) -> None:
    kind = "Stages|Stages" if "sleep" in concept.lower() or "wake" in concept.lower() else "Respiratory|Respiratory"
    path = _WORK / "scoring.xml"
    path.write_text(f"<PSGAnnotation><ScoredEvents><ScoredEvent><EventType>{kind}</EventType><EventConcept>"
                    f"{concept}</EventConcept><Start>{start}</Start><Duration>{duration}</Duration></ScoredEvent>"
                    "</ScoredEvents></PSGAnnotation>", encoding="utf-8")
    try:
        scoring = read_scoring(path)
    except AnnotationError:
        return
    assert scoring.n_epochs <= 7 * 24 * 120
