"""Conditioning, epoching and labelling of one night."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import edfio
import numpy as np
import pandas as pd
import pytest

from synthsleepnet import (
    AnnotationError,
    ChannelNotFoundError,
    SignalQualityError,
    prepare_recording,
)
from synthsleepnet.io.annotations import Scoring
from synthsleepnet.io.recording import Recording, Signal
from synthsleepnet.preprocessing import (
    bandpass,
    fit_band,
    resample,
    robust_scale,
    spo2_percent,
)
from synthsleepnet.preprocessing.labels import NO_SCORING, align_scoring
from synthsleepnet.tasks import event_epoch_labels


def _edf(path: Path, signals: dict[str, tuple[np.ndarray, float]], start: dt.datetime | None = None) -> Path:
    edf = edfio.Edf([edfio.EdfSignal(x, fs, label=k, physical_dimension="uV") for k, (x, fs) in signals.items()],
                    starttime=(start or dt.datetime(2020, 1, 1, 22)).time(),
                    recording=edfio.Recording(startdate=(start or dt.datetime(2020, 1, 1, 22)).date()))
    edf.write(path)
    return path


def _noise(seconds: float, fs: float, seed: int = 0, scale: float = 20.0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(int(seconds * fs)) * scale


def test_resample_keeps_in_band_sine() -> None:
    t = np.arange(0, 60, 1 / 256)
    y = resample(np.sin(2 * np.pi * 10 * t), 256, 100)
    assert y.size == 6000
    ref = np.sin(2 * np.pi * 10 * np.arange(6000) / 100)
    np.testing.assert_allclose(y[500:-500], ref[500:-500], atol=0.02)


def test_resample_removes_aliases() -> None:
    t = np.arange(0, 60, 1 / 256)
    y = resample(np.sin(2 * np.pi * 70 * t), 256, 100)  # 70 Hz would alias to 30 Hz
    assert np.abs(y[500:-500]).max() < 0.05


def test_bandpass_is_zero_phase_and_attenuates() -> None:
    t = np.arange(0, 60, 0.01)
    slow, fast = np.sin(2 * np.pi * 5 * t), np.sin(2 * np.pi * 45 * t)
    y = bandpass(slow + fast, 100, (0.5, 40.0))
    np.testing.assert_allclose(y[1000:-1000], slow[1000:-1000], atol=0.05)


@pytest.mark.parametrize(("band", "kept", "removed"), [((1.0, None), 5, 0), ((None, 10.0), 5, 30)])
def test_a_band_open_on_one_side_filters_only_that_side(band: tuple[float | None, float | None], kept: float,
                                                        removed: float) -> None:
    """A config band with one edge (``[0.3, None]``: high-pass; ``[None, 10]``: low-pass)."""
    t = np.arange(0, 60, 0.01)
    signal = np.sin(2 * np.pi * kept * t)
    y = bandpass(signal + (np.cos(2 * np.pi * removed * t) if removed else 3.0), 100, band)
    np.testing.assert_allclose(y[1000:-1000], signal[1000:-1000], atol=0.05)


@pytest.mark.parametrize(("band", "native", "expected", "note"), [
    ((0.5, 40.0), 256, (0.5, 40.0), None),
    ((25.0, 49.0), 512, (25.0, 49.0), None),          # the paper's EMG band survives 100 Hz
    ((25.0, 49.0), 50, None, "too low"),                # EMG recorded at 50 Hz cannot carry 25–49 Hz
    ((0.5, 40.0), 64, (0.5, 25.6), "lowered"),          # 64 Hz: high edge at 0.8 × Nyquist
    ((0.5, 60.0), 512, (0.5, 49.5), "the target rate is 100 Hz"),  # not above what 100 Hz carries
    ((55.0, 70.0), 512, None, "target rate 100 Hz (Nyquist 50 Hz) is too low"),
    (None, 1, None, None),
])
def test_fit_band(band: tuple[float, float] | None, native: float, expected: object, note: str | None) -> None:
    got, why = fit_band(band, native, 100)
    assert got == expected
    assert (why is None) if note is None else (note in str(why))


def test_robust_scale() -> None:
    x = _noise(100, 100, scale=7.0)
    y, median, iqr = robust_scale(x, clip=20)
    assert abs(np.median(y)) < 1e-9 and np.percentile(y, 75) - np.percentile(y, 25) == pytest.approx(1)
    assert iqr == pytest.approx(7 * 1.349, rel=0.05)
    spiky = x.copy()
    spiky[[10, 20]] = [1e6, -1e6]  # electrode pops
    clipped, _, _ = robust_scale(spiky, clip=20)
    assert clipped.max() == 20 and clipped.min() == -20


def test_prepare_epochs_shape_and_units(tmp_path: Path) -> None:
    path = _edf(tmp_path / "a.edf", {"EEG C4-M1": (_noise(95, 256), 256), "EMG Chin": (_noise(95, 512, 1, 5), 512),
                                       "ECG": (_noise(95, 200, 2, 300), 200)})
    night = prepare_recording(path)
    assert night.signals.shape == (3, 3, 3000) and night.signals.dtype == np.float32
    assert night.channels == ["C4-M1", "Chin", "ECG"] and night.modalities == ["eeg", "emg", "ecg"]
    assert night.report.truncated_s == pytest.approx(5.0)  # trailing partial epoch, said
    assert (night.labels == -1).all() and NO_SCORING in night.report.notes  # unknown, not Wake; said
    assert night.report.channels_used["Chin"]["band_hz"] == [25.0, 49.0]


def test_nan_channel_is_skipped_with_its_name(tmp_path: Path) -> None:
    bad = _noise(60, 100, 1)
    bad[100:200] = np.nan
    night = prepare_recording(_recording(tmp_path, {"EEG C4-M1": (_noise(60, 100), 100), "EOG(L)": (bad, 100)}))
    assert night.channels == ["C4-M1"]
    assert "'EOG(L)' has 100 NaN or infinite samples" in night.report.channels_skipped["E1-M2"]


def test_flat_channel_is_skipped_and_required_fails(tmp_path: Path) -> None:
    signals = {"EEG C4-M1": (_noise(60, 100), 100), "EMG": (np.full(6000, 3.0), 100)}
    night = prepare_recording(_recording(tmp_path, signals))
    assert "flat" in night.report.channels_skipped["Chin"]
    with pytest.raises(ChannelNotFoundError, match="required 'emg' is unusable: Chin: .*flat"):
        prepare_recording(_recording(tmp_path, signals), required=["emg"])


def test_missing_required_channel(tmp_path: Path) -> None:
    path = _edf(tmp_path / "eeg_only.edf", {"EEG": (_noise(60, 125), 125)})
    with pytest.raises(ChannelNotFoundError, match=r"eeg_only\.edf: required modality 'ecg' not found\. "
                                                   r"Available labels: \['EEG'\]"):
        prepare_recording(path, required=["ecg"])


def test_recording_shorter_than_an_epoch(tmp_path: Path) -> None:
    path = _edf(tmp_path / "short.edf", {"EEG": (_noise(20, 100), 100)})
    with pytest.raises(SignalQualityError, match=r"short\.edf: the recording is 20\.0 s long"):
        prepare_recording(path)


def test_implausible_microvolts_are_flagged(tmp_path: Path) -> None:
    night = prepare_recording(_recording(tmp_path, {"EEG": (_noise(60, 100, scale=1e-5), 100)}))
    assert "check its physical unit" in night.report.channels_used["C4-M1"]["amplitude_warning"]


def test_spo2_stored_as_a_fraction_is_read_as_percent_and_no_saturation_is_refused() -> None:
    spo2 = 96 + np.sin(np.arange(120) / 10)  # two minutes at 1 Hz, 95–97 %
    percent, note = spo2_percent(spo2, "SaO2", "night.edf")
    assert note is None and percent is spo2
    fraction, note = spo2_percent(np.r_[0.0, spo2[1:] / 100], "SaO2", "night.edf")  # a probe-off 0 kept
    np.testing.assert_allclose(fraction[1:], spo2[1:])
    assert fraction[0] == 0
    assert note == "channel 'SaO2' holds SpO2 as a fraction (median 0.96): read as % (× 100)"
    with pytest.raises(SignalQualityError, match=r"night\.edf: SpO2 channel 'SaO2' has a median of 960\.\d* and 0 % "
                                                 r"of its readings within 50–100\.5: not a saturation in %; check"):
        spo2_percent(spo2 * 10, "SaO2", "night.edf")  # a unit of 0.1 %
    probe_off = np.r_[np.full(300, 127.0), spo2]  # an oximeter's "no reading" code for most of the night
    kept, note = spo2_percent(probe_off, "SaO2", "night.edf")
    assert kept is probe_off and note is None  # its valid stretch is kept; clean_spo2 drops the code


def test_hypnogram_trimmed_and_padded_are_said(tmp_path: Path) -> None:
    path = _edf(tmp_path / "r.edf", {"EEG": (_noise(150, 100), 100)})
    long = Scoring(np.array([0, 1, 2, 2, 3, 3, 4], dtype=np.int8))
    night = prepare_recording(path, long)
    np.testing.assert_array_equal(night.labels[:, 0], [0, 1, 2, 2, 3])
    assert any("hypnogram trimmed: 2 epochs" in n for n in night.report.notes)
    short = Scoring(np.array([0, 1], dtype=np.int8))
    night = prepare_recording(path, short)
    np.testing.assert_array_equal(night.labels[:, 0], [0, 1, -1, -1, -1])
    assert any("3 epochs unscored" in n for n in night.report.notes)


def test_a_scoring_starting_between_epochs_is_shifted_to_the_nearest() -> None:
    recording_start = dt.datetime(2020, 1, 1, 22)
    scoring = Scoring(np.array([1, 2, 3], dtype=np.int8), start=recording_start + dt.timedelta(seconds=20))
    aligned = align_scoring(scoring, recording_start, 5, 30.0)  # its first epoch covers 20-50 s: mostly epoch 1
    np.testing.assert_array_equal(aligned.labels[:, 0], [-1, 1, 2, 3, -1])
    assert "scoring starts +20.0 s from the recording; shifted by 1 epochs" in aligned.notes


def test_the_scorers_desaturation_depths_move_with_its_events() -> None:
    recording_start = dt.datetime(2020, 1, 1, 22)
    events = pd.DataFrame({"onset_s": [40.0, 100.0], "duration_s": [20.0, 15.0], "event": ["hypopnea", "desaturation"]})
    depths = pd.DataFrame({"onset_s": [100.0, 400.0], "duration_s": [15.0, 20.0], "drop_pct": [4.5, 3.0]})
    scoring = Scoring(np.full(10, 2, dtype=np.int8), events=events, desaturations=depths,
                      start=recording_start + dt.timedelta(seconds=20))
    aligned = align_scoring(scoring, recording_start, 10, 30.0)  # 300 s: the second depth lies beyond
    assert aligned.events["onset_s"].tolist() == [60.0, 120.0]
    assert aligned.desaturations is not None
    assert aligned.desaturations.to_numpy().tolist() == [[120.0, 15.0, 4.5]]
    assert align_scoring(dataclasses.replace(scoring, desaturations=None), recording_start, 10, 30.0
                         ).desaturations is None  # a scoring stating no depths


def test_scoring_of_another_recording_is_refused() -> None:
    other_start = dt.datetime(2020, 5, 1, 23)
    scoring = Scoring(np.zeros(10, dtype=np.int8), start=other_start, source=Path("other-Hypnogram.edf"))
    with pytest.raises(AnnotationError, match=r"other-Hypnogram\.edf: scoring starts at .* belongs to another"):
        align_scoring(scoring, dt.datetime(2020, 1, 1, 22), 10, 30.0)
    late = Scoring(np.r_[np.full(20, -1), np.zeros(5)].astype(np.int8), source=Path("late.xml"))
    with pytest.raises(AnnotationError, match=r"late\.xml: none of its scored epochs"):
        align_scoring(late, None, 10, 30.0)


def test_event_overlap_rule() -> None:
    events = pd.DataFrame({"onset_s": [25.0, 95.0], "duration_s": [10.0, 4.0],
                           "event": ["apnea_obstructive", "hypopnea"]})
    # a 10-s apnea from 25 s straddles epochs 0 and 1: both flagged, no rounding drops it
    np.testing.assert_array_equal(event_epoch_labels(events, ("apnea_obstructive",), 4, 30.0), [1, 1, 0, 0])
    # it overlaps each epoch by 5 s: a 6-s minimum overlap flags neither, a 4-s one both
    np.testing.assert_array_equal(event_epoch_labels(events, ("apnea_obstructive",), 4, 30.0, 6.0), [0, 0, 0, 0])
    np.testing.assert_array_equal(event_epoch_labels(events, ("apnea_obstructive",), 4, 30.0, 4.0), [1, 1, 0, 0])
    # "more than" the minimum: exactly 5 s of overlap is not enough for a 5-s minimum
    np.testing.assert_array_equal(event_epoch_labels(events, ("apnea_obstructive",), 4, 30.0, 5.0), [0, 0, 0, 0])
    np.testing.assert_array_equal(event_epoch_labels(events, ("hypopnea",), 4, 30.0), [0, 0, 0, 1])
    # events marked without a duration flag the epoch they fall in, also one on an epoch boundary
    points = pd.DataFrame({"onset_s": [45.0, 90.0], "duration_s": [0.0, 0.0], "event": ["hypopnea"] * 2})
    np.testing.assert_array_equal(event_epoch_labels(points, ("hypopnea",), 4, 30.0), [0, 1, 0, 1])


def test_sleep_edf_night_with_its_hypnogram(real_data: Path) -> None:
    night = prepare_recording(real_data / "sleep-edf" / "short_psg.edf",
                              real_data / "sleep-edf" / "hypnograms" / "SC4001EC-Hypnogram.edf")
    assert night.n_epochs == 10 and (night.labels[:, 0] == 0).all()
    assert any(n.startswith("hypnogram trimmed") for n in night.report.notes)
    assert "too low" in night.report.channels_skipped["Chin"]  # 1-Hz EMG cannot carry 25–49 Hz
    assert night.report.channels_used["Airflow"]["band_note"] == ("band high edge lowered from 5 to 0.4 Hz: the "
                                                                  "native rate is 1 Hz")
    assert (night.labels[:, 1:] == -1).all()  # Sleep-EDF has no respiratory scoring


def test_simulated_night_labels_match_its_xml(sim_dir: Path) -> None:
    from synthsleepnet import read_scoring

    edf = sorted(sim_dir.glob("*.edf"))[0]
    xml = edf.with_name(edf.stem + "-nsrr.xml")
    night = prepare_recording(edf, xml)
    scoring = read_scoring(xml)
    np.testing.assert_array_equal(night.labels[:, 0], scoring.stages[:night.n_epochs])
    assert night.labels[:, 1].sum() > 0 and set(night.channels) >= {"C4-M1", "E1-M2", "Chin", "ECG", "SpO2"}


def _recording(tmp_path: Path, signals: dict[str, tuple[np.ndarray, float]]) -> Recording:
    """An in-memory Recording, for samples an EDF cannot store (NaN)."""
    return Recording(tmp_path / "mem.edf", [Signal.from_array(k, x, fs, "uV") for k, (x, fs) in signals.items()],
                     None, [])
