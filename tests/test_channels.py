"""Channel aliases, normalisation, derivations and user alias files."""

from __future__ import annotations

from pathlib import Path

import pytest

from synthsleepnet import ChannelNotFoundError
from synthsleepnet.io.channels import load_channel_table, map_channels, normalize_label


def _names(labels: list[str], **kw: object) -> dict[str, tuple[str, ...]]:
    return {c.name: c.sources for c in map_channels(labels, **kw).channels}  # type: ignore[arg-type]


@pytest.mark.parametrize(("label", "expected"), [
    ("EEG C4-A1", "c4-m1"), ("C4:M1", "c4-m1"), ("EEG(sec)", "eeg(sec)"), ("EEG 2", "eeg2"),
    ("EMG chin", "chin"), ("EOG L", "eogl"), ("  EEG   Fpz-Cz ", "fpz-cz"), ("SaO2", "sao2"),
])
def test_normalize_label(label: str, expected: str) -> None:
    assert normalize_label(label) == expected


def test_shhs_labels() -> None:
    got = _names(["EEG", "EEG(sec)", "EOG(L)", "EOG(R)", "EMG", "ECG", "NEW AIR", "THOR RES",
                  "ABDO RES", "SaO2", "POSITION"])
    assert got == {"C4-M1": ("EEG",), "C3-M2": ("EEG(sec)",), "E1-M2": ("EOG(L)",),
                   "E2-M2": ("EOG(R)",), "Chin": ("EMG",), "ECG": ("ECG",), "Airflow": ("NEW AIR",),
                   "Thor": ("THOR RES",), "Abdo": ("ABDO RES",), "SpO2": ("SaO2",)}


def test_sleep_edf_hmc_and_mesa_labels() -> None:
    assert _names(["EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal", "EMG submental"]) == {
        "Fpz-Cz": ("EEG Fpz-Cz",), "Pz-Oz": ("EEG Pz-Oz",), "EOG-H": ("EOG horizontal",),
        "Chin": ("EMG submental",)}
    hmc = _names(["EEG F4-M1", "EEG C4-M1", "EEG O2-M1", "EEG C3-M2", "EOG E1-M2", "EOG E2-M2", "EMG chin", "ECG"])
    assert set(hmc) == {"F4-M1", "C4-M1", "O2-M1", "C3-M2", "E1-M2", "E2-M2", "Chin", "ECG"}
    mesa = _names(["EEG1", "EEG2", "EEG3", "EOG-L", "EOG-R", "EMG", "EKG", "Flow", "SpO2"])
    assert mesa["C4-M1"] == ("EEG3",) and mesa["Fz-Cz"] == ("EEG1",) and mesa["ECG"] == ("EKG",)


def test_case_and_spacing_do_not_matter() -> None:
    assert _names(["eeg c4-m1", "EMG_CHIN"]) == {"C4-M1": ("eeg c4-m1",), "Chin": ("EMG_CHIN",)}


def test_derivation_from_monopolar_leads() -> None:
    mapping = map_channels(["C4", "C3", "M1", "M2", "LOC", "Chin1", "Chin2"])
    got = {c.name: c.sources for c in mapping.channels}
    assert got["C4-M1"] == ("C4", "M1") and got["C3-M2"] == ("C3", "M2")
    assert got["Chin"] == ("Chin1", "Chin2")
    assert mapping.unmapped == ()


def test_alias_wins_over_derivation() -> None:
    got = _names(["C4-M1", "C4", "M1"])
    assert got["C4-M1"] == ("C4-M1",)


def test_required_missing_names_file_and_available_labels() -> None:
    with pytest.raises(ChannelNotFoundError, match=r"night\.edf: required modality 'ecg'.*'EEG'"):
        map_channels(["EEG", "EMG"], required=["ecg"], source="night.edf")
    with pytest.raises(ChannelNotFoundError, match="required channel 'C3-M2'"):
        map_channels(["EEG"], required=["C3-M2"])


def test_missing_modalities_are_reported_not_fatal() -> None:
    mapping = map_channels(["EEG", "Temp"])
    assert mapping.modalities == ("eeg",)
    assert mapping.unmapped == ("Temp",)


@pytest.mark.parametrize("suffix", [".toml", ".yaml"])
def test_user_file_adds_and_overrides(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"aliases{suffix}"
    if suffix == ".toml":
        path.write_text('[channels]\n"Fp1-M2" = "eeg"\n[aliases]\n"Fp1-M2" = ["FP1A2x"]\n'
                        '"C4-M1" = ["MyCentral"]\n')
    else:
        path.write_text("channels:\n  Fp1-M2: eeg\naliases:\n  Fp1-M2: [FP1A2x]\n  C4-M1: [MyCentral]\n")
    table = load_channel_table(path)
    got = _names(["MyCentral", "EEG", "FP1A2x"], table=table)
    assert got["C4-M1"] == ("MyCentral",)  # the user's alias is tried first
    assert got["Fp1-M2"] == ("FP1A2x",)


def test_user_file_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[aliases]\n"Nonsense" = ["x"]\n')
    with pytest.raises(ValueError, match=r"bad\.toml: channel\(s\) \['Nonsense'\] are not canonical"):
        load_channel_table(bad)
    bad.write_text('[channels]\n"X" = "eye"\n')
    with pytest.raises(ValueError, match="modality must be one of"):
        load_channel_table(bad)
    bad.write_text('[derivations]\n"C4-M1" = "C4 minus M1"\n')
    with pytest.raises(ValueError, match="must read 'PLUS - MINUS'"):
        load_channel_table(bad)
