"""Reading recordings: real EDF quirks, units, and bad files that must fail clearly."""

from __future__ import annotations

from pathlib import Path

import edfio
import numpy as np
import pytest

from synthsleepnet import ChannelNotFoundError, PSGReadError, read_recording


def _write_edf(path: Path, signals: list[tuple[str, np.ndarray, float, str]]) -> Path:
    edf = edfio.Edf([edfio.EdfSignal(data, fs, label=label, physical_dimension=unit)
                     for label, data, fs, unit in signals])
    edf.write(path)
    return path


def test_sleep_edf_mixed_rates_and_30s_records(real_data: Path) -> None:
    rec = read_recording(real_data / "sleep-edf" / "short_psg.edf")
    rates = {s.label: s.sfreq for s in rec.signals}
    assert rates["EEG Fpz-Cz"] == 100 and rates["EMG submental"] == 1
    assert all(s.duration_s == 300 for s in rec.signals)  # each channel at its native rate
    assert rec.signal("EEG Fpz-Cz").data.size == 30000
    assert rec.start is not None and rec.start.year == 1989


def test_many_channel_edf(real_data: Path) -> None:
    rec = read_recording(real_data / "edf-quirks" / "mne_test.edf")
    assert len(rec.signals) == 139 and rec.duration_s == pytest.approx(6.0)


def test_loads_only_requested_channels(real_data: Path) -> None:
    rec = read_recording(real_data / "sleep-edf" / "short_psg.edf", channels=["EEG Pz-Oz"])
    assert rec.labels == ["EEG Pz-Oz"]
    with pytest.raises(ChannelNotFoundError, match=r"short_psg\.edf: channel\(s\) \['C4'\] not in the file"):
        read_recording(real_data / "sleep-edf" / "short_psg.edf", channels=["C4"])


@pytest.mark.parametrize(("unit", "factor"), [("mV", 1e3), ("V", 1e6), ("uV", 1.0), ("uv", 1.0)])
def test_voltages_are_normalised_to_microvolts(tmp_path: Path, unit: str, factor: float) -> None:
    data = np.sin(np.arange(2560) / 10) * 0.05
    path = _write_edf(tmp_path / "units.edf", [("EEG C4-M1", data, 256, unit)])
    sig = read_recording(path).signal("EEG C4-M1")
    assert sig.unit == "uV" and sig.original_unit == unit
    np.testing.assert_allclose(sig.data, data * factor, atol=abs(factor) * 0.05 * 1e-3)


def test_non_voltage_units_are_kept(tmp_path: Path) -> None:
    path = _write_edf(tmp_path / "spo2.edf", [("SpO2", np.full(10, 95.0) + np.arange(10) * 0.1, 1, "%")])
    sig = read_recording(path).signal("SpO2")
    assert sig.unit == "%" and sig.data[0] == pytest.approx(95.0, abs=0.01)


def test_missing_file() -> None:
    with pytest.raises(FileNotFoundError, match="recording not found: nowhere.edf"):
        read_recording("nowhere.edf")


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.edf").write_bytes(b"")
    with pytest.raises(PSGReadError, match=r"empty\.edf: the file is empty"):
        read_recording(tmp_path / "empty.edf")


def test_not_an_edf(tmp_path: Path) -> None:
    (tmp_path / "notes.edf").write_bytes(b"These are my notes, not an EDF file. " * 20)
    with pytest.raises(PSGReadError, match=r"notes\.edf: not a readable EDF/BDF file"):
        read_recording(tmp_path / "notes.edf")


def test_truncated_file_is_repaired_and_said_or_refused_when_strict(real_data: Path, tmp_path: Path) -> None:
    raw = (real_data / "sleep-edf" / "short_psg.edf").read_bytes()
    path = tmp_path / "truncated.edf"
    path.write_bytes(raw[:-5000])
    rec = read_recording(path)
    assert rec.duration_s == 270  # the incomplete last 30-s record is dropped, the rest kept
    assert any("truncated" in note for note in rec.notes)
    with pytest.raises(PSGReadError, match=r"truncated\.edf: header and data disagree"):
        read_recording(path, strict=True)


def test_header_lying_about_record_count(real_data: Path, tmp_path: Path) -> None:
    raw = bytearray((real_data / "sleep-edf" / "short_psg.edf").read_bytes())
    raw[236:244] = b"20      "  # the header claims 20 records; the file holds 10
    path = tmp_path / "lying.edf"
    path.write_bytes(bytes(raw))
    rec = read_recording(path)
    assert rec.duration_s == 300
    assert any("20 data records" in note for note in rec.notes)
    with pytest.raises(PSGReadError, match=r"lying\.edf"):
        read_recording(path, strict=True)


def test_header_lying_about_samples_per_record(real_data: Path, tmp_path: Path) -> None:
    raw = bytearray((real_data / "sleep-edf" / "short_psg.edf").read_bytes())
    n_signals = 7
    offset = 256 + n_signals * (16 + 80 + 8 + 8 + 8 + 8 + 8 + 80)  # samples-per-record field
    raw[offset:offset + 8] = b"3100    "  # first channel claims 3100 samples per record, not 3000
    path = tmp_path / "samples.edf"
    path.write_bytes(bytes(raw))
    with pytest.raises(PSGReadError, match=r"samples\.edf: header and data disagree"):
        read_recording(path, strict=True)
    assert read_recording(path).notes  # lenient reading says what it repaired


def test_other_formats_go_through_mne(tmp_path: Path) -> None:
    mne = pytest.importorskip("mne")
    info = mne.create_info(["C4-M1", "EMG"], 200.0, ["eeg", "emg"])
    raw = mne.io.RawArray(np.random.default_rng(0).standard_normal((2, 2000)) * 1e-5, info, verbose="error")
    path = tmp_path / "night_raw.fif"
    raw.save(path, verbose="error")
    rec = read_recording(path)
    assert rec.labels == ["C4-M1", "EMG"] and rec.signals[0].unit == "uV"
    assert np.std(rec.signals[0].data) == pytest.approx(10, rel=0.1)  # 1e-5 V = 10 µV
