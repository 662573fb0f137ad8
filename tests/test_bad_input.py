"""The fault matrix (docs/bad-input.md): every bad file isolated and named, bounded memory, no
silent label shifts. Each case asserts what the user sees and what is kept."""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from edf_faults import empty_signal, set_field, write_edf, write_edf_plus_d

from synthsleepnet import (
    AnnotationError,
    EpochStore,
    PSGReadError,
    StoreError,
    prepare_recording,
    prepare_store,
    read_recording,
    read_scoring,
)
from synthsleepnet._config import PreprocessingConfig, get_preset
from synthsleepnet.cli import main
from synthsleepnet.io import find_recordings, find_scoring
from synthsleepnet.io.channels import load_channel_table
from synthsleepnet.io.recording import Recording, Signal
from synthsleepnet.models import CheckpointMeta, ModelSpec, build_model, save_checkpoint
from synthsleepnet.scoring.prepare import prepare_input
from synthsleepnet.stats import sleep_statistics
from synthsleepnet.store.lock import store_lock

FS = 100.0
START = dt.datetime(2020, 1, 1, 22, 0, 0)


def _eeg(seconds: float, seed: int = 0, fs: float = FS) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * fs)) / fs
    return 30 * np.sin(2 * np.pi * 10 * t) + rng.normal(0, 20, t.size)


@pytest.fixture()
def good_edf(tmp_path: Path) -> Path:
    """Two minutes of two EEG channels and chin EMG, an EDF+ written by edfio."""
    return write_edf(tmp_path / "good.edf", {"EEG C4-M1": (_eeg(120), FS), "EEG C3-M2": (_eeg(120, 1), FS),
                                             "EOG E1-M2": (_eeg(120, 2), FS)}, start=START)


# --- readers ----------------------------------------------------------------------------------
def test_bdf_24_bit_reads_prepares_and_scores(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    x = _eeg(90) * 10
    path = write_edf(tmp_path / "night.bdf", {"EEG C4-M1": (x, FS), "EOG E1-M2": (_eeg(90, 3), FS)}, bdf=True)
    recording = read_recording(path)
    assert recording.labels == ["EEG C4-M1", "EOG E1-M2"] and recording.duration_s == 90
    np.testing.assert_allclose(recording.signal("EEG C4-M1").data, x, atol=np.ptp(x) / 2**23 * 2)
    assert main(["info", str(path)]) == 0
    assert "C4-M1 (eeg)" in capsys.readouterr().out
    assert main(["prepare", str(path), "--out", str(tmp_path / "store"), "--quiet"]) == 0
    assert EpochStore(tmp_path / "store").summary()["epochs"] == 3
    spec = ModelSpec("sleep_classifier", get_preset("tiny"), ("C4-M1", "E1-M2"), 5, "sequence")
    meta = CheckpointMeta(phase="finetune", spec=spec, task="stage", preprocessing=PreprocessingConfig())
    model = save_checkpoint(tmp_path / "stage.safetensors", build_model(spec), meta)
    assert main(["score", str(path), "--model", str(model), "--out", str(tmp_path / "scored"), "--device", "cpu"]) == 0
    assert len((tmp_path / "scored" / "epochs.csv").read_text().splitlines()) == 1 + 3


@pytest.mark.parametrize(("field", "value", "message"), [
    ("record_duration", "nan", r"duration of a data record is 'nan'; it must be a positive number"),
    ("record_duration", "0", r"duration of a data record is '0'; it must be a positive number"),
    ("record_duration", "-1", r"duration of a data record is '-1'"),
    ("record_duration", "abc", r"header field duration of a data record is 'abc', not a number"),
    ("n_signals", "x", r"header field number of signals is 'x', not a number"),
    ("n_signals", "900", r"header says 900 signals, which do not fit a file"),
    ("version", "1", r"not a readable EDF/BDF file: its version field is b'1       '"),
    ("record_duration", "0.0001", r"signal 1 \('EEG C4-M1'\) would be sampled at .* Hz .*; above 100000 Hz"),
    ("record_duration", "5100", r"120 records of 5100 s is 7\.1 days, more than the 7 days any night can last"),
])
def test_header_faults_that_make_a_file_unreadable_are_refused_by_name(
        good_edf: Path, field: str, value: str, message: str) -> None:
    set_field(good_edf, field, value)
    with pytest.raises(PSGReadError, match=message) as info:
        read_recording(good_edf)
    assert str(good_edf) in str(info.value)


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("samples_per_record", "0", "it has 0 samples per record"),
    ("physical_min", "3276.7", r"its physical minimum equals its maximum \(3276\.7\): the signal cannot be calibrated"),
    ("digital_min", "40000", r"its digital minimum \(40000\) is not below its maximum \(32767\)"),
    ("digital_min", "32767", r"its digital minimum \(32767\) is not below its maximum \(32767\)"),
    ("physical_max", "abc", r"physical max of signal 1 \('EEG C4-M1'\) is 'abc', not a number"),
])
def test_a_broken_channel_is_left_out_with_its_reason(good_edf: Path, field: str, value: str, reason: str,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    if field == "samples_per_record":
        empty_signal(good_edf, 0)
    else:
        set_field(good_edf, field, value, signal=0)
    if field == "physical_min":  # edfio writes a symmetric range: make min equal max
        set_field(good_edf, "physical_max", "3276.7", signal=0)
    night = prepare_recording(good_edf)
    assert "C4-M1" not in night.channels and {"C3-M2", "E1-M2"} <= set(night.channels)
    assert re.search(reason, night.report.channels_skipped["C4-M1"])
    assert main(["info", str(good_edf)]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if "EEG C4-M1" in line)
    assert "not used" in line


def test_an_unparseable_start_date_is_said_not_called_anonymised(good_edf: Path) -> None:
    set_field(good_edf, "startdate", "99.99.99")
    set_field(good_edf, "recording", "X X X X")
    recording = read_recording(good_edf)
    assert recording.start is None
    assert any("start date '99.99.99' and time '22.00.00' cannot be parsed" in n and "cannot be compared" in n
               for n in recording.notes)


def test_record_count_and_truncation_are_repaired_and_said_or_refused(good_edf: Path) -> None:
    set_field(good_edf, "n_records", "500")
    assert any("header says 500 data records but the file holds 120" in n for n in read_recording(good_edf).notes)
    with pytest.raises(PSGReadError, match="header and data disagree"):
        read_recording(good_edf, strict=True)
    raw = good_edf.read_bytes()
    good_edf.write_bytes(raw[:-150])
    recording = read_recording(good_edf)
    assert any("incomplete last data record" in n for n in recording.notes)
    assert recording.duration_s == 119


def test_duplicate_labels_are_both_kept_and_said(tmp_path: Path) -> None:
    path = write_edf(tmp_path / "dup.edf", {"EEG": (_eeg(60), FS), "EMG": (_eeg(60, 1), FS)})
    set_field(path, "label", "EEG", signal=1)
    recording = read_recording(path)
    assert recording.labels == ["EEG", "EEG#2"]
    assert any("a second channel labelled 'EEG' is read as 'EEG#2'" in n for n in recording.notes)
    assert not np.allclose(recording.signal("EEG").data, recording.signal("EEG#2").data)


def test_clipped_channels_are_flagged(tmp_path: Path) -> None:
    x = np.clip(_eeg(120) * 20, -500, 500)  # a railing amplifier
    path = write_edf(tmp_path / "rail.edf", {"EEG C4-M1": (x, FS)})
    night = prepare_recording(path)
    assert "clipped" in night.report.channels_used["C4-M1"]["clipping_warning"]


def test_spo2_as_a_fraction_is_converted_and_no_saturation_is_left_out(tmp_path: Path) -> None:
    spo2 = 96 + np.sin(np.arange(120) / 10)  # two minutes at 1 Hz, 95–97 %

    def night(saturation: np.ndarray) -> Recording:
        return Recording(tmp_path / "night.edf", [Signal.from_array("EEG C4-M1", _eeg(120), FS, "uV"),
                                                  Signal.from_array("SaO2", saturation, 1.0, "%")], START, [])

    prepared = prepare_recording(night(spo2 / 100))  # an export that stores saturation as 0–1
    assert prepared.report.channels_used["SpO2"]["unit_note"] == ("channel 'SaO2' holds SpO2 as a fraction "
                                                                   "(median 0.96): read as % (× 100)")
    np.testing.assert_allclose(prepared.signals[:, 1].mean(), (spo2.mean() - 90) / 10, atol=0.05)  # as % is
    skipped = prepare_recording(night(spo2 * 10)).report.channels_skipped  # a unit of 0.1 %
    assert skipped["SpO2"].startswith("SpO2 channel 'SaO2' has a median of 960") and "check its unit" in skipped["SpO2"]
    # scoring reads SpO2 for its measures even when no model takes it: the same rules, said once
    table = load_channel_table(None)
    scoring = prepare_input(night(spo2 / 100), None, config=PreprocessingConfig(), channel_table=table,
                            channels=["C4-M1"])
    assert scoring.spo2 is not None and np.allclose(scoring.spo2, spo2, atol=0.01)
    assert scoring.night.report.notes.count("channel 'SaO2' holds SpO2 as a fraction (median 0.96): read as % (× 100)") == 1
    refused = prepare_input(night(spo2 * 10), None, config=PreprocessingConfig(), channel_table=table, channels=["C4-M1"])
    assert refused.spo2 is None and "not a saturation in %" in refused.night.report.channels_skipped["SpO2"]


def test_edf_plus_d_gaps_do_not_shift_the_labels(tmp_path: Path) -> None:
    # 60 records of 1 s, then a 100-s gap, then 60 more: epoch 0-1 before, epochs 5-6 after
    onsets = [float(k) for k in range(60)] + [160.0 + k for k in range(60)]
    x = _eeg(120)
    stages = [(0.0, 30.0, "Sleep stage W"), (30.0, 30.0, "Sleep stage N1"), (60.0, 30.0, "Sleep stage N2"),
              (90.0, 30.0, "Sleep stage N2"), (120.0, 30.0, "Sleep stage N2"), (150.0, 30.0, "Sleep stage N3"),
              (180.0, 30.0, "Sleep stage R")]
    path = write_edf_plus_d(tmp_path / "gap.edf", {"EEG C4-M1": (x, FS)}, onsets, annotations=stages)
    recording = read_recording(path)
    assert recording.gaps == [(60.0, 100.0)] and recording.duration_s == 220
    data = recording.signal("EEG C4-M1").data
    assert np.isnan(data[6000:16000]).all() and np.allclose(data[16000:16100], x[6000:6100], atol=0.06)
    assert any("1 gap(s) without data (100 s" in n for n in recording.notes)
    night = prepare_recording(recording, read_scoring(path))
    assert night.gap_epochs == [2, 3, 4, 5]
    np.testing.assert_array_equal(night.labels[:, 0], [0, 1, -1, -1, -1, -1, 4])  # R stays at 180 s


def test_tal_faults_are_said_with_the_file(tmp_path: Path) -> None:
    path = write_edf_plus_d(tmp_path / "tal.edf", {"EEG C4-M1": (_eeg(60), FS)}, [float(k) for k in range(60)],
                            annotations=[(0.0, 30.0, "Sleep stage W")])
    raw = bytearray(path.read_bytes())
    at = raw.index(b"Sleep stage W")
    raw[at:at + 5] = b"\xff\xfe\x00ab"  # invalid UTF-8, and a TAL cut short
    path.write_bytes(bytes(raw))
    notes = read_recording(path).notes
    assert any("not UTF-8" in n for n in notes)
    raw = bytearray(path.read_bytes())
    second = raw.index(b"+1\x14\x14")
    raw[second:second + 5] = b"\x00\x00\x00\x00\x00"  # record 2 loses its time-keeping entry
    path.write_bytes(bytes(raw))
    with pytest.raises(PSGReadError, match=r"tal\.edf: EDF\+D record 2 has no time-keeping annotation"):
        read_recording(path)



def test_lights_that_cannot_be_believed_are_said_or_refused(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    from synthsleepnet.stats import place_lights

    path = tmp_path / "night.tsv"
    path.write_text("onset\tduration\tdescription\n0\t0\tLights on\n0\t30\tW\n30\t30\tN2\n60\t0\tLights off\n")
    scoring = read_scoring(path)
    assert (scoring.lights_off_s, scoring.lights_on_s) == (None, None)  # the whole night is time in bed
    assert "lights on at 0 s is not after lights off at 60 s; neither is used" in scoring.notes
    with pytest.raises(ValueError, match=r"night\.edf: lights off at 12:00:00 is not within the night "
                                         r"\(22:00:00 to 06:00:00\)"):
        place_lights((dt.time(12, 0), None), dt.datetime(2024, 1, 1, 22), 8 * 3600, source="night.edf")
    # a table states no start time: its lights cannot be given as clock times, with the file named
    assert main(["stats", str(path), "--lights-off", "23:00"]) == 2
    assert f"{path}: its start time is unknown" in capsys.readouterr().err
    assert place_lights((None, None), None, 90.0, marked=(30.0, None)) == (30.0, None)  # nothing to place


def test_scorings_are_paired_by_exact_names_never_glob_patterns(tmp_path: Path) -> None:
    for name in ("n[12].edf", "n1.edf", "n1-nsrr.xml", "night*.edf", "nightA-nsrr.xml"):
        (tmp_path / name).write_bytes(b"")
    assert find_scoring(tmp_path / "n[12].edf") is None
    assert find_scoring(tmp_path / "night*.edf") is None
    assert find_scoring(tmp_path / "n1.edf") == tmp_path / "n1-nsrr.xml"
    (tmp_path / "n[12]-nsrr.xml").write_bytes(b"")
    assert find_scoring(tmp_path / "n[12].edf") == tmp_path / "n[12]-nsrr.xml"
    assert {r.recording.name: r.scoring for r in find_recordings(tmp_path)}["night*.edf"] is None


def test_sleep_edf_hypnograms_still_pair_by_their_letter(tmp_path: Path) -> None:
    for name in ("SC4001E0-PSG.edf", "SC4001EC-Hypnogram.edf", "SC4002E0-PSG.edf", "SC4002EJ-Hypnogram.edf"):
        (tmp_path / name).write_bytes(b"")
    assert find_scoring(tmp_path / "SC4001E0-PSG.edf") == tmp_path / "SC4001EC-Hypnogram.edf"
    assert find_scoring(tmp_path / "SC4002E0-PSG.edf") == tmp_path / "SC4002EJ-Hypnogram.edf"


def test_a_malformed_channel_file_is_named(good_edf: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    bad = tmp_path / "aliases.yaml"
    bad.write_text("aliases:\n  C4-M1: [unclosed\n", encoding="utf-8")
    assert main(["info", str(good_edf), "--channel-file", str(bad)]) == 2
    assert "aliases.yaml: not valid YAML" in caplog.text


def test_info_reads_headers_only(good_edf: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from synthsleepnet.io.edf import EdfFile

    def no_samples(*_: object) -> None:
        raise AssertionError("info read samples")

    monkeypatch.setattr(EdfFile, "read", no_samples)
    assert main(["info", str(good_edf), "--json"]) == 0


# --- scorings ---------------------------------------------------------------------------------
def _xml(path: Path, events: list[tuple[str, str, str, str]], clock: str = "00.00.00 22.00.00") -> Path:
    rows = "".join(f"<ScoredEvent><EventType>{t}</EventType><EventConcept>{c}</EventConcept><Start>{s}</Start>"
                   f"<Duration>{d}</Duration></ScoredEvent>" for t, c, s, d in events)
    start = (f"<ScoredEvent><EventType></EventType><EventConcept>Recording Start Time</EventConcept><Start>0</Start>"
             f"<Duration>120</Duration><ClockTime>{clock}</ClockTime></ScoredEvent>")
    path.write_text(f"<PSGAnnotation><ScoredEvents>{start}{rows}</ScoredEvents></PSGAnnotation>", encoding="utf-8")
    return path


STAGE = "Stages|Stages"
APNEA = "Respiratory|Respiratory"


@pytest.mark.parametrize("onset", ["1e10", "1e13", "inf", "nan", "-50"])
def test_absurd_event_times_are_dropped_with_a_note_and_bounded(tmp_path: Path, onset: str) -> None:
    xml = _xml(tmp_path / "s.xml", [(STAGE, "Wake|0", "0", "60"), (STAGE, "Stage 2 sleep|2", onset, "30"),
                                     (APNEA, "Obstructive apnea|Obstructive Apnea", onset, "20")])
    scoring = read_scoring(xml)
    assert scoring.n_epochs == 2 and len(scoring.events) == 0  # not 3e8 epochs
    assert sum("dropped" in n for n in scoring.notes) == 2
    csv = tmp_path / "s.csv"
    csv.write_text(f"onset,duration,description\n0,60,W\n{onset},30,N2\n", encoding="utf-8")
    assert read_scoring(csv).n_epochs == 2
    assert sleep_statistics(read_scoring(csv).stages)["TIB_min"] == 1.0


def test_a_duration_beyond_a_week_is_clipped(tmp_path: Path) -> None:
    xml = _xml(tmp_path / "s.xml", [(STAGE, "Wake|0", "0", "1e12")])
    scoring = read_scoring(xml)
    assert scoring.n_epochs == 7 * 24 * 120 and any("clipped at 7 days" in n for n in scoring.notes)


def test_overlapping_and_negative_stage_annotations_are_said(tmp_path: Path) -> None:
    xml = _xml(tmp_path / "s.xml", [(STAGE, "Wake|0", "0", "60"), (STAGE, "Stage 2 sleep|2", "30", "60"),
                                     (STAGE, "Stage 3 sleep|3", "90", "-30")])
    scoring = read_scoring(xml)
    assert scoring.stages.tolist() == [0, 2, 2]
    assert any("1 stage annotation(s) overlap the one before (the first at 30 s)" in n for n in scoring.notes)
    assert any("negative duration; dropped" in n for n in scoring.notes)


def test_a_scoring_without_stages_has_no_statistics(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    xml = _xml(tmp_path / "s.xml", [(APNEA, "Obstructive apnea|Obstructive Apnea", "10", "20")])
    assert main(["stats", str(xml)]) == 2
    assert "holds no sleep stages" in caplog.text


@pytest.mark.parametrize(("text", "message"), [
    ("duration,description\n30,W\n", r"needs an 'onset' column .*its header has \['duration', 'description'\]"),
    ("onset,duration,stage\n0,30,W\n30,30,Z9\n", r"s\.csv, line 3: unknown stage label 'Z9'"),
])
def test_csv_faults_are_explained(tmp_path: Path, text: str, message: str) -> None:
    csv = tmp_path / "s.csv"
    csv.write_text(text, encoding="utf-8")
    with pytest.raises(AnnotationError, match=message):
        read_scoring(csv)


def test_csv_assumptions_are_said(tmp_path: Path) -> None:
    csv = tmp_path / "s.csv"
    csv.write_text("onset,description\n0,W\n30,N1\nnan,N2\n60,Body position supine\n", encoding="utf-8")
    scoring = read_scoring(csv)
    assert scoring.stages.tolist() == [0, 1]
    notes = " ".join(scoring.notes)
    assert "no duration column" in notes and "1 row(s) without a numeric onset (the first on line 4" in notes
    assert "neither stages nor scored events (e.g. ['Body position supine'])" in notes


def test_another_nights_nsrr_xml_is_refused(good_edf: Path, tmp_path: Path) -> None:
    events = [(STAGE, "Wake|0", "0", "120")]
    prepare_recording(good_edf, _xml(tmp_path / "ok.xml", events, clock="00.00.00 22.00.00"))
    with pytest.raises(AnnotationError, match=r"starts at clock time 11:00:00 but .*good\.edf starts at 22:00:00"):
        prepare_recording(good_edf, _xml(tmp_path / "other.xml", events, clock="00.00.00 11.00.00"))


# --- faults while preparing -------------------------------------------------------------------
def _mixed_folder(tmp_path: Path, good: Path) -> Path:
    """A folder with a good night and one recording per kind of bad input that used to escape
    the per-night guard (ZeroDivisionError, garbage, an infinite event onset)."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    for suffix in (".edf", "-nsrr.xml"):
        (folder / f"good{suffix}").symlink_to(good.with_name(good.stem + suffix))
    empty_signal(write_edf(folder / "zero_spr.edf", {"EEG C4-M1": (_eeg(60), FS)}), 0)
    (folder / "junk.edf").write_bytes(b"\x00" * 1000)
    write_edf(folder / "inf_event.edf", {"EEG C4-M1": (_eeg(60), FS)}, start=START)
    _xml(folder / "inf_event-nsrr.xml", [(STAGE, "Wake|0", "inf", "30")])
    return folder


def test_one_bad_night_never_stops_the_others(tmp_path: Path, sim_dir: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    folder = _mixed_folder(tmp_path, sim_dir / "sim-0011.edf")
    args = ["prepare", str(folder), "--out", str(tmp_path / "st"), "--quiet", "--workers", "1"]
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "2 prepared" in out and "FAILED zero_spr" in out and "FAILED junk" in out
    assert "zero_spr.edf" in out and "junk.edf: not a readable EDF/BDF file" in out
    assert "FAILED inf_event" not in out  # its infinite event is dropped with a note; the night is kept
    assert set(EpochStore(tmp_path / "st").night_ids) == {"good", "inf_event"}
    assert main([*args, "--keep-going"]) == 0


def test_a_full_disk_names_the_night_and_leaves_nothing_half_written(tmp_path: Path, sim_dir: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import synthsleepnet.store.night_files as night_files

    real_save = night_files.np.save

    def save(path: Path, array: np.ndarray) -> None:
        if "sim-0012" in str(path):
            raise OSError(28, "No space left on device")
        real_save(path, array)

    monkeypatch.setattr(night_files.np, "save", save)
    summary = prepare_store([sim_dir / "sim-0011.edf", sim_dir / "sim-0012.edf"], tmp_path / "st", progress=False)
    assert summary.prepared == ["sim-0011"]
    assert "cannot write night sim-0012" in summary.failed["sim-0012"] and "No space left" in summary.failed["sim-0012"]
    assert not [p for p in (tmp_path / "st" / "nights").iterdir() if p.name.startswith(".")]


def test_two_prepares_on_one_store_do_not_race(tmp_path: Path, sim_dir: Path) -> None:
    store = tmp_path / "st"
    with store_lock(store):
        with pytest.raises(StoreError, match=rf"is being written by another prepare \(pid {os.getpid()}\)"):
            prepare_store([sim_dir / "sim-0011.edf"], store, progress=False)
    assert prepare_store([sim_dir / "sim-0011.edf"], store, progress=False).ok


@pytest.mark.parametrize("command", ["prepare", "score"])
def test_killing_a_command_leaves_no_workers_behind(tmp_path: Path, sim_dir: Path, command: str) -> None:
    for i in range(4):
        for suffix in (".edf", "-nsrr.xml"):
            (tmp_path / "rec").mkdir(exist_ok=True)
            (tmp_path / "rec" / f"n{i}{suffix}").symlink_to(sim_dir / f"sim-001{1 + i % 3}{suffix}")
    model: list[str] = []
    if command == "score":
        spec = ModelSpec("sleep_classifier", get_preset("tiny"), ("C4-M1", "E1-M2"), 5, "sequence")
        meta = CheckpointMeta(phase="finetune", spec=spec, task="stage", preprocessing=PreprocessingConfig())
        model = ["--model", str(save_checkpoint(tmp_path / "stage.safetensors", build_model(spec), meta))]
    proc = subprocess.Popen([sys.executable, "-m", "synthsleepnet", command, str(tmp_path / "rec"), *model, "--out",
                             str(tmp_path / "out"), "--workers", "2", "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    children: set[int] = set()
    deadline = time.time() + 60
    while time.time() < deadline and len(children) < 2:
        out = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout
        children = {int(p) for p in out.split()}
        time.sleep(0.05)
    assert children, "no worker processes started"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 20
    while time.time() < deadline and any(Path(f"/proc/{pid}").exists() and
                                         "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]
                                         for pid in children):
        time.sleep(0.2)
    alive = [pid for pid in children if Path(f"/proc/{pid}").exists()
             and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"]
    assert not alive, f"workers {alive} outlived their killed parent"


# --- outputs ----------------------------------------------------------------------------------
def test_score_checks_its_outputs_before_working(tmp_path: Path, sim_dir: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    target = tmp_path / "a_file"
    target.write_text("mine")
    args = ["score", str(sim_dir / "sim-0011.edf"), "--model", str(tmp_path / "missing.safetensors")]
    assert main([*args, "--out", str(target)]) == 2
    assert "is a file; give a folder" in caplog.text
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "report.html").write_text("a report of my own")
    assert main([*args, "--out", str(folder)]) == 2
    assert "already holds ['report.html']" in caplog.text and (folder / "report.html").read_text() == "a report of my own"


def test_the_fault_matrix_document_lists_every_case() -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "bad-input.md").read_text(encoding="utf-8")
    for case in ("BDF", "EDF+D", "glob", "1e10", "samples per record", "physical minimum", "digital minimum",
                 "start date", "duplicate", "clipped", "overlapping", "negative", "NaN", "onset column",
                 "another night", "kill -9", "two `prepare`", "full disk", "report.html", "YAML", "SpO2"):
        assert case in doc, case
