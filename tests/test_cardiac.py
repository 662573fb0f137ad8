"""Heart rate from the ECG: beats found on ECGs with known beats (tall T waves, a reversed lead,
baseline wander, low and high rates), the intervals a missed or extra beat makes rejected, an
electrode off left unknown, and the night's measures."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from synthsleepnet import PreprocessingConfig
from synthsleepnet._validation import PSGReadError
from synthsleepnet.cardiac import (
    cardiac_measures,
    detect_r_peaks,
    heart_rate,
    hrv_measures,
    hrv_segments,
    normal_intervals,
    segment_hrv,
)
from synthsleepnet.io.channels import load_channel_table
from synthsleepnet.io.recording import Recording, Signal
from synthsleepnet.scoring.prepare import PreparedInput, prepare_input


def _ecg(beats_s: np.ndarray, seconds: float, sfreq: float, *, t_wave: float = 0.3, seed: int = 0,
         heights: np.ndarray | None = None) -> np.ndarray:
    """An ECG in µV with a QRS complex at each of ``beats_s`` (R waves of 1000 µV, or
    ``heights``) and a T wave ``t_wave`` times the R wave's height 0.25 s later, over baseline
    wander and noise."""
    t = np.arange(int(seconds * sfreq)) / sfreq
    x = 300 * np.sin(2 * np.pi * 0.2 * t) + np.random.default_rng(seed).normal(0, 30, t.size)
    for beat, height in zip(beats_s, np.full(len(beats_s), 1000.0) if heights is None else heights, strict=True):
        near = slice(max(int((beat - 0.2) * sfreq), 0), int((beat + 0.5) * sfreq))
        u = t[near] - beat
        x[near] += height * (np.exp(-0.5 * (u / 0.012) ** 2) - 0.25 * np.exp(-0.5 * ((u - 0.03) / 0.012) ** 2)
                             + t_wave * np.exp(-0.5 * ((u - 0.25) / 0.045) ** 2))
    return x


def _beats(seconds: float, seed: int = 0) -> np.ndarray:
    """A sinus rhythm whose rate wanders between about 45 and 95 bpm, with a respiratory sinus
    arrhythmia (± 3 bpm, 15 breaths a minute) and a little beat-to-beat noise."""
    rng = np.random.default_rng(seed)
    times, t = [], 0.5
    while t < seconds - 1:
        times.append(t)
        t += 60 / (70 + 22 * np.sin(2 * np.pi * t / 600) + 3 * np.sin(2 * np.pi * t / 4) + rng.normal(0, 0.3))
    return np.asarray(times)


def _matched(found: np.ndarray, truth: np.ndarray, tolerance_s: float = 0.03) -> int:
    after = np.clip(np.searchsorted(truth, found), 0, truth.size - 1)
    before = np.clip(after - 1, 0, truth.size - 1)
    return int(np.count_nonzero(np.minimum(np.abs(found - truth[before]), np.abs(found - truth[after])) <= tolerance_s))


@pytest.mark.parametrize(("sfreq", "t_wave", "sign"), [(256.0, 0.3, 1), (256.0, 0.9, 1), (125.0, 0.3, -1),
                                                       (512.0, 0.9, -1), (100.0, 0.5, 1)])
def test_every_beat_is_found_once(sfreq: float, t_wave: float, sign: int) -> None:
    truth = _beats(1200)
    found = detect_r_peaks(sign * _ecg(truth, 1200, sfreq, t_wave=t_wave), sfreq)
    # a T wave nearly as tall as the R wave is no second beat; a reversed lead finds the same beats
    assert found.size == truth.size and _matched(found, truth) == truth.size
    rate, true_rate = heart_rate(found, 1200), heart_rate(truth, 1200)
    assert np.nanmax(np.abs(rate - true_rate)) < 1.0  # bpm, every second
    assert np.isnan(rate).sum() == np.isnan(true_rate).sum() <= 2  # only before the first interval's midpoint


@pytest.mark.parametrize("sfreq", [256.0, 125.0])
def test_normal_beats_beside_far_larger_ectopic_ones_are_found(sfreq: float) -> None:
    """Premature beats twice the normal ones' height (frequent ventricular ectopy, as in MIT-BIH
    record 208) set their blocks' level; the normal beats whose height breathing lowers fall
    below its primary threshold, and are searched back in the long intervals they leave (without
    that, 21–23 % of these beats were missed; now at most three in a hundred, where two missed
    beats and a premature one share an interval no longer than the rhythm's own)."""
    normal = _beats(600, seed=5)
    early = np.array([b + 0.5 * (after - b) for i, (b, after) in enumerate(zip(normal[:-1], normal[1:], strict=True))
                      if i % 6 == 0 and (b // 60) % 2 == 0])  # every sixth beat, in every other minute
    truth = np.sort(np.r_[normal, early])
    heights = np.where(np.isin(truth, early), 2000.0, 1000 * (1 + 0.3 * np.sin(2 * np.pi * truth / 4)))
    found = detect_r_peaks(_ecg(truth, 600, sfreq, seed=5, heights=heights), sfreq)
    assert _matched(found, truth) == found.size >= 0.97 * truth.size  # and no false beat


def test_the_search_back_takes_no_noise_for_beats_in_a_slow_stretch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ten minutes at 42 bpm in an hour at 72, in noise four times the tests' usual: every interval
    there is long against the hour's, but not against its neighbours', so nothing is searched
    (a search against the hour's median interval took 54 more noise peaks for beats here)."""
    import synthsleepnet.cardiac as cardiac

    rng = np.random.default_rng(1)
    times, t = [], 0.5
    while t < 3590:
        times.append(t)
        t += 60 / ((42 if 1200 < t < 1800 else 72) + rng.normal(0, 1))
    truth = np.asarray(times)
    ecg = _ecg(truth, 3600, 125.0, t_wave=0.9) + np.random.default_rng(9).normal(0, 120, 3600 * 125)
    found = detect_r_peaks(ecg, 125.0)
    monkeypatch.setattr(cardiac, "SEARCH_BACK_GAP", np.inf)  # the primary threshold alone
    primary = detect_r_peaks(ecg, 125.0)
    assert _matched(found, truth) == _matched(primary, truth) == truth.size
    assert found.size - truth.size <= primary.size - truth.size + 10


@pytest.mark.parametrize("sfreq", [256.0, 102.4])
def test_a_night_searched_an_hour_at_a_time_gives_the_beats_of_one_pass(sfreq: float) -> None:
    truth = _beats(1800, seed=8)
    ecg = _ecg(truth, 1800, sfreq, seed=8)
    for start in (290, 595, 1190):  # noise bursts across the chunks' edges (every 600 s here)
        burst = slice(int(start * sfreq), int((start + 12) * sfreq))
        ecg[burst] += np.random.default_rng(start).normal(0, 1500, ecg[burst].size)
    np.testing.assert_allclose(detect_r_peaks(ecg, sfreq, chunk_s=600), detect_r_peaks(ecg, sfreq, chunk_s=1e6),
                               rtol=0, atol=1e-6)  # the same beats, to the microsecond


def test_an_ecg_too_slow_for_its_qrs_is_refused() -> None:
    with pytest.raises(ValueError, match="an ECG sampled at 32 Hz cannot show its QRS complexes"):
        detect_r_peaks(np.zeros(3200), 32.0)


def test_missed_and_extra_beats_do_not_become_heart_rate() -> None:
    beats = np.arange(0.5, 300, 1.0)  # 60 bpm
    missed = np.delete(beats, 100)  # a 2-s interval: 30 bpm for a moment if believed
    extra = np.sort(np.r_[beats, 151.0])  # an artefact taken for a beat: 120 bpm twice
    for times in (missed, extra):
        rate = heart_rate(times, 300)
        assert np.nanmin(rate) == pytest.approx(60.0) and np.nanmax(rate) == pytest.approx(60.0)
    gap = beats[(beats < 100) | (beats > 160)]  # an electrode off for a minute
    rate = heart_rate(gap, 300)
    assert np.isnan(rate[104:157]).all() and np.isfinite(rate[:99]).all() and np.isfinite(rate[162:]).all()
    assert np.isnan(heart_rate(np.array([1.0, 2.0]), 10)).all()  # one interval: no rate to trust


@pytest.mark.parametrize("n_beats", [3, 5, 9, 10, 11, 2000])
def test_a_normal_interval_is_within_30_percent_of_the_median_of_the_nine_around_it(n_beats: int) -> None:
    """The median of the nine intervals centred on each, the first and last repeated at the
    ends (SciPy's ``median_filter(size=9, mode="nearest")``, which the rule is defined by); and
    not beside an ectopic beat (tested below)."""
    from scipy.ndimage import median_filter

    from synthsleepnet.cardiac import _beside_ectopic_beats

    rr = np.random.default_rng(n_beats).uniform(0.25, 2.2, n_beats - 1)
    typical = median_filter(rr, size=9, mode="nearest")
    expected = (rr >= 0.3) & (rr <= 2.0) & (np.abs(rr - typical) <= 0.3 * typical)
    found_rr, normal = normal_intervals(np.r_[0.0, np.cumsum(rr)])
    assert np.allclose(found_rr, rr) and (normal == expected & ~_beside_ectopic_beats(rr, typical)).all()
    assert n_beats < 100 or 0.3 < expected.mean() < 0.9  # the long night has both kinds


def _with_early_beats(truth: np.ndarray, every: int, seed: int, *, reset: bool) -> tuple[np.ndarray, np.ndarray]:
    """``truth`` with every ``every``-th beat 8–28 % early (passing the median rule), and where
    they are: a ventricular beat leaves the sinus rhythm as it was (a compensatory pause follows),
    an atrial one (``reset``) resets it, so the beats after it come as much earlier."""
    beats = truth.copy()
    early = np.arange(every, truth.size - 2, every)
    for k, share in zip(early, np.random.default_rng(seed).uniform(0.08, 0.28, early.size), strict=True):
        shift = share * (beats[k] - beats[k - 1])
        beats[k:] -= shift if reset else 0.0
        beats[k] -= 0.0 if reset else shift
    return beats, early


def test_premature_beats_and_their_pauses_are_no_normal_intervals() -> None:
    """Ventricular premature beats 8–28 % early with their compensatory pauses (2.5 % of the
    beats): the two intervals around each pass the median rule, but over 90 % of them are not
    normal now, while 98 % of the sinus rhythm's own intervals are; RMSSD is within 4 % of the
    rhythm's (by the median rule alone it read 65 % high)."""
    truth = _beats(3600, seed=3)
    beats, early = _with_early_beats(truth, 40, seed=3, reset=False)
    rr, normal = normal_intervals(beats)
    beside = np.zeros(rr.size, dtype=bool)
    beside[np.r_[early - 1, early]] = True
    assert normal[beside].mean() < 0.1 and normal[~beside].mean() > 0.98
    true_rr, true_normal = normal_intervals(truth)
    assert true_normal.all()  # a sinus rhythm loses none
    rmssd, true_rmssd = segment_hrv(rr, normal, 3600)[1], segment_hrv(true_rr, true_normal, 3600)[1]
    assert rmssd == pytest.approx(true_rmssd, rel=0.04)


def test_an_early_beat_that_resets_the_rhythm_is_no_normal_interval() -> None:
    """Atrial premature beats 8–28 % early that reset the rhythm (no pause after them; 2.5 % of
    the beats): the short interval before most of them (over 70 %) is not normal, and RMSSD is
    within 8 % of the rhythm's (by the median rule alone it read 30 % high)."""
    truth = _beats(3600, seed=4)
    beats, early = _with_early_beats(truth, 40, seed=4, reset=True)
    rr, normal = normal_intervals(beats)
    assert normal[early - 1].mean() < 0.3 and np.delete(normal, np.r_[early - 1, early]).mean() > 0.99
    true_rr, true_normal = normal_intervals(truth)
    assert segment_hrv(rr, normal, 3600)[1] == pytest.approx(segment_hrv(true_rr, true_normal, 3600)[1], rel=0.08)


@pytest.mark.parametrize(("bpm", "breaths_per_min", "arrhythmia_bpm"), [(60, 15, 3), (64, 16, 6), (50, 18, 5)])
def test_a_sinus_arrhythmia_locked_to_breathing_is_no_ectopy(bpm: float, breaths_per_min: float,
                                                             arrhythmia_bpm: float) -> None:
    """In NREM sleep the heart can lock to breathing, four beats to a breath: its intervals then
    rise and fall in a fixed short-long pattern. Lipponen and Tarvainen's "short" and "long"
    classes (a step down then up, or up then down, over the next two) took 18–26 % of such
    rhythms' intervals for ectopy; the ectopic-beat and straying criteria leave them all, and
    those of a rhythm not locked (2.8 beats a breath)."""
    rng = np.random.default_rng(0)
    times, t = [], 0.0
    while t < 3600:
        times.append(t)
        t += 60 / (bpm + arrhythmia_bpm * np.sin(2 * np.pi * breaths_per_min / 60 * t) + rng.normal(0, 0.2))
    _, normal = normal_intervals(np.asarray(times))
    assert normal.mean() > 0.99

def test_an_electrode_off_leaves_the_heart_rate_unknown_not_zero() -> None:
    truth = _beats(600, seed=1)
    ecg = _ecg(truth, 600, 256.0, seed=1)
    ecg[int(200 * 256):int(260 * 256)] = np.random.default_rng(3).normal(0, 5, 60 * 256)  # an electrode off
    ecg[int(400 * 256):int(420 * 256)] = np.random.default_rng(2).normal(0, 3000, 20 * 256)  # movement
    rate = heart_rate(detect_r_peaks(ecg, 256.0), 600)
    assert np.isnan(rate[205:255]).all()
    true_rate = heart_rate(truth, 600)
    clean = np.r_[2:195, 265:395, 425:598]
    assert np.nanmax(np.abs(rate[clean] - true_rate[clean])) < 1.0
    assert np.isnan(rate[404:417]).all()  # a movement's peaks are no beats
    truth = _beats(1200, seed=6)  # ten 10-s bursts of noise about as tall as the R waves
    ecg = _ecg(truth, 1200, 256.0, seed=6)
    for start in range(50, 1200, 120):
        ecg[start * 256:(start + 10) * 256] += np.random.default_rng(start).normal(0, 1500, 10 * 256)
    rate, true_rate = heart_rate(detect_r_peaks(ecg, 256.0), 1200), heart_rate(truth, 1200)
    assert np.nanmax(np.abs(rate - true_rate)) < 10 and np.nanmax(rate) < np.nanmax(true_rate) + 5
    assert np.isfinite(rate).mean() > 0.9


def test_measures_are_over_sleep_in_bed() -> None:
    # 30-s epochs: a minute awake out of bed, a minute awake in bed, N2, N3 (its first half without
    # a heart rate), R, and a minute out of bed again, dozing off in its second half
    rate = np.r_[np.full(60, 90.0), np.full(60, 70.0), np.full(60, 55.0), np.full(30, np.nan), np.full(30, 60.0),
                 np.full(60, 62.0), np.full(60, 100.0)]
    stages = np.array([0, 0, 0, 0, 2, 2, 3, 3, 4, 4, 0, 2])
    m = cardiac_measures(rate, stages, in_bed=slice(2, 10))
    assert (m["HR_mean_W"], m["HR_mean_NREM"], m["HR_mean_R"]) == (70.0, pytest.approx(2 / 3 * 55 + 1 / 3 * 60), 62.0)
    assert (m["HR_min_sleep"], m["HR_max_sleep"], m["HR_max_recording"]) == (55.0, 62.0, 100.0)
    assert m["HR_known_sleep_pct"] == pytest.approx(100 * 150 / 180)
    assert (m["HR_over_90_sleep_min"], m["HR_under_40_sleep_min"]) == (0.0, 0.0)  # the dozing at 100 is out of bed
    assert np.isnan(cardiac_measures(rate, np.zeros(12, dtype=int))["HR_mean_sleep"])  # no sleep
    # sustained: epochs of sleep averaging above 90 or below 40 bpm (a few fast seconds are not)
    rate = np.r_[np.full(30, 95.0), np.full(30, 35.0), np.full(30, 92.0), np.full(30, 120.0), np.full(25, 60.0),
                 np.full(5, 130.0), np.full(15, 38.0), np.full(15, np.nan)]
    m = cardiac_measures(rate, np.array([2, 2, 4, 0, 3, 1]))
    assert (m["HR_over_90_sleep_min"], m["HR_under_40_sleep_min"]) == (1.0, 1.0)


def test_heart_rate_variability_is_measured_on_whole_segments_of_one_kind() -> None:
    # 5 minutes of wake out of bed, 5 of wake, 15 of NREM (N2, N3 with a missed beat and an extra
    # one, N1), 2.5 more of N2, then 12.5 of R, with two minutes of no beats (an electrode off)
    stages = np.repeat([0, 0, 2, 3, 1, 2, 4], [10, 10, 10, 10, 10, 5, 25])
    # alternating intervals, their steps under 20 ms (larger ones alternating beat by beat would
    # be bigeminy: every other beat ectopic)
    pairs = {0: (0.8, 0.815), 2: (1.0, 1.018), 3: (1.0, 1.01), 1: (1.0, 1.005), 4: (0.9, 0.912)}
    beats, t = [], 0.3
    while t < 30 * stages.size:
        beats.append(t)
        t += pairs[stages[int(t // 30)]][len(beats) % 2]
    beats_s = np.asarray(beats)
    n3 = np.flatnonzero((beats_s > 1000) & (beats_s < 1100))
    beats_s = np.delete(beats_s, n3[0])  # a missed beat: one interval twice as long
    beats_s = np.sort(np.r_[beats_s, beats_s[n3[40]:n3[40] + 2].mean()])  # a T wave taken for a beat: two halves
    beats_s = beats_s[(beats_s < 2100) | (beats_s > 2220)]  # 120 s without beats
    m = hrv_measures(beats_s, stages, in_bed=slice(10, 80))
    assert [m[f"HRV_segments_{kind}"] for kind in ("W", "NREM", "R")] == [1.0, 3.0, 1.0]
    # successive differences 15, then 18, 10 (the pairs with a wrong interval left out) and 5, and 12 ms
    assert (m["HRV_RMSSD_W"], m["HRV_RMSSD_NREM"], m["HRV_RMSSD_R"]) == pytest.approx((15.0, 11.0, 12.0))
    # alternating intervals: half their difference, times √(n / (n − 1))
    assert (m["HRV_SDNN_W"], m["HRV_SDNN_NREM"], m["HRV_SDNN_R"]) == pytest.approx((7.5, 5.5, 6.0), abs=0.05)
    # each stretch of one kind is cut from its start (R from 27.5 min); the rest under 5 minutes is left
    table = hrv_segments(beats_s, stages, in_bed=slice(10, 80))
    assert list(table["onset_s"]) == [300, 600, 900, 1200, 1650, 1950] and list(table["kind"]) == [
        "W", "NREM", "NREM", "NREM", "R", "R"]
    assert list(table["stages"][:4]) == ["W", "N2", "N3", "N1"] and table["nn_coverage_pct"].iloc[-1] < 80
    assert table["RMSSD_ms"].isna().tolist() == [False] * 5 + [True]  # the electrode off: 60 % of its segment
    # the intervals between its beats, less the missed beat's long one and the extra beat's two halves
    assert table["intervals"].iloc[2] == np.count_nonzero((beats_s >= 900) & (beats_s < 1200)) - 1 - 3
    assert table["HR_mean_bpm"].iloc[0] == pytest.approx(60 / 0.8075, abs=0.05)
    none = hrv_measures(beats_s, np.full(80, 2), in_bed=slice(0, 9))
    assert none["HRV_segments_NREM"] == 0.0 and np.isnan(none["HRV_RMSSD_NREM"])  # no 5 minutes in bed
    beatless = hrv_segments(np.empty(0), stages)  # an ECG whose beats could not be told: segments, none measured
    assert len(beatless) == 7 and beatless["SDNN_ms"].isna().all() and (beatless["intervals"] == 0).all()
    assert hrv_segments(np.empty(0), np.empty(0, dtype=int)).empty  # no hypnogram, no segments
    in_time = hrv_segments(beats_s, np.repeat([4, 2, 0, 2], 10))  # R, NREM, W, NREM: rows in time order
    assert list(in_time["kind"]) == ["R", "NREM", "W", "NREM"] and list(in_time["onset_s"]) == [0, 300, 600, 900]


def test_a_night_is_scored_with_its_heart_rate_or_says_why_not() -> None:
    truth = _beats(600, seed=4)
    eeg = Signal.from_array("EEG C4-M1", np.random.default_rng(5).normal(0, 20, 600 * 100), 100.0, "uV")

    def prepared(ecg: Signal) -> PreparedInput:
        night = Recording(Path("night.edf"), [eeg, ecg], dt.datetime(2024, 1, 1, 23), [])
        return prepare_input(night, None, config=PreprocessingConfig(), channel_table=load_channel_table(),
                             channels={"C4-M1"})

    good = prepared(Signal.from_array("ECG II", _ecg(truth, 600, 256.0, seed=4), 256.0, "uV"))
    assert good.heart_rate is not None and len(good.heart_rate) == 600
    assert np.nanmax(np.abs(np.asarray(good.heart_rate) - heart_rate(truth, 600))) < 1.0
    assert good.r_peaks is not None and np.max(np.abs(np.asarray(good.r_peaks) - truth)) < 0.005  # the beats kept
    def unreadable() -> tuple[np.ndarray, float]:
        raise PSGReadError("night.edf: record 7 of 'ECG II' is cut short")

    broken = prepared(Signal("ECG II", 256.0, 600 * 256, "uV", "uV", unreadable))
    assert broken.heart_rate is broken.r_peaks is None and broken.night.n_epochs == 20  # the night is scored all the same
    assert "no heart rate from ECG: record 7 of 'ECG II' is cut short" in broken.night.report.notes
    slow = prepared(Signal.from_array("ECG II", np.zeros(600 * 32), 32.0, "uV"))
    assert slow.heart_rate is None
    assert ("no heart rate from ECG: an ECG sampled at 32 Hz cannot show its QRS complexes (at least 50 Hz is "
            "needed)") in slow.night.report.notes
