"""Respiratory measures: desaturations and ODI on SpO2 with known desaturations, artefacts that
must not count, T90, hypopnea confirmation, and the indices of a hand-built night."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthsleepnet.respiratory import (
    clean_spo2,
    confirm_hypopneas,
    describe_respiratory,
    find_desaturations,
    respiratory_indices,
    spo2_measures,
)


def _dip(trace: np.ndarray, onset: int, drop: float, fall_s: int = 15, hold_s: int = 8, rise_s: int = 12) -> None:
    """Carve a desaturation of ``drop`` % into ``trace`` at ``onset`` (falls, holds, recovers)."""
    shape = np.r_[np.linspace(0, drop, fall_s), np.full(hold_s, drop), np.linspace(drop, 0, rise_s)]
    trace[onset:onset + shape.size] -= shape


@pytest.fixture()
def night_spo2() -> tuple[np.ndarray, dict[str, list[int]]]:
    """Two hours of 1-Hz SpO2 at 96 % with small noise, desaturations of known depth every few
    minutes, and artefacts that are not desaturations."""
    rng = np.random.default_rng(3)
    x = 96 + rng.normal(0, 0.15, 7200)
    onsets = {"deep": [600, 1500, 2400, 3300], "moderate": [900, 1800, 2700], "shallow": [1200, 2100]}
    for t in onsets["deep"]:
        _dip(x, t, 5.0)
    for t in onsets["moderate"]:
        _dip(x, t, 3.5)
    for t in onsets["shallow"]:
        _dip(x, t, 2.0)
    x[4000:4012] = 0.0  # probe off
    x[4500:4503] -= 9.0  # a movement artefact: 9 % in one second, back in three
    x[5000:5020] = np.nan  # no signal
    return x, onsets


def test_desaturations_of_known_depth_are_found_and_artefacts_are_not(night_spo2: tuple) -> None:
    x, onsets = night_spo2
    three, four = find_desaturations(x, 3.0), find_desaturations(x, 4.0)
    assert len(three) == len(onsets["deep"]) + len(onsets["moderate"])
    assert len(four) == len(onsets["deep"])
    truth = sorted(onsets["deep"] + onsets["moderate"])
    # the onset is the last sample at the baseline before the fall
    assert np.all(np.abs(three["onset_s"].to_numpy() - truth) <= 3)
    deep = three[three["onset_s"].round(-2).isin(onsets["deep"])]
    assert deep["drop_pct"].to_numpy() == pytest.approx(5.0, abs=0.6)  # noise raises the baseline a little
    assert (three["duration_s"] >= 15).all() and (three["duration_s"] <= 40).all()
    assert not ((three["onset_s"] > 3900) & (three["onset_s"] < 5100)).any()  # no artefact counted


def test_a_slow_drift_is_not_a_desaturation() -> None:
    drift = np.linspace(97, 90, 4 * 3600)  # 7 % over four hours: a trend, never a dip
    assert len(find_desaturations(drift, 3.0)) == 0


def test_a_dip_lasting_exactly_min_s_counts() -> None:
    x = np.r_[np.full(200, 97.0), [90.0, 90.0], np.full(100, 97.0)]  # 2 s below after 3-s smoothing
    assert len(find_desaturations(x, 3.0, clean=False)) == 1  # min_s 2: "at least", not "more than"
    assert len(find_desaturations(x, 3.0, min_s=3, clean=False)) == 0


def test_readings_below_50_percent_are_artefacts_even_when_steady() -> None:
    assert np.isnan(clean_spo2(np.full(10, 45.0))).all()  # no step to flag them: the range does
    assert np.isfinite(clean_spo2(np.full(10, 55.0))).all()


def test_cleaning_removes_dropouts_and_impossible_steps() -> None:
    x = np.r_[np.full(20, 95.0), np.full(5, 0.0), np.full(20, 95.0), [95, 80, 95], np.full(20, 95.0)]
    clean = clean_spo2(x)
    assert np.isnan(clean[18:27]).all() and np.isnan(clean[45:50]).all()
    assert np.isfinite(clean[:18]).all() and np.isfinite(clean[28:44]).all() and np.isfinite(clean[51:]).all()


def test_odi_and_t90_count_sleep_only(night_spo2: tuple) -> None:
    x, onsets = night_spo2
    x = x.copy()
    _dip(x, 6000, 8.0, fall_s=10, hold_s=120, rise_s=10)  # two minutes under 90 % in sleep ...
    _dip(x, 6660, 8.0, fall_s=10, hold_s=60, rise_s=10)  # ... and one in wake
    stages = np.full(240, 2)
    stages[220:] = 0  # the last 10 minutes awake (from 6600 s)
    m = spo2_measures(x, stages, 30.0)
    # valid sleep: less the artefacts (35 s) and a few seconds around each
    assert 6600 - 80 < m["spo2_valid_sleep_h"] * 3600 < 6600 - 35
    assert m["T90_min"] == pytest.approx(np.sum(x[5000:6600] < 90) / 60) and m["T90_min"] > 2
    n3 = len(onsets["deep"]) + len(onsets["moderate"]) + 1  # and the long one in sleep
    assert m["n_desaturations_3"] == n3 and m["n_desaturations_4"] == len(onsets["deep"]) + 1
    assert m["ODI3"] == pytest.approx(n3 / m["spo2_valid_sleep_h"])
    assert 95 < m["spo2_mean"] < 96.1 and m["spo2_min"] == pytest.approx(88.0, abs=0.6)


def test_a_desaturation_just_after_lights_off_is_measured_from_the_baseline_before() -> None:
    x = np.full(1800, 97.0)  # half an hour at 1 Hz, lights off at 300 s (epoch 10)
    _dip(x, 320, 5.0, fall_s=5, hold_s=15, rise_s=5)  # 20 s after lights off
    _dip(x, 200, 5.0, fall_s=5, hold_s=15, rise_s=5)  # and one before: not counted
    m = spo2_measures(x, np.full(60, 2), 30.0, in_bed=slice(10, 60))
    assert m["n_desaturations_3"] == 1 and m["spo2_valid_sleep_h"] == pytest.approx(1500 / 3600)
    assert m["spo2_min"] == pytest.approx(92.0)
    awake = spo2_measures(x, None, 30.0, in_bed=slice(10, 60))  # without stages: the time in bed
    assert awake["n_desaturations_3"] == 1 and awake["spo2_valid_sleep_h"] == pytest.approx(1500 / 3600)


def test_no_valid_spo2_gives_undefined_measures() -> None:
    m = spo2_measures(np.zeros(600), np.full(20, 2))
    assert np.isnan(m["ODI3"]) and np.isnan(m["T90_min"]) and np.isnan(m["spo2_mean"])


def test_hypopneas_are_confirmed_by_a_following_desaturation_or_an_arousal() -> None:
    events = pd.DataFrame({"onset_s": [100.0, 400.0, 800.0, 1200.0], "duration_s": [20.0, 20.0, 20.0, 30.0],
                           "event": ["hypopnea", "hypopnea", "hypopnea", "apnea_obstructive"]})
    desaturations = pd.DataFrame({"onset_s": [135.0, 465.0, 1240.0], "duration_s": [30.0, 30.0, 40.0],
                                  "drop_pct": [4.0, 5.0, 7.0]})
    arousals = pd.DataFrame({"onset_s": [822.0], "duration_s": [5.0]})
    out = confirm_hypopneas(events, desaturations, arousals)
    # 135 s is 15 s after the first ends (within the 30-s lag); 465 s is 45 s after the second
    assert list(out["confirmed_by"]) == ["desaturation", "", "arousal", ""]
    assert out["desaturation_pct"].iloc[0] == 4.0 and np.isnan(out["desaturation_pct"].iloc[1])
    assert out["desaturation_pct"].iloc[3] == 7.0  # apneas keep their desaturation, unconfirmed by design
    exactly = confirm_hypopneas(events.iloc[:1], desaturations.assign(drop_pct=[3.0, 5.0, 7.0]))
    assert list(exactly["confirmed_by"]) == ["desaturation"]  # AASM: a drop of at least 3 %
    without_spo2 = confirm_hypopneas(events, None)
    assert (without_spo2["confirmed_by"] == "").all() and without_spo2["desaturation_pct"].isna().all()


def test_indices_of_a_hand_built_night() -> None:
    # 2 h: 20 min wake, 60 min N2, 30 min REM, 10 min wake
    stages = np.r_[np.zeros(40), np.full(120, 2), np.full(60, 4), np.zeros(20)].astype(int)
    rows = [(300, 20, "apnea_obstructive"),  # in wake: not counted
            (1300, 20, "apnea_obstructive"), (1500, 30, "apnea_obstructive"), (2000, 15, "apnea_central"),
            (2500, 25, "apnea_mixed"), (3000, 12, "hypopnea"), (3500, 18, "hypopnea"),  # NREM: 6
            (5000, 40, "apnea_obstructive"), (5300, 20, "hypopnea"), (5600, 16, "apnea"),  # REM: 3
            (6700, 10, "hypopnea"),  # wake again
            (3100, 10, "arousal"), (3200, 30, "desaturation")]  # not respiratory events
    events = pd.DataFrame(rows, columns=["onset_s", "duration_s", "event"])
    ix = respiratory_indices(events, stages)
    assert ix["tst_hours"] == 1.5 and ix["rem_hours"] == 0.5 and ix["nrem_hours"] == 1.0
    assert ix["n_events"] == 9
    assert ix["AHI"] == pytest.approx(9 / 1.5) and ix["severity"] == "mild"
    assert ix["AHI_NREM"] == pytest.approx(6.0) and ix["AHI_REM"] == pytest.approx(6.0)
    assert ix["AI"] == pytest.approx(6 / 1.5) and ix["HI"] == pytest.approx(3 / 1.5)
    assert ix["OAI"] == pytest.approx(3 / 1.5) and ix["CAI"] == pytest.approx(1 / 1.5)
    assert ix["MAI"] == pytest.approx(1 / 1.5)
    assert ix["counts"] == {"apnea_obstructive": 3, "apnea_central": 1, "apnea_mixed": 1, "apnea": 1,
                            "hypopnea": 3}
    assert ix["mean_duration_s"]["apnea_obstructive"] == pytest.approx(30.0)
    assert ix["max_duration_s"]["hypopnea"] == 20.0
    assert "unspecified type" in ix["note"]


def test_the_aasm_hypopnea_rules_count_hypopneas_by_their_desaturation() -> None:
    # one hour of N2: an apnea without a desaturation, hypopneas followed by 5 %, 4 %, 3.5 % and
    # 2 % drops, one with an arousal only, and one in wake (not counted)
    events = pd.DataFrame({"onset_s": [100.0, 500.0, 900.0, 1300.0, 1700.0, 2100.0, 3650.0],
                           "duration_s": [20.0] * 7,
                           "event": ["apnea_obstructive"] + ["hypopnea"] * 6})
    desaturations = pd.DataFrame({"onset_s": [525.0, 925.0, 1325.0, 1725.0, 3660.0], "duration_s": [30.0] * 5,
                                  "drop_pct": [5.0, 4.0, 3.5, 2.0, 6.0]})
    arousals = pd.DataFrame({"onset_s": [2110.0], "duration_s": [5.0]})
    confirmed = confirm_hypopneas(events, desaturations, arousals)
    stages = np.r_[np.full(120, 2), np.zeros(10)]
    ix = respiratory_indices(confirmed, stages, desaturations_measured=True)
    assert ix["AHI"] == pytest.approx(6.0)  # every hypopnea in sleep
    assert ix["AHI_3pct"] == pytest.approx(5.0)  # the 2 % drop confirms nothing; the arousal does
    assert ix["AHI_4pct"] == pytest.approx(3.0)  # the apnea, the 5 % and the 4 % drops
    assert "AHI_4pct" not in respiratory_indices(confirmed, stages)  # no SpO2: no rule can be applied


def test_a_night_without_staging_gets_the_rei_over_the_recording() -> None:
    events = pd.DataFrame({"onset_s": [100.0, 1000.0, 2000.0, 3000.0], "duration_s": [20.0, 15.0, 12.0, 10.0],
                           "event": ["apnea_obstructive", "hypopnea", "hypopnea", "arousal"]})
    ix = respiratory_indices(events, np.full(120, -1))  # one hour, no stage model
    assert not ix["staged"] and np.isnan(ix["AHI"]) and ix["REI"] == pytest.approx(3.0)
    assert ix["severity"] == "normal" and ix["n_events"] == 3 and ix["counts"]["hypopnea"] == 2
    assert describe_respiratory(ix) == "REI 3.0/h (normal) over the time in bed"
    staged = respiratory_indices(events, np.full(120, 2))  # the same hour staged N2: the AHI, no REI
    assert staged["staged"] and np.isnan(staged["REI"]) and describe_respiratory(staged) == "AHI 3.0/h (normal)"


def test_indices_without_sleep_are_undefined() -> None:
    events = pd.DataFrame({"onset_s": [10.0], "duration_s": [12.0], "event": ["hypopnea"]})
    ix = respiratory_indices(events, np.zeros(20, dtype=int))
    assert np.isnan(ix["AHI"]) and ix["severity"] == "unknown" and ix["n_events"] == 0
    assert describe_respiratory(ix) == "AHI not estimated"  # staged all awake: no sleep, not "no staging"
    with pytest.raises(ValueError, match="no epochs"):
        respiratory_indices(events, np.zeros(0, dtype=int))
