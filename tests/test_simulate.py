"""The PSG simulator: real files, determinism, sleep architecture, event physiology."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from synthsleepnet.simulate import (
    SimulatedNight,
    SubjectProfile,
    simulate_hypnogram,
    simulate_night,
    write_night,
)
from synthsleepnet.simulate.respiration import BreathingRhythm, place_events
from synthsleepnet.tasks import RESPIRATORY_EVENTS


def test_same_seed_same_bytes_other_seed_other_night(tmp_path: Path) -> None:
    a = write_night(simulate_night(5, 0.25), tmp_path / "a")
    b = write_night(simulate_night(5, 0.25), tmp_path / "b")
    c = write_night(simulate_night(6, 0.25), tmp_path / "c")
    assert a[0].read_bytes() == b[0].read_bytes() and a[1].read_bytes() == b[1].read_bytes()
    assert a[0].read_bytes() != c[0].read_bytes()


def test_a_window_records_that_part_of_the_whole_night(tmp_path: Path) -> None:
    import datetime as dt

    import edfio

    whole, part = simulate_night(7, 2.0), simulate_night(7, 2.0, window_hours=0.5)
    assert part.window_start_s is not None and whole.window_start_s is None
    first = int(part.window_start_s / 30)
    assert part.hypnogram.size == 60 and np.array_equal(part.hypnogram, whole.hypnogram[first:first + 60])
    lights_off = part.start - dt.timedelta(seconds=part.window_start_s)
    assert dt.time(22, 0) <= lights_off.time() <= dt.time(23, 30)  # the recording starts mid-night
    edf, _ = write_night(part, tmp_path)
    assert edfio.read_edf(edf).duration == 1800
    assert not edfio.read_edf(edf).annotations  # lights off and on are outside the recording
    assert [a.text for a in edfio.read_edf(write_night(whole, tmp_path / "whole")[0]).annotations] == \
        ["Lights off", "Lights on"]
    with pytest.raises(ValueError, match="window_hours"):
        simulate_night(7, 1.0, window_hours=1.5)


def test_independent_readers_see_channels_rates_units_and_events(sim_dir: Path) -> None:
    mne = pytest.importorskip("mne")
    edf = sim_dir / "sim-0011.edf"
    raw = mne.io.read_raw_edf(edf, preload=False, verbose="error")
    assert raw.ch_names == ["EEG C4-M1", "EEG C3-M2", "EOG E1-M2", "EOG E2-M2", "EMG Chin", "ECG",
                            "Airflow", "Thor", "Abdo", "SpO2", "Position"]
    assert raw.n_times / raw.info["sfreq"] == pytest.approx(40 * 60)
    import edfio

    rates = {s.label: s.sampling_frequency for s in edfio.read_edf(edf).signals}
    assert rates == {"EEG C4-M1": 256, "EEG C3-M2": 256, "EOG E1-M2": 256, "EOG E2-M2": 256,
                     "EMG Chin": 512, "ECG": 256, "Airflow": 32, "Thor": 32, "Abdo": 32, "SpO2": 1, "Position": 1}
    units = {s.label: s.physical_dimension for s in edfio.read_edf(edf).signals}
    assert units["EEG C4-M1"] == "uV" and units["SpO2"] == "%"
    root = ET.parse(sim_dir / "sim-0011-nsrr.xml").getroot()
    concepts = [e.findtext("EventConcept") for e in root.iter("ScoredEvent")]
    assert "Stage 2 sleep|2" in concepts and any("apnea" in (c or "").lower() for c in concepts)
    starts = [float(e.findtext("Start") or 0) for e in root.iter("ScoredEvent")]
    assert min(starts) >= 0 and max(starts) < 40 * 60


def test_stage_proportions_over_twenty_nights() -> None:
    rows = []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        hyp = simulate_hypnogram(SubjectProfile.random(rng), 8.0, rng)
        sleep = hyp[hyp > 0]
        rows.append([np.mean(sleep == k) for k in (1, 2, 3, 4)] + [np.mean(hyp > 0)])
    n1, n2, n3, rem, efficiency = np.mean(rows, axis=0)
    assert 0.02 <= n1 <= 0.10 and 0.45 <= n2 <= 0.60 and 0.10 <= n3 <= 0.25 and 0.18 <= rem <= 0.27
    assert 0.80 <= efficiency <= 0.97


def test_hypnogram_structure() -> None:
    rng = np.random.default_rng(3)
    profile = SubjectProfile.random(rng)
    hyp = simulate_hypnogram(profile, 8.0, rng)
    onset = int(np.argmax(hyp > 0))
    assert onset == pytest.approx(profile.sol_min * 2, abs=1)  # lights-off wake, then sleep onset
    n3 = np.flatnonzero(hyp == 3)
    rem = np.flatnonzero(hyp == 4)
    assert np.median(n3) < hyp.size / 2 < np.median(rem)  # N3 early, REM late


@pytest.mark.parametrize("ahi", [5.0, 30.0])
def test_event_rate_follows_ahi(ahi: float) -> None:
    counts = []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        profile = SubjectProfile.random(rng, ahi=ahi)
        hyp = simulate_hypnogram(profile, 8.0, rng)
        breaths = BreathingRhythm.simulate(hyp, 10.0, rng).breath_onsets_s()
        events = place_events(hyp, profile, rng, breaths)
        for edge in (events["onset_s"].to_numpy(float), (events["onset_s"] + events["duration_s"]).to_numpy(float)):
            assert np.abs(breaths[np.searchsorted(breaths, edge - 1e-3)] - edge).max(initial=0) < 1e-3  # whole breaths
        counts.append(len(events) / (np.sum(hyp > 0) * 30 / 3600))
        assert (np.diff(events["onset_s"]) > 0).all() if len(events) > 1 else True
        assert (events["duration_s"] >= 10).all()
    assert np.mean(counts) == pytest.approx(ahi, rel=0.2)


def test_apnea_physiology() -> None:
    night = simulate_night(21, 1.0, ahi=40.0)
    flow, fs = night.signals["Airflow"][0], night.signals["Airflow"][1]
    thor = night.signals["Thor"][0]
    spo2 = night.signals["SpO2"][0]
    events = night.events
    apneas = events[events["event"] == "apnea_obstructive"]
    assert len(apneas) > 0
    for onset, duration in zip(apneas["onset_s"], apneas["duration_s"], strict=True):
        inside = slice(int((onset + 2) * fs), int((onset + duration - 1) * fs))
        before = slice(int((onset - 40) * fs), int((onset - 10) * fs))
        if before.start < 0:
            continue
        assert np.std(flow[inside]) < 0.1 * np.std(flow[before])   # airflow drop ≥ 90 %
        assert np.std(thor[inside]) > 0.5 * np.std(thor[before])   # effort continues
        at_onset = spo2[int(onset) + 15]  # before the circulatory lag has passed
        assert spo2[int(onset + duration):int(onset + duration) + 40].min() <= at_onset - 3  # desaturation


def test_respiratory_truth_carries_each_events_desaturation() -> None:
    """ODI is checked against the designed SpO2 falls: they are the scored events, and the ≥ 3 %
    falls show in the SpO2 trace about the circulatory lag after each event."""
    night = simulate_night(23, 1.5, ahi=35.0)
    truth = night.respiratory_truth
    scored = night.events[night.events["event"].isin(RESPIRATORY_EVENTS)]
    assert truth[["onset_s", "duration_s", "event"]].values.tolist() == scored.values.tolist()
    spo2 = night.signals["SpO2"][0]
    deep = truth[truth["desaturation_pct"] >= 3]
    assert len(deep) > 5
    for onset, duration, drop in zip(deep["onset_s"], deep["duration_s"], deep["desaturation_pct"], strict=True):
        nadir = spo2[int(onset + duration):int(onset + duration) + 40].min()
        assert spo2[int(onset) + 15] - nadir == pytest.approx(drop, abs=1.5)


def test_breathing_is_shaped_like_a_real_recording() -> None:
    """What a clinical scorer relies on: flow leads the belts by about a quarter breath, the belts
    differ and go paradoxical against an obstructed airway, central apneas stop the effort and
    leave the heartbeat on the belts, and the sensor noise is low-pass, so an apnea holds no fast
    'residual breathing'."""
    night = simulate_night(21, 1.0, ahi=40.0)
    fs = night.signals["Airflow"][1]
    flow, thor, abdo = (night.signals[k][0] for k in ("Airflow", "Thor", "Abdo"))
    events = night.events
    quiet = np.ones(flow.size, dtype=bool)
    for onset, duration in zip(events["onset_s"], events["duration_s"], strict=True):
        quiet[int((onset - 5) * fs):int((onset + duration + 20) * fs)] = False
    f, t, a = flow[quiet][:20000], thor[quiet][:20000], abdo[quiet][:20000]
    lags = np.arange(1, int(3 * fs))
    r = [np.corrcoef(f[:-k], t[k:])[0, 1] for k in lags]
    lead_s = lags[int(np.argmax(r))] / fs
    assert 0.5 < lead_s < 1.6  # a quarter of a 3.6–4.5-s breath
    assert 0.8 < np.corrcoef(t, a)[0, 1] < 0.97  # the belts are alike, not copies
    spectrum = np.abs(np.fft.rfft(f - f.mean())) ** 2
    freqs = np.fft.rfftfreq(f.size, 1 / fs)
    assert spectrum[freqs > 1].sum() / spectrum.sum() < 0.05  # breathing harmonics, little noise
    assert spectrum[(freqs > 0.4) & (freqs < 1)].sum() / spectrum.sum() > 0.01  # not a pure sinusoid
    for kind, paradox, effort in (("apnea_obstructive", True, True), ("apnea_central", False, False)):
        chosen = events[events["event"] == kind]
        assert len(chosen) > 0, kind
        for onset, duration in zip(chosen["onset_s"], chosen["duration_s"], strict=True):
            inside = slice(int((onset + 3) * fs), int((onset + duration - 2) * fs))
            before = slice(max(int((onset - 40) * fs), 0), int((onset - 10) * fs))
            if before.stop - before.start < 10 * fs:
                continue
            assert (np.corrcoef(thor[inside], abdo[inside])[0, 1] < 0) == paradox, (kind, onset)
            assert (np.std(thor[inside]) > 0.5 * np.std(thor[before])) == effort, (kind, onset)
            fast = np.abs(np.diff(flow[inside], 2)).mean() / np.abs(np.diff(flow[before], 2)).mean()
            assert fast < 0.4, (kind, onset)  # no residual breathing in the second differences
            if kind == "apnea_central":  # the belts show the heartbeat, in phase (cardiogenic oscillation)
                belt = thor[inside] - thor[inside].mean()
                peak_hz = np.fft.rfftfreq(belt.size, 1 / fs)[np.argmax(np.abs(np.fft.rfft(belt)))]
                assert abs(peak_hz - night.profile.heart_rate_bpm / 60) < 0.15, (onset, peak_hz)


@pytest.mark.parametrize(("style", "canonical", "respiratory"), [
    ("shhs", {"C4-M1", "C3-M2", "E1-M2", "E2-M2", "Chin", "ECG", "Airflow", "Thor", "Abdo", "SpO2"}, True),
    ("mesa", {"C4-M1", "E1-M2", "E2-M2", "Chin", "ECG", "Airflow", "Thor", "Abdo", "SpO2"}, True),
    ("sleep-edf", {"Fpz-Cz", "Pz-Oz", "EOG-H", "Airflow"}, False),
    ("hmc", {"C4-M1", "C3-M2", "E1-M2", "E2-M2", "Chin", "ECG"}, False),
])
def test_cohort_styles_go_through_info_prepare_and_stats(style: str, canonical: set[str], respiratory: bool,
                                                         tmp_path: Path) -> None:
    from synthsleepnet import (
        EpochStore,
        describe_recording,
        prepare_store,
        read_scoring,
        sleep_statistics,
    )
    from synthsleepnet.cli import main
    from synthsleepnet.simulate import simulate_cohort
    from synthsleepnet.simulate.styles import STYLES

    pairs = simulate_cohort(tmp_path / "rec", 2, 0.3, seed=31, ahi=30.0, style=style, progress=False)
    again = simulate_cohort(tmp_path / "again", 2, 0.3, seed=31, ahi=30.0, style=style, progress=False)
    assert [p.read_bytes() for p in pairs[0]] == [p.read_bytes() for p in again[0]]  # same seed, same bytes
    labels = {c.label: c for c in STYLES[style].channels}
    channels = describe_recording(pairs[0][0])
    assert {c["label"] for c in channels} == set(labels)
    for c in channels:
        assert c["sfreq"] == labels[c["label"]].sfreq and c["unit"] == labels[c["label"]].unit
    assert {c["canonical"] for c in channels if c.get("canonical")} >= canonical
    summary = prepare_store(tmp_path / "rec", tmp_path / "store", progress=False)
    assert summary.ok and len(summary.prepared) == 2, summary.text()
    store = EpochStore(tmp_path / "store")
    night = store.night(store.night_ids[0])
    assert (night.labels[:, store.label_column("stage")] >= 0).all()
    assert (night.labels[:, store.label_column("apnea")] >= 0).all() == respiratory  # -1: not scored
    scoring = read_scoring(pairs[0][1])
    assert sleep_statistics(scoring.stages)["TST_min"] > 0
    assert main(["stats", str(pairs[0][1])]) == 0


def test_simulate_command_writes_a_style_and_names_the_valid_ones(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from synthsleepnet.cli import main

    assert main(["simulate", "--nights", "1", "--hours", "0.1", "--style", "hmc", "--out", str(tmp_path / "h"),
                 "--quiet"]) == 0
    assert sorted(p.name for p in (tmp_path / "h").iterdir()) == ["SN001.edf", "SN001_sleepscoring.edf"]
    assert main(["simulate", "--nights", "1", "--style", "shhs2", "--out", str(tmp_path / "x"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "shhs2" in err and "sleep-edf" in err  # the valid styles are named
    import edfio

    assert main(["simulate", "--nights", "1", "--hours", "1", "--window-hours", "0.1", "--style", "hmc",
                 "--out", str(tmp_path / "w"), "--quiet"]) == 0
    stages = [a.text for a in edfio.read_edf(tmp_path / "w" / "SN001_sleepscoring.edf").annotations]
    assert len(stages) == 12 and not any("Lights" in t for t in stages)  # a mid-night window, epoch by epoch
    assert main(["simulate", "--nights", "1", "--hours", "1", "--window-hours", "2", "--out", str(tmp_path / "y"),
                 "--quiet"]) == 2
    assert "window_hours" in capsys.readouterr().err


def _n2_measures(night: SimulatedNight) -> tuple[float, float]:
    """EEG SD (µV) and sigma (11–16 Hz) share of 0.5–30 Hz power over the night's N2 epochs."""
    x, fs = night.signals["EEG C4-M1"][0], night.signals["EEG C4-M1"][1]
    per_epoch = int(30 * fs)
    epochs = np.stack([x[i * per_epoch:(i + 1) * per_epoch] for i in np.flatnonzero(night.hypnogram == 2)])
    power = np.abs(np.fft.rfft(epochs - epochs.mean(1, keepdims=True), axis=1)) ** 2
    freqs = np.fft.rfftfreq(per_epoch, 1 / fs)
    sigma = power[:, (freqs >= 11) & (freqs <= 16)].sum() / power[:, (freqs >= 0.5) & (freqs <= 30)].sum()
    return float(epochs.std()), float(sigma)


def test_variability_widens_subjects_and_sites_and_normal_is_unchanged(tmp_path: Path) -> None:
    spread = {}
    for level in ("low", "normal", "high"):
        nights = [simulate_night(seed, 1.0, ahi=10.0, variability=level) for seed in range(40, 48)]
        amplitude, sigma = np.array([_n2_measures(n) for n in nights]).T
        rates = {n.signals["EEG C4-M1"][1] for n in nights}
        spread[level] = (np.std(np.log(amplitude)), np.std(np.log(sigma)), rates)
    assert spread["low"][0] < spread["normal"][0] < spread["high"][0]  # EEG amplitude between subjects
    assert spread["normal"][1] < spread["high"][1]  # spindle density and frequency
    assert spread["low"][2] == spread["normal"][2] == {256.0} and len(spread["high"][2]) > 1  # site rates
    baseline = write_night(simulate_night(44, 0.25), tmp_path / "default")
    normal = write_night(simulate_night(44, 0.25, variability="normal"), tmp_path / "normal")
    assert baseline[0].read_bytes() == normal[0].read_bytes()
    high = [write_night(simulate_night(45, 0.25, variability="high"), tmp_path / d)[0] for d in "ab"]
    assert high[0].read_bytes() == high[1].read_bytes()  # a seed fixes a night at every level
    with pytest.raises(ValueError, match="variability"):
        simulate_night(1, 0.1, variability="extreme")


def test_high_variability_nights_go_through_prepare(tmp_path: Path) -> None:
    from synthsleepnet import EpochStore, prepare_store
    from synthsleepnet.cli import main

    assert main(["simulate", "--nights", "4", "--hours", "0.3", "--seed", "60", "--variability", "high",
                 "--quiet", "--out", str(tmp_path / "rec")]) == 0
    summary = prepare_store(tmp_path / "rec", tmp_path / "store", progress=False)
    assert summary.ok and len(summary.prepared) == 4, summary.text()
    store = EpochStore(tmp_path / "store")
    night = store.night(store.night_ids[0])
    eeg = night.read_channel(list(range(night.n_epochs)), night.channels.index("C4-M1"))
    assert eeg.shape[-1] == 3000 and np.isfinite(eeg).all() and eeg.std() > 0  # resampled to 100 Hz


def test_the_heart_rhythm_is_a_sinus_rhythm_hrv_tools_accept() -> None:
    """Each beat follows the heart rate at its own time: a rate held for whole seconds (as before)
    changed in steps that Kubios-style criteria took for ectopic beats (in 3.4 % of one subject's
    intervals here); and the ECG's draws are its own, so the other signals do not depend on its beats."""
    from synthsleepnet.cardiac import normal_intervals
    from synthsleepnet.simulate.signals import simulate_ecg

    for subject in range(4):
        rng = np.random.default_rng(100 + subject)
        profile = SubjectProfile.random(rng, ahi=20.0)
        hyp = simulate_hypnogram(profile, 2.0, rng)
        state = rng.bit_generator.state
        _, beats = simulate_ecg(hyp, profile, np.zeros(hyp.size * 30), 0.25, 256.0, rng)
        assert rng.bit_generator.state == state  # the ECG took nothing from the night's generator
        _, normal = normal_intervals(beats)
        assert normal.mean() > 0.999, subject
