"""Channel mapping on real montages: the label sets of the cohorts and clinics our users record,
each written into a small EDF header; stand-ins by region; a loud warning on a poor subset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from edf_faults import write_edf

from synthsleepnet import ChannelNotFoundError, PreprocessingConfig, read_recording
from synthsleepnet._config import get_preset
from synthsleepnet.cli import main
from synthsleepnet.io import load_channel_table, map_channels
from synthsleepnet.io.montage import parse_label, stand_in
from synthsleepnet.models import CheckpointMeta, ModelSpec, build_model, save_checkpoint
from synthsleepnet.scoring import score_recording

#: (label, rate in Hz, unit) per cohort, as their EDF files write them (NSRR, PhysioNet documentation).
COHORTS: dict[str, list[tuple[str, float, str]]] = {
    "shhs1": [("SaO2", 1, "%"), ("H.R.", 1, "bpm"), ("EEG(sec)", 125, "uV"), ("ECG", 125, "mV"), ("EMG", 125, "uV"),
              ("EOG(L)", 50, "uV"), ("EOG(R)", 50, "uV"), ("EEG", 125, "uV"), ("THOR RES", 10, ""),
              ("ABDO RES", 10, ""), ("POSITION", 1, ""), ("LIGHT", 1, ""), ("NEW AIR", 10, ""), ("OX stat", 1, "")],
    "shhs2": [("SaO2", 1, "%"), ("H.R.", 1, "bpm"), ("EEG(sec)", 125, "uV"), ("ECG", 250, "mV"), ("EMG", 125, "uV"),
              ("EOG(L)", 50, "uV"), ("EOG(R)", 50, "uV"), ("EEG", 125, "uV"), ("AUX", 10, ""), ("THOR RES", 10, ""),
              ("ABDO RES", 10, ""), ("POSITION", 1, ""), ("LIGHT", 1, ""), ("AIRFLOW", 10, ""), ("OX stat", 1, "")],
    "mesa": [("EKG", 256, "mV"), ("EOG-L", 256, "uV"), ("EOG-R", 256, "uV"), ("EMG", 256, "uV"), ("EEG1", 256, "uV"),
             ("EEG2", 256, "uV"), ("EEG3", 256, "uV"), ("Pres", 32, "cmH2O"), ("Flow", 32, ""), ("Snore", 32, ""),
             ("Thor", 32, ""), ("Abdo", 32, ""), ("Leg", 256, "uV"), ("Therm", 32, ""), ("Pos", 32, ""),
             ("EKG_Off", 1, ""), ("EEG1_Off", 1, ""), ("Pleth", 256, ""), ("OxStatus", 1, ""), ("SpO2", 1, "%"),
             ("HR", 1, "bpm"), ("DHR", 256, "")],
    "mros": [("C3", 256, "uV"), ("C4", 256, "uV"), ("A1", 256, "uV"), ("A2", 256, "uV"), ("ROC", 256, "uV"),
             ("LOC", 256, "uV"), ("ECG L", 256, "mV"), ("ECG R", 256, "mV"), ("L Chin", 256, "uV"),
             ("R Chin", 256, "uV"), ("Leg L", 256, "uV"), ("Leg R", 256, "uV"), ("Airflow", 32, ""),
             ("Cannula", 32, ""), ("Thoracic", 32, ""), ("Abdominal", 32, ""), ("SaO2", 1, "%"), ("Position", 1, "")],
    "cfs": [("C3", 256, "uV"), ("C4", 256, "uV"), ("M1", 256, "uV"), ("M2", 256, "uV"), ("LOC", 256, "uV"),
            ("ROC", 256, "uV"), ("ECG1", 256, "mV"), ("ECG2", 256, "mV"), ("EMG1", 256, "uV"), ("EMG2", 256, "uV"),
            ("EMG3", 256, "uV"), ("L Leg", 256, "uV"), ("R Leg", 256, "uV"), ("NASAL PRES", 32, ""),
            ("THOR EFFORT", 32, ""), ("ABDO EFFORT", 32, ""), ("SpO2", 1, "%"), ("POSITION", 1, ""), ("Light", 1, ""),
            ("SNORE", 32, ""), ("PULSE", 1, "bpm"), ("Airflow", 32, ""), ("PlethWV", 32, "")],
    "chat": [("C3", 200, "uV"), ("C4", 200, "uV"), ("M1", 200, "uV"), ("M2", 200, "uV"), ("O1", 200, "uV"),
             ("O2", 200, "uV"), ("F3", 200, "uV"), ("F4", 200, "uV"), ("E1", 200, "uV"), ("E2", 200, "uV"),
             ("Chin1", 200, "uV"), ("Chin2", 200, "uV"), ("Chin3", 200, "uV"), ("ECG1", 200, "mV"),
             ("ECG2", 200, "mV"), ("Lleg1", 200, "uV"), ("Rleg1", 200, "uV"), ("Cannula Flow", 200, ""),
             ("Airflow", 200, ""), ("Chest", 200, ""), ("ABD", 200, ""), ("SpO2", 200, "%"), ("Position", 200, ""),
             ("Snore", 200, ""), ("Pleth", 200, "")],
    "sleep-edf": [("EEG Fpz-Cz", 100, "uV"), ("EEG Pz-Oz", 100, "uV"), ("EOG horizontal", 100, "uV"),
                  ("Resp oro-nasal", 1, ""), ("EMG submental", 1, "uV"), ("Temp rectal", 1, "DegC"),
                  ("Event marker", 1, "")],
    "hmc": [("EEG F4-M1", 256, "uV"), ("EEG C4-M1", 256, "uV"), ("EEG O2-M1", 256, "uV"), ("EEG C3-M2", 256, "uV"),
            ("EMG chin", 256, "uV"), ("EOG E1-M2", 256, "uV"), ("EOG E2-M2", 256, "uV"), ("ECG", 256, "mV")],
    "isruc": [("E1-M2", 200, "uV"), ("E2-M1", 200, "uV"), ("F3-M2", 200, "uV"), ("C3-M2", 200, "uV"),
              ("O1-M2", 200, "uV"), ("F4-M1", 200, "uV"), ("C4-M1", 200, "uV"), ("O2-M1", 200, "uV"),
              ("X1", 200, "uV"), ("X2", 200, "mV"), ("X3", 200, "uV"), ("X4", 200, "uV"), ("X5", 200, ""),
              ("X6", 200, ""), ("X7", 200, ""), ("X8", 200, ""), ("SaO2", 200, "%")],
    "mass": [("EEG Fp1-CLE", 256, "uV"), ("EEG F3-CLE", 256, "uV"), ("EEG C3-CLE", 256, "uV"),
             ("EEG C4-CLE", 256, "uV"), ("EEG O1-CLE", 256, "uV"), ("EEG Cz-CLE", 256, "uV"),
             ("EOG Left Horiz", 256, "uV"), ("EOG Right Horiz", 256, "uV"), ("EMG Chin1", 256, "uV"),
             ("EMG Chin2", 256, "uV"), ("ECG ECGI", 256, "mV"), ("Resp Nasal", 32, ""), ("Resp Belt Thor", 32, ""),
             ("Resp Belt Abdo", 32, "")],
    "cap": [("Fp2-F4", 512, "uV"), ("F4-C4", 512, "uV"), ("C4-P4", 512, "uV"), ("P4-O2", 512, "uV"),
            ("F8-T4", 512, "uV"), ("C4-A1", 512, "uV"), ("ROC-LOC", 512, "uV"), ("EMG1-EMG2", 512, "uV"),
            ("ECG1-ECG2", 512, "mV"), ("DX1-DX2", 512, "uV"), ("SX1-SX2", 512, "uV"), ("SAO2", 1, "%"),
            ("HR", 1, "bpm"), ("PLETH", 128, ""), ("STAT", 1, ""), ("MIC", 512, ""), ("TERMISTORE", 128, ""),
            ("TORACE", 128, ""), ("ADDOME", 128, "")],
    "physionet2018": [("F3-M2", 200, "uV"), ("F4-M1", 200, "uV"), ("C3-M2", 200, "uV"), ("C4-M1", 200, "uV"),
                      ("O1-M2", 200, "uV"), ("O2-M1", 200, "uV"), ("E1-M2", 200, "uV"), ("Chin1-Chin2", 200, "uV"),
                      ("ABD", 200, ""), ("CHEST", 200, ""), ("AIRFLOW", 200, ""), ("SaO2", 200, "%"),
                      ("ECG", 200, "mV")],
    "clinic": [("O1-A1", 50, "uV"), ("C3-A1", 50, "uV"), ("FP1-A1", 50, "uV"), ("EOG1-A1", 50, "uV"),
               ("EOG2-A1", 50, "uV"), ("EMG1", 50, "uV"), ("ECG", 50, "mV"), ("NAF1", 50, ""), ("VTH", 50, ""),
               ("VAB", 50, ""), ("PHONO", 50, ""), ("POS", 50, ""), ("SAO2", 50, "%"), ("PR", 50, "bpm"),
               ("PULSE", 50, "")],
}
FULL = {"C4-M1", "C3-M2", "E1-M2", "E2-M2", "Chin", "ECG", "Airflow", "Thor", "Abdo", "SpO2"}
EXPECTED: dict[str, set[str]] = {
    "shhs1": FULL, "shhs2": FULL,
    "mesa": {"Fz-Cz", "Cz-Oz", "C4-M1", "E1-M2", "E2-M2", "Chin", "ECG", "Airflow", "Thor", "Abdo", "SpO2"},
    "mros": FULL, "cfs": FULL,
    "chat": FULL | {"F4-M1", "F3-M2", "O2-M1", "O1-M2"},
    "sleep-edf": {"Fpz-Cz", "Pz-Oz", "EOG-H", "Airflow", "Chin"},
    "hmc": {"F4-M1", "C4-M1", "O2-M1", "C3-M2", "Chin", "E1-M2", "E2-M2", "ECG"},
    "isruc": {"E1-M2", "E2-M2", "F3-M2", "C3-M2", "O1-M2", "F4-M1", "C4-M1", "O2-M1", "Chin", "ECG", "Airflow",
              "Thor", "Abdo", "SpO2"},
    "mass": {"Fp1-M1M2", "F3-M1M2", "C3-M1M2", "C4-M1M2", "O1-M1M2", "Cz-M1M2", "E1", "E2", "Chin", "ECG",
             "Airflow", "Thor", "Abdo"},
    "cap": {"Fp2-F4", "F4-C4", "C4-P4", "P4-O2", "F8-T4", "C4-M1", "EOG-H", "Chin", "ECG", "Airflow", "Thor", "Abdo",
            "SpO2"},
    "physionet2018": {"F3-M2", "F4-M1", "C3-M2", "C4-M1", "O1-M2", "O2-M1", "E1-M2", "Chin", "Abdo", "Thor",
                      "Airflow", "SpO2", "ECG"},
    "clinic": {"O1-M1", "C3-M1", "Fp1-M1", "E1-M1", "E2-M1", "Chin", "ECG", "Airflow", "Thor", "Abdo", "SpO2"},
}
#: Labels that are recognised but are no model input (said, never silently dropped).
IGNORED = {"shhs1": {"H.R.", "POSITION", "LIGHT", "OX stat"}, "mesa": {"Snore", "Leg", "Pos", "EKG_Off", "Pleth"},
           "cap": {"DX1-DX2", "SX1-SX2", "HR", "PLETH", "STAT", "MIC"}, "clinic": {"PHONO", "POS", "PR", "PULSE"},
           "sleep-edf": {"Temp rectal", "Event marker"}}


def _write(path: Path, labels: list[tuple[str, float, str]], seconds: float = 60.0) -> Path:
    rng = np.random.default_rng(0)
    signals = {}
    for label, rate, _ in labels:
        x = rng.normal(0, 30, int(seconds * rate))
        signals[label] = (x if label not in ("SaO2", "SpO2", "SAO2") else 95 + x / 30, float(rate))
    return write_edf(path, signals)


@pytest.mark.parametrize("cohort", sorted(COHORTS))
def test_real_label_sets_map_to_their_channels(cohort: str, tmp_path: Path) -> None:
    path = _write(tmp_path / f"{cohort}.edf", COHORTS[cohort])
    mapping = map_channels(read_recording(path).labels)
    assert {c.name for c in mapping.channels} == EXPECTED[cohort]
    for label in IGNORED.get(cohort, ()):
        assert mapping.explanations[label].startswith("not used:"), label
    assert set(mapping.explanations) == {label for label, _, _ in COHORTS[cohort]}  # every label explained


def test_the_clinic_montage_maps_every_physiological_channel(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path / "clinic.edf", COHORTS["clinic"], seconds=120)
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    for label, canonical in (("O1-A1", "O1-M1"), ("C3-A1", "C3-M1"), ("FP1-A1", "Fp1-M1"), ("EOG1-A1", "E1-M1"),
                             ("EOG2-A1", "E2-M1"), ("ECG", "ECG"), ("NAF1", "Airflow"), ("VTH", "Thor"),
                             ("VAB", "Abdo"), ("SAO2", "SpO2")):
        line = next(line for line in out.splitlines() if line.strip().startswith(label + " "))
        assert f"{canonical} (" in line and "not used" not in line, line
    emg = next(line for line in out.splitlines() if line.strip().startswith("EMG1 "))
    assert "Chin (emg)" in emg and "not used: native rate 50 Hz" in emg  # mapped, but 50 Hz cannot carry 25-49 Hz
    for label in ("PHONO", "POS", "PR", "PULSE"):
        assert "not used:" in next(line for line in out.splitlines() if line.strip().startswith(label + " "))


@pytest.mark.parametrize(("label", "canonical"), [
    ("SpO2 %", "SpO2"), ("SpO2(%)", "SpO2"), ("SaO2 %", "SpO2"), ("Sp02", "SpO2"), ("Sat O2", "SpO2"),
    ("SpO2 B-B", "SpO2"),  # Nox: beat-to-beat saturation
    ("Nasal Press", "Airflow"), ("PFlow", "Airflow"), ("Oral Thermistor", "Airflow"), ("Flow Th", "Airflow"),
    ("Therm Flow", "Airflow"), ("Thermi", "Airflow"), ("Oro-Nasal Therm", "Airflow"), ("Nasal Cannula", "Airflow"),
    ("Flow Pressure", "Airflow"), ("Chest Belt", "Thor"), ("Effort Thorax", "Thor"), ("Effort Abdomen", "Abdo"),
    ("EMG Ment", "Chin"),  # read word by word
    ("Pleth", None), ("SpO2 Status", None), ("CPAP Flow", None), ("Pressure Patient", None), ("RIP Sum", None)])
def test_vendor_spellings_of_oximetry_and_airflow(label: str, canonical: str | None) -> None:
    assert parse_label(label).canonical == canonical


def test_explicit_aliases_win_and_ambiguous_labels_are_not_guessed(tmp_path: Path) -> None:
    table_file = tmp_path / "aliases.toml"
    table_file.write_text('[aliases]\n"Thor" = ["NAF1"]\n', encoding="utf-8")  # a clinic's own wiring
    mapping = map_channels(["NAF1", "EOG", "Resp", "C3-A1"], load_channel_table(table_file))
    assert {c.name: c.sources for c in mapping.channels} == {"Thor": ("NAF1",), "C3-M1": ("C3-A1",)}
    assert set(mapping.ambiguous) == {"EOG", "Resp"}
    assert "without a side" in mapping.explanations["EOG"]


def test_reference_derivations_are_named_not_left_to_the_user() -> None:
    for label in ("M1-M2", "EEG A1-A2"):
        parsed = parse_label(label)
        assert parsed.canonical is None and not parsed.ambiguous
        assert parsed.reason == "reference electrodes against each other (M1-M2): not a sleep EEG channel"
    assert parse_label("A1").reason == "a reference electrode (M1): used to derive channels, not a channel by itself"


def test_info_suggests_a_channel_file_for_what_it_cannot_map(tmp_path: Path) -> None:
    path = _write(tmp_path / "odd.edf", [("C3-A2", 100, "uV"), ("X9", 100, "uV"), ("EOG", 100, "uV")])
    suggestion = tmp_path / "channels.toml"
    assert main(["info", str(path), "--suggest", str(suggestion)]) == 0
    text = suggestion.read_text()
    assert '# "CANONICAL-CHANNEL" = ["X9"]' in text and '# "CANONICAL-CHANNEL" = ["EOG"]' in text
    assert '"C3-A2"' not in text
    completed = text.replace('# "CANONICAL-CHANNEL" = ["X9"]', '"Chin" = ["X9"]')
    suggestion.write_text(completed)
    mapping = map_channels(["C3-A2", "X9", "EOG"], load_channel_table(suggestion))
    assert {c.name for c in mapping.channels} == {"C3-M2", "Chin"}
    assert main(["info", str(path), "--suggest", str(suggestion)]) == 2  # no silent overwrite


def test_stand_ins_come_from_the_nearest_region() -> None:
    assert stand_in("C4-M1", ["O1-M1", "F3-M2", "C3-M1"]) == ("C3-M1", "the nearest central derivation")
    assert stand_in("C4-M1", ["C4-M1M2", "C3-M2"])[0] == "C4-M1M2"  # same electrode first
    assert stand_in("C4-M1", ["O2-M1", "F4-M1"])[0] == "F4-M1"  # frontal before occipital
    assert stand_in("C4-M1", ["Fpz-Cz", "Pz-Oz"])[0] == "Fpz-Cz"
    assert stand_in("E1-M2", ["E2-M2", "E1-M1"]) == ("E1-M1", "the same eye with another reference")
    assert stand_in("ECG", ["Chin"]) is None
    assert parse_label("T3-A2").canonical == "T3-M2" and parse_label("C4A1").canonical == "C4-M1"


def _stage_model(tmp_path: Path) -> Path:
    spec = ModelSpec("sleep_classifier", get_preset("tiny"), ("C4-M1", "E1-M2", "Chin", "ECG"), 5, "sequence")
    meta = CheckpointMeta(phase="finetune", spec=spec, task="stage", preprocessing=PreprocessingConfig())
    return save_checkpoint(tmp_path / "stage.safetensors", build_model(spec), meta)


def test_scoring_the_clinic_night_uses_its_eeg_and_eog(tmp_path: Path) -> None:
    path = _write(tmp_path / "clinic.edf", COHORTS["clinic"], seconds=120)
    result = score_recording(path, [_stage_model(tmp_path)], device="cpu")
    assert {"eeg", "eog"} <= set(result.modalities_used)
    assert {"C3-M1", "E1-M1"} <= set(result.channels_used)
    assert result.reliability["level"] == "reduced"
    assert "C3-M1 stood in for C4-M1 (the nearest central derivation)" in result.reliability["reasons"]
    assert not any(note.startswith("no scoring") for note in result.notes)  # scoring it is the point


def test_a_stage_model_without_eeg_is_loud(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path / "no_eeg.edf", [("EOG1-A1", 100, "uV"), ("ECG", 100, "mV")], seconds=120)
    model = _stage_model(tmp_path)
    out = tmp_path / "scored"
    assert main(["score", str(path), "--model", str(model), "--out", str(out), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "WARNING: reliability LOW: the stage model was trained with EEG but this night gives it none" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["reliability"]["level"] == "low"
    assert "Reliability: low." in (out / "report.html").read_text()
    with pytest.raises(ChannelNotFoundError, match=r"required \['eeg'\] cannot be used"):
        score_recording(path, [model], require=["eeg"], device="cpu")
    assert main(["score", str(path), "--model", str(model), "--out", str(tmp_path / "strict"), "--require", "eeg"]) == 2
    assert not (tmp_path / "strict" / "epochs.csv").exists()
