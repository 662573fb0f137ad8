"""Scoring a night: the result object, AASM statistics, exports, report, and the commands."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import embed_stages

from synthsleepnet import CheckpointError, PreprocessingConfig
from synthsleepnet._config import get_preset
from synthsleepnet.cli import main
from synthsleepnet.export import export_all, write_hrv_segments_csv
from synthsleepnet.models import CheckpointMeta, ModelSpec, build_model, save_checkpoint
from synthsleepnet.positional import epoch_positions
from synthsleepnet.report import _html, plot_report, write_report
from synthsleepnet.respiratory import severity_band
from synthsleepnet.score_files import score_night, score_nights
from synthsleepnet.scoring import ScoringResult, embed_epochs, score_recording
from synthsleepnet.simulate import simulate_night
from synthsleepnet.stats import scoring_statistics, sleep_statistics
from synthsleepnet.tasks import RESPIRATORY_EVENTS

CHANNELS = ["C4-M1", "E1-M2", "Chin", "ECG"]


@pytest.fixture(scope="module")
def scorers(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Untrained fast stage (sequence), apnea and hypopnea (epoch) checkpoints: scoring mechanics only."""
    out = tmp_path_factory.mktemp("scorers")
    paths = []
    for task, context, n in (("stage", "sequence", 5), ("apnea", "epoch", 2), ("hypopnea", "epoch", 2)):
        torch.manual_seed(len(paths))
        spec = ModelSpec("sleep_classifier", get_preset("fast"), tuple(CHANNELS), n, context)
        phase = "finetune" if context == "sequence" else "probe"
        meta = CheckpointMeta(phase=phase, spec=spec, task=task, preprocessing=PreprocessingConfig())
        paths.append(save_checkpoint(out / f"{task}.safetensors", build_model(spec), meta))
    return paths


# --- AASM statistics, clause by clause -----------------------------------------------------
H = np.array([0, 0, 0, 1, 2, 2, 0, 0, 2, 3, 3, 4, 4, 0, 2, -1, 2, 0, 0])


def test_tst_counts_sleep_stages_only() -> None:
    assert sleep_statistics(H)["TST_min"] == 10 * 0.5  # N1 1 + N2 5 + N3 2 + R 2; unscored is not sleep


def test_sleep_onset_latency_is_time_to_first_sleep_epoch() -> None:
    assert sleep_statistics(H)["SOL_min"] == 1.5


def test_waso_is_wake_between_sleep_onset_and_last_sleep() -> None:
    s = sleep_statistics(H)
    assert s["WASO_min"] == 1.5 and s["SPT_min"] == 14 * 0.5 and s["awakenings"] == 2


def test_rem_latency_is_measured_from_sleep_onset() -> None:
    assert sleep_statistics(H)["R_latency_min"] == (11 - 3) * 0.5


def test_efficiency_and_stage_percentages() -> None:
    s = sleep_statistics(H)
    assert s["SE_pct"] == pytest.approx(100 * 5 / 9.5)
    assert s["N2_pct"] == pytest.approx(50.0) and s["unscored_min"] == 0.5
    assert s["N1_pct"] + s["N2_pct"] + s["N3_pct"] + s["R_pct"] == pytest.approx(100)


def test_lights_marks_bound_time_in_bed() -> None:
    s = sleep_statistics(H, lights_off_s=60, lights_on_s=16 * 30)
    assert s["TIB_min"] == 7.0 and s["SOL_min"] == 0.5
    assert sleep_statistics(H, lights_off_s=75, lights_on_s=16 * 30)["TIB_min"] == 7.0  # the epoch lights go off in


def test_lights_on_must_come_after_lights_off() -> None:
    import datetime as dt

    from synthsleepnet.stats import place_lights

    start = dt.datetime(2024, 1, 1, 22, 0)
    assert place_lights((dt.time(22, 30), None), start, 9 * 3600, marked=(None, 30000.0)) == (1800.0, 30000.0)
    with pytest.raises(ValueError, match=r"night\.edf: lights on \(22:30:00\) is not after lights off"):
        place_lights((dt.time(22, 30), dt.time(22, 30)), start, 9 * 3600, source="night.edf")


def test_all_wake_night_gives_nan_not_zero() -> None:
    s = sleep_statistics(np.zeros(100, dtype=int))
    assert s["TST_min"] == 0 and s["SE_pct"] == 0
    assert all(math.isnan(s[k]) for k in ("SOL_min", "WASO_min", "R_latency_min", "N2_pct"))


def test_absent_rem_gives_nan_latency() -> None:
    assert math.isnan(sleep_statistics(np.array([0, 1, 2, 3, 2, 0]))["R_latency_min"])


def test_bad_stage_codes_are_refused() -> None:
    with pytest.raises(ValueError, match=r"stage codes must be .* got \[7\]"):
        sleep_statistics(np.array([0, 7]))


@pytest.mark.parametrize(("ahi", "band"), [(0, "normal"), (4.99, "normal"), (5, "mild"), (15, "moderate"),
                                            (29.9, "moderate"), (30, "severe"), (float("nan"), "unknown")])
def test_severity_bands(ahi: float, band: str) -> None:
    assert severity_band(ahi) == band


def test_stats_on_real_hypnograms_follow_the_definitions(real_data: Path) -> None:
    from synthsleepnet import read_scoring

    for path in [real_data / "hmc" / "SN001_sleepscoring.edf",
                 *sorted((real_data / "sleep-edf" / "hypnograms").glob("*.edf"))[:5]]:
        scoring = read_scoring(path)
        s = sleep_statistics(scoring.stages)
        sleep = np.flatnonzero(scoring.stages > 0)
        assert s["TST_min"] == pytest.approx(sleep.size / 2)
        assert s["SOL_min"] == pytest.approx(sleep[0] / 2)
        spt = scoring.stages[sleep[0]:sleep[-1] + 1]
        assert s["WASO_min"] == pytest.approx(np.sum(spt == 0) / 2)


# --- scoring ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def scored(scorers: list[Path], sim_dir: Path) -> ScoringResult:
    return score_recording(sim_dir / "sim-0011.edf", scorers, annotations=sim_dir / "sim-0011-nsrr.xml")


def test_scoring_result_is_consistent(scored: ScoringResult, sim_dir: Path) -> None:
    assert scored.n_epochs == 80  # 40 min × 2 epochs per minute: epochs × 30 s = recording length
    np.testing.assert_allclose(scored.stage_proba.sum(1), 1.0, rtol=1e-5)
    assert set(scored.stages) <= {"W", "N1", "N2", "N3", "R"}
    assert scored.channels_used == CHANNELS and scored.modalities_used == ["eeg", "eog", "emg", "ecg"]
    resp = scored.respiratory()
    tst_h = np.count_nonzero(scored.as_int() > 0) * 30 / 3600
    assert resp["AHI"] == pytest.approx(resp["n_events"] / tst_h) if tst_h else math.isnan(resp["AHI"])
    assert {"ODI3", "ODI4", "T90_min", "spo2_min"} <= set(resp)  # the simulated night has SpO2
    if tst_h:  # so its hypopneas are also counted by the AASM rules, fewer as the rule asks more
        assert resp["AHI_4pct"] <= resp["AHI_3pct"] <= resp["AHI"]
    assert scored.agreement()["n_epochs"] == 80
    gaps = dataclasses.replace(scored, stages=["UNS"] * 5 + scored.stages[5:])  # epochs without data
    assert gaps.agreement()["n_epochs"] == 75  # not counted as Wake
    unstaged = dataclasses.replace(scored, stage_proba=None, stages=["UNS"] * 80)  # no stage model
    assert unstaged.agreement() is None
    assert unstaged.respiratory()["REI"] == pytest.approx(len(unstaged.respiratory_events()) / (80 * 30 / 3600))
    # the NSRR scoring covers respiratory events: they are the reference for the predicted ones
    assert scored.reference_events and {e[2] for e in scored.reference_events} <= set(RESPIRATORY_EVENTS)
    assert scored.event_agreement()["n_true_events"] == len(scored.reference_events)
    # its arousals and the depths of its desaturations came with it: the reference's rule AHIs are its scorer's
    assert scored.reference_arousals and scored.reference_desaturations
    agreement = scored.event_agreement()
    assert agreement["reference_desaturations_from"] == "the scoring"
    scorers_own = scoring_statistics(sim_dir / "sim-0011-nsrr.xml")  # what `stats` says of that file
    assert [agreement[f"{key}_reference"] for key in ("AHI", "AHI_3pct", "AHI_4pct")] == pytest.approx(
        [scorers_own[key] for key in ("AHI", "AHI_3pct", "AHI_4pct")])


def test_json_round_trip_keeps_everything(scored: ScoringResult) -> None:
    again = ScoringResult.from_json(scored.to_json())
    assert again.start == scored.start and again.start.tzinfo is not None
    assert again.models == scored.models and again.stages == scored.stages and again.notes == scored.notes
    np.testing.assert_array_equal(again.stage_proba, scored.stage_proba)
    np.testing.assert_array_equal(again.event_proba["apnea"], scored.event_proba["apnea"])
    assert (again.reference_events, again.reference_arousals, again.reference_desaturations) == (
        scored.reference_events, scored.reference_arousals, scored.reference_desaturations)
    assert json.dumps(again.summary()) == json.dumps(scored.summary())  # NaN (undefined indices) included


def test_as_int_with_explicit_mapping(scored: ScoringResult) -> None:
    custom = {"W": 0, "N1": 1, "N2": 2, "N3": 3, "R": 5, "UNS": -2}
    codes = scored.as_int(custom)
    assert set(codes) <= {0, 1, 2, 3, 5}
    assert (codes[np.array(scored.stages) == "R"] == 5).all()


def test_stats_method_delegates_to_the_function(scored: ScoringResult) -> None:
    assert scored.sleep_statistics() == sleep_statistics(scored.as_int(), scored.epoch_s)


def test_exports_exist_and_agree(scored: ScoringResult, tmp_path: Path) -> None:
    mne = pytest.importorskip("mne")
    paths = export_all(scored, tmp_path)
    epochs = pd.read_csv(paths["epochs"])
    assert len(epochs) == scored.n_epochs and list(epochs["stage"]) == scored.stages
    assert {"p_W", "p_N1", "p_N2", "p_N3", "p_R", "confidence", "p_apnea", "apnea_flag"} <= set(epochs)
    summary = json.loads(paths["summary"].read_text())  # strict JSON
    assert summary["statistics"]["TST_min"] == pytest.approx((epochs["stage"] != "W").sum() / 2)
    bids = pd.read_csv(paths["bids"], sep="\t")
    assert list(bids.columns) == ["onset", "duration", "trial_type"]
    stage_rows = bids[bids["trial_type"].str.startswith("Sleep stage")]
    assert stage_rows["duration"].sum() == pytest.approx(scored.n_epochs * 30)
    annotations = mne.read_annotations(paths["edf"])
    assert len(annotations) == len(bids)
    lines = paths["edfbrowser"].read_text().splitlines()
    assert lines[0] == "Onset,Duration,Annotation" and len(lines) == len(bids) + 1
    events = pd.read_csv(paths["respiratory"])
    assert list(events.columns[:4]) == ["onset_s", "time", "duration_s", "event"]
    segments = pd.read_csv(paths["hrv"])  # the simulated night has an ECG
    assert list(segments.columns) == ["onset_s", "time", "kind", "stages", "intervals", "nn_coverage_pct",
                                      "HR_mean_bpm", "SDNN_ms", "RMSSD_ms"]
    assert len(segments) == len(scored.hrv_segments()) and (segments["onset_s"] % 300 == 0).all()
    no_ecg = dataclasses.replace(scored, heart_rate=None, r_peaks=None)  # a night without an ECG: a header only
    write_hrv_segments_csv(no_ecg, tmp_path / "no-ecg.csv")
    assert pd.read_csv(tmp_path / "no-ecg.csv").columns.tolist() == segments.columns.tolist()
    assert no_ecg.hrv_segments().empty
    assert len(events) == len(scored.respiratory_events()) and {"desaturation_pct", "confirmed_by"} <= set(events)
    desaturations = bids[bids["trial_type"].str.startswith("SpO2 desaturation")]
    assert len(desaturations) == len(scored.desaturations()) > 0
    with pytest.raises(FileExistsError, match="pass overwrite=True"):
        export_all(scored, tmp_path)


def test_report_png_and_self_contained_html(scored: ScoringResult, tmp_path: Path) -> None:
    png, html = write_report(scored, tmp_path)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = html.read_text()
    assert "data:image/png;base64," in text and "Total sleep time" in text and "AHI" in text
    assert "agreement" in text.lower() and "src=\"http" not in text
    assert "<h2>Heart rate</h2>" in text and "Highest in the recording" in text  # the simulated night has an ECG
    assert "Sleep above 90 / below 40 bpm (30-s epochs)" in text
    assert "HRV RMSSD in wake / NREM / R (5-min segments)" in text and "5-min segments in wake / NREM / R" in text
    titles = [ax.get_title("left") for ax in plot_report(scored).axes]
    assert any(t.startswith("heart rate in sleep") and "; RMSSD NREM " in t for t in titles)
    assert "no usable ECG (see the notes)" in _html(dataclasses.replace(scored, heart_rate=None), b"")


def test_the_nights_heart_rate_comes_from_its_ecg(scored: ScoringResult) -> None:
    assert scored.heart_rate is not None and len(scored.heart_rate) == scored.n_epochs * 30
    cardiac = scored.cardiac()
    assert cardiac is not None and 40 < cardiac["HR_max_recording"] < 130  # the simulator's 40-130 bpm
    assert cardiac["HR_known_sleep_pct"] == 100.0 or math.isnan(cardiac["HR_known_sleep_pct"])  # a clean ECG
    per_epoch = scored.to_dataframe()["heart_rate_bpm"].to_numpy()
    assert per_epoch[3] == pytest.approx(np.mean(scored.heart_rate[90:120]), abs=0.05)
    gaps = [math.nan] * 30 + [math.nan] * 10 + [60.0] * 20 + [70.0] * 30  # an epoch without one, one a third without
    np.testing.assert_array_equal(dataclasses.replace(scored, heart_rate=gaps).to_dataframe()["heart_rate_bpm"][:4],
                                  [math.nan, 60.0, 70.0, math.nan])  # the last epochs: beyond the trace
    assert json.dumps(scored.summary()["cardiac"]) == json.dumps(cardiac)  # NaN where the night has no such stage
    assert dataclasses.replace(scored, heart_rate=None).summary()["cardiac"] is None
    np.testing.assert_array_equal(ScoringResult.from_json(scored.to_json()).heart_rate, scored.heart_rate)
    assert scored.r_peaks is not None  # the beats are kept: the heart rate is theirs, and so is its variability
    assert 60 / np.median(np.diff(scored.r_peaks)) == pytest.approx(np.nanmedian(scored.heart_rate), abs=1.0)
    np.testing.assert_array_equal(ScoringResult.from_json(scored.to_json()).r_peaks, scored.r_peaks)
    assert {f"HRV_{m}_{kind}" for m in ("SDNN", "RMSSD", "segments") for kind in ("W", "NREM", "R")} <= set(cardiac)
    measured = [kind for kind in ("W", "NREM", "R") if cardiac[f"HRV_segments_{kind}"]]
    assert measured and all(5 < cardiac[f"HRV_RMSSD_{kind}"] < 300 for kind in measured)  # 40 minutes: some segments
    assert "HRV_RMSSD_NREM" not in (dataclasses.replace(scored, r_peaks=None).cardiac() or {})  # results saved before


def test_the_nights_body_position_comes_from_its_position_channel(scored: ScoringResult) -> None:
    truth = simulate_night(11, hours=40 / 60, ahi=30.0).body_position  # the simulated night's, as designed
    assert truth is not None
    np.testing.assert_array_equal(scored.body_position, truth)
    position = scored.position()
    assert position is not None and json.dumps(scored.summary()["position"]) == json.dumps(position)
    stats = scored.sleep_statistics()
    assert sum(position["sleep_min"].values()) == pytest.approx(stats["TST_min"])  # every second's position known
    assert scored.to_dataframe()["position"].tolist() == epoch_positions(truth, scored.n_epochs)
    supine = dataclasses.replace(scored, body_position=[0] * len(truth)).position()  # a night spent supine:
    assert supine is not None and stats["TST_min"] >= 15  # its supine AHI is the night's AHI, same events and bed
    resp = scored.respiratory()
    assert supine["AHI_supine"] == pytest.approx(resp["AHI"])
    assert (supine["AHI_3pct_supine"], supine["AHI_4pct_supine"]) == pytest.approx((resp["AHI_3pct"], resp["AHI_4pct"]))
    asleep = dataclasses.replace(scored, body_position=[0] * len(truth), reference=["N2"] * scored.n_epochs)
    compared = asleep.event_agreement()  # and the reference's, over a reference hypnogram long enough to tell
    assert compared is not None and compared["AHI_supine_reference"] == pytest.approx(compared["AHI_reference"])
    assert compared["AHI_supine"] == pytest.approx(compared["AHI"])
    assert math.isnan(compared["AHI_nonsupine_reference"])  # no sleep off the back
    assert "AHI supine / non-supine vs reference" in _html(scored, b"")
    assert "<h2>Sleep by body position</h2>" in _html(scored, b"") and "Position changes in bed" in _html(scored, b"")
    unknown = dataclasses.replace(scored, body_position=None)
    assert unknown.summary()["position"] is None and "no position channel with known codes" in _html(unknown, b"")
    assert ScoringResult.from_json(scored.to_json()).body_position == scored.body_position


def test_report_figure_keeps_every_label_title_and_legend_inside_the_page(scored: ScoringResult) -> None:
    fig = plot_report(scored)  # fixed margins, not tight_layout: nothing may be cut off
    renderer = fig.canvas.get_renderer()
    page = fig.bbox
    for ax in fig.axes:
        box = ax.get_tightbbox(renderer)
        assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1, ax.get_ylabel()
    boxes = [ax.get_tightbbox(renderer) for ax in fig.axes]
    assert not any(upper.y0 < lower.y1 for upper, lower in itertools.pairwise(boxes))  # titles clear the axes above



def test_lights_marks_bound_the_nights_statistics_and_indices(scored: ScoringResult) -> None:
    # dozing before lights off (epochs 0-1) and after lights on (16-19); one hypopnea in each part
    stages = ["N2"] * 2 + ["W"] * 2 + ["N2"] * 10 + ["W"] * 2 + ["N2"] * 4
    flags = np.zeros(20)
    flags[[0, 6, 17]] = 0.9
    proba = np.eye(5)[[["W", "N1", "N2", "N3", "R"].index(x) for x in stages]]
    seconds = np.arange(600)
    spo2 = 97 - np.clip(np.minimum(seconds - 360, 389 - seconds), 0, 12)  # down to 85 % in epoch 12, in bed
    spo2 = spo2 - np.clip(np.minimum(seconds - 65, 85 - seconds), 0, 5)  # and to 92 % just after lights off
    night = dataclasses.replace(scored, stages=stages, stage_proba=proba, event_proba={"hypopnea": flags},
                                second_proba=None, spo2=spo2.astype(float).tolist(), reference=None,
                                reference_events=None, lights_off_s=None, lights_on_s=None)
    whole = night.sleep_statistics(), night.respiratory()
    assert whole[0]["TST_min"] == 8.0 and whole[1]["AHI"] == pytest.approx(3 / (8 / 60))
    bounded = dataclasses.replace(night, lights_off_s=60.0, lights_on_s=480.0)
    stats, resp = bounded.sleep_statistics(), bounded.respiratory()
    assert (stats["TIB_min"], stats["TST_min"], stats["SOL_min"]) == (7.0, 5.0, 1.0)
    assert stats["SE_pct"] == pytest.approx(100 * 5 / 7)
    assert resp["AHI"] == pytest.approx(1 / (5 / 60))  # the hypopnea in bed, over sleep in bed
    assert resp["spo2_min"] == 85.0  # SpO2 second by second on the in-bed hypnogram
    scored_too = dataclasses.replace(bounded, reference=stages, reference_events=[
        (o * 30.0, 30.0, "hypopnea") for o in (0, 6, 17)]).event_agreement()
    assert scored_too is not None and scored_too["AHI"] == scored_too["AHI_reference"] == pytest.approx(12.0)
    unstaged = dataclasses.replace(bounded, stage_proba=None, stages=["UNS"] * 20).respiratory()
    assert unstaged["REI"] == pytest.approx(1 / (7 / 60))  # without stages: events in bed per hour in bed
    assert unstaged["n_desaturations_3"] == 2  # the dip after lights off, measured from the baseline before it
    reread = ScoringResult.from_json(bounded.to_json()).sleep_statistics()  # result.json keeps the marks
    assert (reread["TIB_min"], reread["SOL_min"]) == (7.0, 1.0)
    # the simulated recording marks lights off at its start and on at its last second (its NSRR scoring does not)
    assert (scored.lights_off_s, scored.lights_on_s) == (0.0, 2399.0)
    assert any(re.match(r"lights off at \d\d:\d\d:\d\d, lights on at", note) for note in scored.notes), scored.notes



def test_lights_given_as_clock_times_replace_the_recordings_marks(scorers: list[Path], sim_dir: Path,
                                                                  scored: ScoringResult,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    import datetime as dt

    start = scored.start  # the recording's clock; it runs 40 minutes
    clock = [f"{start + dt.timedelta(minutes=m):%H:%M}" for m in (10, 30)]
    result = score_recording(sim_dir / "sim-0011.edf", scorers, lights=(clock[0], clock[1]))
    assert (result.lights_off_s, result.lights_on_s) == (600.0, 1800.0)
    assert result.sleep_statistics()["TIB_min"] == 20.0
    assert any(f"lights off at {clock[0]}:00, lights on at {clock[1]}:00 (as given)" in n for n in result.notes)
    with pytest.raises(ValueError, match=r"sim-0011\.edf: lights on at .* is not within the night"):
        score_recording(sim_dir / "sim-0011.edf", scorers,
                        lights=(None, f"{start + dt.timedelta(minutes=50):%H:%M}"))
    with pytest.raises(ValueError, match=r"lights on must be HH:MM or HH:MM:SS \(24-hour\), got '7pm'"):
        score_recording(sim_dir / "sim-0011.edf", scorers, lights=("22:00", "7pm"))
    with pytest.raises(SystemExit):
        main(["score", str(sim_dir / "sim-0011.edf"), "--model", str(scorers[0]), "--out", "unused",
              "--lights-off", "24:10"])
    assert "'24:10' is not a time of day" in capsys.readouterr().err



def test_the_reference_ahi_is_given_by_the_hypopnea_rules_too(scored: ScoringResult) -> None:
    # ten minutes of N2, three hypopneas each side: followed by a 5 % drop, a 3.5 % drop, none
    seconds = np.arange(600)
    spo2 = 97.0 - np.clip(np.minimum(seconds - 95, 125 - seconds), 0, 5) \
        - np.clip(np.minimum(seconds - 275, 305 - seconds), 0, 3.5)
    flags = np.zeros(20)
    flags[[2, 8, 14]] = 0.9
    night = dataclasses.replace(scored, stages=["N2"] * 20, stage_proba=np.eye(5)[[2] * 20], reference=["N2"] * 20,
                                event_proba={"hypopnea": flags}, second_proba=None, spo2=spo2.tolist(),
                                reference_events=[(62.0, 20.0, "hypopnea"), (245.0, 15.0, "hypopnea"),
                                                  (425.0, 15.0, "hypopnea")], lights_off_s=None, lights_on_s=None,
                                reference_arousals=None, reference_desaturations=None)
    events = night.event_agreement()
    assert events is not None
    assert (events["AHI_reference"], events["AHI_3pct_reference"], events["AHI_4pct_reference"]) == (18.0, 12.0, 6.0)
    assert events["reference_desaturations_from"] == "this night's SpO2"
    assert (events["AHI"], events["AHI_3pct"], events["AHI_4pct"]) == (18.0, 12.0, 6.0)
    assert "AHI_4pct_reference" not in dataclasses.replace(night, spo2=None).event_agreement()  # no SpO2, no rule
    # A scoring that states its desaturations (NSRR XML) is counted as its scorer linked them:
    # 4.2 % after the first hypopnea, 4.4 % after the third (our SpO2 fell 3.5 % after the second
    # and not after the third); an arousal of its own confirms the second by the 3 % rule.
    scorers = dataclasses.replace(night, reference_desaturations=[(90.0, 20.0, 4.2), (440.0, 15.0, 4.4)])
    events = scorers.event_agreement()
    assert (events["AHI_reference"], events["AHI_3pct_reference"], events["AHI_4pct_reference"]) == (18.0, 12.0, 12.0)
    assert events["reference_desaturations_from"] == "the scoring"
    assert (events["AHI"], events["AHI_3pct"], events["AHI_4pct"]) == (18.0, 12.0, 6.0)  # ours: this night's SpO2
    aroused = dataclasses.replace(scorers, reference_arousals=[(262.0, 5.0)]).event_agreement()
    assert (aroused["AHI_3pct_reference"], aroused["AHI_4pct_reference"]) == (18.0, 12.0)
    no_spo2 = dataclasses.replace(scorers, spo2=None).event_agreement()  # the scoring's rules need no SpO2
    assert no_spo2["AHI_4pct_reference"] == 12.0 and "AHI_4pct" not in no_spo2
    html = _html(dataclasses.replace(scorers, spo2=None), b"")
    assert ("n/a vs 12.0 /h (the reference's hypopneas confirmed by desaturations from the scoring)"
            in html.replace("&#x27;", "'"))


def test_report_greys_the_recording_outside_lights_off_to_on(scored: ScoringResult) -> None:
    def grey_spans(result: ScoringResult) -> list[str]:
        return [p.get_label() for p in plot_report(result).axes[0].patches]

    assert grey_spans(scored) == []  # the simulated recording runs from lights off to lights on
    bounded = dataclasses.replace(scored, lights_off_s=600.0, lights_on_s=1800.0)
    assert grey_spans(bounded) == ["lights on", None]  # before lights off, after lights on; one legend entry



def test_an_edf_that_embeds_its_scoring_is_compared_with_it(scorers: list[Path], sim_dir: Path,
                                                              scored: ScoringResult, tmp_path: Path) -> None:
    # the same night, its NSRR scoring's stages written into it
    embedded = embed_stages(sim_dir / "sim-0011.edf", sim_dir / "sim-0011-nsrr.xml", tmp_path / "embedded.edf")
    own = score_recording(embedded, scorers)
    assert own.reference == scored.reference and scored.reference is not None
    assert own.agreement() == scored.agreement()
    assert "the recording's own stage annotations are its scoring" in own.notes


def test_spo2_stored_as_a_fraction_gives_the_same_measures(scorers: list[Path], sim_dir: Path,
                                                             scored: ScoringResult, tmp_path: Path) -> None:
    import edfio

    edf = edfio.read_edf(sim_dir / "sim-0011.edf")
    spo2 = edf.get_signal("SpO2")
    edf.drop_signals(["SpO2"])  # written again as an export that stores saturation as 0–1
    edf.append_signals(edfio.EdfSignal(spo2.data / 100, spo2.sampling_frequency, label="SpO2", physical_range=(0, 1)))
    edf.write(tmp_path / "fraction.edf")
    fraction = score_recording(tmp_path / "fraction.edf", scorers, annotations=sim_dir / "sim-0011-nsrr.xml")
    ours, theirs = fraction.respiratory(), scored.respiratory()
    assert ours["ODI3"] == theirs["ODI3"] and ours["spo2_min"] == pytest.approx(theirs["spo2_min"], abs=0.05)
    assert "channel 'SpO2' holds SpO2 as a fraction (median 0.95): read as % (× 100)" in fraction.notes


def test_mne_annotations(scored: ScoringResult) -> None:
    pytest.importorskip("mne")
    annotations = scored.to_mne_annotations()
    assert annotations.orig_time is not None and annotations.description[0].startswith("Sleep stage")


def test_sleep_edf_file_still_scores_and_says_what_it_could_not_use(scorers: list[Path], real_data: Path) -> None:
    result = score_recording(real_data / "sleep-edf" / "short_psg.edf", scorers,
                             annotations=real_data / "sleep-edf" / "hypnograms" / "SC4001EC-Hypnogram.edf")
    assert result.n_epochs == 10 and result.reference == ["W"] * 10
    assert result.modalities_used == ["eeg", "eog"]
    assert set(result.channels_missing) == {"Chin", "ECG"}
    notes = " ".join(result.notes)
    assert "Fpz-Cz used in place of C4-M1" in notes and "too low" in notes
    assert not any("ECG" in note for note in result.notes)  # said once, as channels_missing, not again as a note


def test_score_stats_and_embed_commands(scorers: list[Path], sim_dir: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str], real_data: Path) -> None:
    args = ["score", str(sim_dir / "sim-0012.edf"), *[a for p in scorers for a in ("--model", str(p))],
            "--annotations", str(sim_dir / "sim-0012-nsrr.xml"), "--out", str(tmp_path / "scored")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "modalities used eeg, eog, emg, ecg" in out and "agreement with" in out and "report.html" in out
    assert re.search(r"AHI \d+\.\d/h \((normal|mild|moderate|severe)\)", out), out
    assert re.search(r"; (heart rate in sleep \d+ bpm \(\d+–\d+\)|no heart rate in sleep)$", out, re.M), out
    assert main(args) == 2  # outputs exist: refused before scoring, with a message
    assert main(["stats", str(real_data / "hmc" / "SN001_sleepscoring.edf"), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["TST_min"] == pytest.approx((854 - 151) / 2, abs=30)  # lights marks bound TIB
    assert main(["embed", str(sim_dir / "sim-0013.edf"), "--model", str(scorers[0]),
                 "--out", str(tmp_path / "emb.parquet")]) == 0
    table = pd.read_parquet(tmp_path / "emb.parquet")
    assert len(table) == 80 and table.shape[1] == 3 + 64


def test_a_fresh_score_process_prepares_the_night_in_a_worker(scorers: list[Path], sim_dir: Path,
                                                              tmp_path: Path) -> None:
    """The command reads the night in a forked worker while torch loads, and the worker draws the report
    while the exports are written: same outputs; errors still name the file."""
    code = (
        "import sys\n"
        "from synthsleepnet.models import read_checkpoint_meta\n"
        "from synthsleepnet import score_files\n"
        "assert read_checkpoint_meta(sys.argv[4]).channels and 'torch' not in sys.modules, 'torch was imported'\n"
        "handed = []\n"
        "original = score_files._ReadAhead.result\n"
        "score_files._ReadAhead.result = lambda self: handed.append(self.handoff.exists()) or original(self)\n"
        "from synthsleepnet.cli import main\n"
        "models = [a for p in sys.argv[4:] for a in ('--model', p)]\n"
        "assert main(['score', sys.argv[1], '--annotations', sys.argv[2], '--out', sys.argv[3], *models]) == 0\n"
        "assert handed == [True], 'the night was not prepared in a worker and handed over in a file'\n"
        "assert 'matplotlib' not in sys.modules, 'the report was not drawn in the worker'\n"
        "assert 'scipy' not in sys.modules, 'SciPy was imported: only the worker needs it'\n"
        "assert main(['score', sys.argv[1] + '.missing', '--out', sys.argv[3] + '-bad', *models]) == 2\n"
    )
    edf, xml = sim_dir / "sim-0012.edf", sim_dir / "sim-0012-nsrr.xml"
    proc = subprocess.run([sys.executable, "-c", code, str(edf), str(xml), str(tmp_path / "worker"),
                           *map(str, scorers)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "sim-0012.edf.missing" in proc.stderr and "Traceback" not in proc.stderr
    score_night(edf, scorers, tmp_path / "here", annotations=xml)  # torch is imported: no worker
    for name in ("epochs.csv", "events.tsv", "respiratory_events.csv", "hrv_segments.csv"):
        assert (tmp_path / "worker" / name).read_bytes() == (tmp_path / "here" / name).read_bytes()
    assert {p.name for p in (tmp_path / "worker").iterdir()} == {p.name for p in (tmp_path / "here").iterdir()}
    assert json.loads((tmp_path / "worker" / "summary.json").read_text()) == json.loads(
        (tmp_path / "here" / "summary.json").read_text())
    # where the hand-over file cannot be written (a full or absent tmpfs) the samples take the pipe
    from synthsleepnet import score_files

    prepared = score_files._prepare_in_worker(edf, None, scorers, None, tmp_path / "absent" / "signals.npy")
    assert prepared.night.n_epochs > 0 and prepared.night.signals.shape[1:] == (len(CHANNELS), 3000)


def test_the_report_is_drawn_here_when_the_worker_drawing_it_has_died(scored: ScoringResult, tmp_path: Path,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    from concurrent.futures import Future
    from concurrent.futures.process import BrokenProcessPool

    from synthsleepnet import score_files

    died: Future[tuple[Path, Path]] = Future()
    died.set_exception(BrokenProcessPool("the worker was killed"))
    outputs = score_files._write_outputs(scored, tmp_path, False, died)
    assert outputs["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and outputs["html"].exists()
    assert "drawing it in this process" in caplog.text


def test_a_night_prepared_otherwise_is_refused(scorers: list[Path], sim_dir: Path) -> None:
    from synthsleepnet.scoring.score import NightScorer

    scorer = NightScorer.load(scorers[:1])
    prepared = scorer.prepare(sim_dir / "sim-0011.edf")
    other = dataclasses.replace(prepared.night, config=PreprocessingConfig(sfreq=128.0))
    with pytest.raises(ValueError, match="sim-0011.edf was prepared with other settings"):
        scorer.score(dataclasses.replace(prepared, night=other))


def test_checkpoints_must_share_one_preprocessing(scorers: list[Path], tmp_path: Path) -> None:
    from synthsleepnet.models import read_checkpoint_meta
    from synthsleepnet.scoring.prepare import prepare_for_checkpoints, shared_preparation

    stage = read_checkpoint_meta(scorers[0])
    other = dataclasses.replace(stage, task="apnea", spec=dataclasses.replace(stage.spec, n_outputs=2, context="epoch"),
                                preprocessing=PreprocessingConfig(filter_order=2))
    mixed = save_checkpoint(tmp_path / "apnea-other-filter.safetensors", build_model(other.spec), other)
    with pytest.raises(CheckpointError, match="differently prepared data .*apnea-other-filter.safetensors: "
                                              "preprocessing"):
        prepare_for_checkpoints(tmp_path / "never-read.edf", None, [scorers[0], mixed])
    with pytest.raises(CheckpointError, match="bare.safetensors does not record the preprocessing"):
        shared_preparation({"bare.safetensors": dataclasses.replace(stage, preprocessing=None)})
    config, channels = shared_preparation({str(p): read_checkpoint_meta(p) for p in scorers})
    assert config == PreprocessingConfig() and channels == set(CHANNELS)


def test_embed_a_store(scorers: list[Path], sim_dir: Path, tmp_path: Path) -> None:
    from synthsleepnet import prepare_store

    prepare_store([sim_dir / "sim-0011.edf"], tmp_path / "store", progress=False)
    table = embed_epochs(tmp_path / "store", scorers[1])
    assert list(table["night"].unique()) == ["sim-0011"] and len(table) == 80


def test_batch_scoring_isolates_a_bad_file_and_resumes(scorers: list[Path], sim_dir: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "clinic"
    folder.mkdir()
    for name in ("sim-0011", "sim-0012"):
        (folder / f"{name}.edf").symlink_to(sim_dir / f"{name}.edf")
    (folder / "sim-0011-nsrr.xml").symlink_to(sim_dir / "sim-0011-nsrr.xml")  # one night with its scoring
    (folder / "broken.edf").write_bytes(b"\x00" * 512)
    out = tmp_path / "scored"
    assert main(["score", str(folder), *[a for p in scorers for a in ("--model", str(p))], "--out", str(out),
                 "--quiet", "--device", "cpu"]) == 1
    printed = capsys.readouterr().out
    assert "2 scored, 0 already scored, 1 failed" in printed and "FAILED broken" in printed
    assert re.search(r"agreement with their own scorings \(1 night\(s\)\): kappa median -?\d\.\d{3}", printed)
    table = pd.read_csv(out / "nights.csv")
    assert list(table["night"]) == ["broken", "sim-0011", "sim-0012"]
    assert table.loc[0, "error"].startswith("PSGReadError") and (table["TST_min"].iloc[1:] >= 0).all()
    assert {"TIB_min", "SE_pct", "R_latency_min", "AHI", "AHI_3pct", "AHI_4pct", "AHI_REM", "ODI3", "T90_min", "severity", "modalities_used",
            "reliability"} <= set(table.columns)
    with_scoring = json.loads((out / "sim-0011" / "summary.json").read_text())
    assert table.loc[1, "reference_kappa"] == pytest.approx(with_scoring["agreement_with_reference"]["kappa"], abs=0.005)
    assert table.loc[1, "reference_AHI"] == pytest.approx(with_scoring["event_agreement"]["AHI_reference"], abs=0.005)
    assert table.loc[1, "reference_AHI_4pct"] == pytest.approx(with_scoring["event_agreement"]["AHI_4pct_reference"],
                                                               abs=0.005)  # its own desaturation depths
    np.testing.assert_allclose(table.loc[1, ["HR_mean_sleep", "HR_min_sleep", "HR_max_sleep"]].to_numpy(dtype=float),
                               [with_scoring["cardiac"][k] or math.nan for k in ("HR_mean_sleep", "HR_min_sleep",
                                                                                 "HR_max_sleep")], atol=0.005)
    assert table.loc[1:, "HR_mean_sleep"].notna().any()  # the simulated nights have an ECG and some sleep
    assert {"HRV_RMSSD_NREM", "HRV_SDNN_NREM", "HRV_RMSSD_R", "HRV_SDNN_R"} <= set(table.columns)
    assert table.loc[1, "HRV_RMSSD_NREM"] == pytest.approx(with_scoring["cardiac"]["HRV_RMSSD_NREM"] or math.nan, nan_ok=True)
    assert table.loc[1, "supine_sleep_pct"] == with_scoring["position"]["supine_sleep_pct"]  # and a position channel
    assert {"AHI_supine", "AHI_nonsupine", "positional_osa", "reference_AHI_supine"} <= set(table.columns)
    assert table.loc[1, "reference_AHI_nonsupine"] == pytest.approx(
        with_scoring["event_agreement"]["AHI_nonsupine_reference"] or math.nan, nan_ok=True)
    assert table[["reference_accuracy", "reference_AHI"]].iloc[2].isna().all()  # no scoring beside it
    assert (out / "sim-0011" / "report.html").exists() and (out / "sim-0012" / "summary.json").exists()
    # two nights at a time, each worker process with its own models: the same outputs and table
    parallel = score_nights(folder, scorers, tmp_path / "parallel", workers=2, progress=False, device="cpu")
    assert sorted(parallel.scored) == ["sim-0011", "sim-0012"]
    assert list(parallel.failed) == ["broken"] and "broken.edf" in parallel.failed["broken"]
    assert parallel.failed["broken"].startswith("PSGReadError")
    for name in ("sim-0011/epochs.csv", "sim-0012/events.tsv", "nights.csv"):
        assert (tmp_path / "parallel" / name).read_bytes() == (out / name).read_bytes(), name
    with pytest.raises(ValueError, match=r"workers must be an integer in \[1, 256\], got 0"):
        score_nights(folder, scorers, tmp_path / "none", workers=0)
    junk = tmp_path / "junk.safetensors"  # models the workers cannot load stop the batch, as with one worker
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.safetensors"):
        score_nights(folder, [junk], tmp_path / "junk", workers=2, progress=False)
    (folder / "broken.edf").unlink()
    assert main(["score", str(folder), *[a for p in scorers for a in ("--model", str(p))], "--out", str(out),
                 "--quiet", "--device", "cpu", "--workers", "2"]) == 0
    assert "0 scored, 2 already scored, 0 failed" in capsys.readouterr().out
