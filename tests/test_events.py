"""Respiratory events at second resolution: labels per second, decoding (the AASM 10-s rule,
merging, typing), agreement by type, the per-second model, and fine-tuning and evaluating it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from synthsleepnet import EpochStore, prepare_store
from synthsleepnet._config import EventDecoding, TrainConfig, get_preset
from synthsleepnet._validation import ConfigError
from synthsleepnet.events import (
    NightEvents,
    calibrate_decoding,
    decode_events,
    event_agreement,
    night_events,
)
from synthsleepnet.models import SleepClassifier, load_classifier, read_checkpoint_meta
from synthsleepnet.scoring import ScoringResult, score_recording
from synthsleepnet.simulate import simulate_cohort
from synthsleepnet.tasks import EVENT_CLASSES, LabelContext, event_class_rule, second_labels
from synthsleepnet.training import evaluate, finetune, probe


def _events(*rows: tuple[float, float, str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["onset_s", "duration_s", "event"])


def test_second_labels_follow_the_scored_events() -> None:
    events = _events((10.0, 30.0, "hypopnea"), (20.0, 12.0, "apnea_obstructive"), (70.0, 15.0, "apnea_mixed"),
                     (100.0, 5.0, "arousal"))
    labels = second_labels(events, 4, 30.0).reshape(-1)
    assert labels.shape == (120,)
    assert (labels[10:20] == 4).all() and (labels[32:40] == 4).all()  # hypopnea around the apnea
    assert (labels[20:32] == 1).all()  # the apnea wins where a scorer overlapped them
    assert (labels[70:85] == 3).all() and labels[85] == 0 and labels[69] == 0
    assert (labels[100:] == 0).all()  # arousals are not respiratory events
    # a second belongs to the event covering its centre: from 25.6 s, the first is second 26 (centre 26.5)
    offset = second_labels(_events((25.6, 10.0, "apnea_central")), 2, 30.0).reshape(-1)
    assert np.flatnonzero(offset).tolist() == list(range(26, 36))
    context = LabelContext(np.zeros(4, dtype=np.int8), events, 30.0, 0.0, True)
    assert event_class_rule(context).tolist() == [1, 4, 3, 0]  # dominant class; the 10-10 tie goes to the apnea
    unscored = LabelContext(np.zeros(4, dtype=np.int8), events, 30.0, 0.0, False)
    assert event_class_rule(unscored).tolist() == [-1] * 4  # no scoring is not "no events"


def _proba(n: int, spans: list[tuple[int, int, int, float]]) -> np.ndarray:
    p = np.zeros((n, len(EVENT_CLASSES)))
    p[:, 0] = 1.0
    for start, stop, cls, prob in spans:
        p[start:stop] = (1 - prob) / (len(EVENT_CLASSES) - 1)
        p[start:stop, 0] = 1 - prob
        p[start:stop, cls] = prob
    return p


def test_decoding_keeps_events_of_ten_seconds_and_merges_short_gaps() -> None:
    p = _proba(200, [(10, 19, 1, 0.9), (40, 50, 2, 0.8), (80, 88, 4, 0.9), (90, 98, 4, 0.9), (150, 170, 1, 0.4)])
    events = decode_events(p)
    assert events[["onset_s", "duration_s", "event"]].values.tolist() == [
        [40.0, 10.0, "apnea_central"],  # 9 s at 10-19 is below the AASM minimum
        [80.0, 18.0, "hypopnea"]]  # 2 s apart: one event
    assert events["probability"].tolist() == pytest.approx([0.8, 0.9 * 16 / 18])
    assert len(decode_events(p, threshold=0.3)) == 3  # the weak 20-s apnea passes a lower threshold
    assert len(decode_events(p, merge_gap_s=1.0)) == 1  # no merge: two 8-s runs, both too short
    assert decode_events(p, merge_gap_s=2.0)["duration_s"].tolist() == [10.0, 18.0]  # a 2-s gap: merged
    with pytest.raises(ValueError, match=r"\(seconds, 5\)"):
        decode_events(np.zeros((10, 2)))


def _night(proba: np.ndarray, reference: pd.DataFrame) -> NightEvents:
    return night_events(proba, np.zeros(len(proba), dtype=int), reference, np.full(len(proba) // 30, 2), 30.0)


def test_decoding_is_calibrated_on_validation_nights() -> None:
    # a model that is sure of nothing: its events peak at 0.35, below the default threshold
    weak = _night(_proba(600, [(30, 50, 1, 0.35), (120, 140, 4, 0.35), (300, 325, 2, 0.35)]),
                  _events((30.0, 20.0, "apnea_obstructive"), (120.0, 20.0, "hypopnea"), (300.0, 25.0, "apnea_central")))
    assert weak.predicted.empty  # the default decoding finds nothing
    chosen = calibrate_decoding([weak])
    assert chosen.threshold < 0.35
    assert len(decode_events(weak.proba, **dataclasses.asdict(chosen))) == 3
    # two events 6 s apart whose gap stays at 0.45: a low threshold would join them into one
    p = _proba(300, [(20, 40, 1, 0.9), (40, 46, 1, 0.45), (46, 66, 1, 0.9)])
    close = _night(p, _events((20.0, 20.0, "apnea_obstructive"), (46.0, 20.0, "apnea_obstructive")))
    chosen = calibrate_decoding([close])
    assert chosen.threshold > 0.45 and len(decode_events(p, **dataclasses.asdict(chosen))) == 2
    unscored = _night(p, _events())
    unscored = dataclasses.replace(unscored, labels=np.full_like(unscored.labels, -1))
    with pytest.raises(ValueError, match="no night has respiratory scoring"):
        calibrate_decoding([unscored])
    with pytest.raises(ValueError, match="threshold"):
        EventDecoding(threshold=1.5)


def test_agreement_by_type() -> None:
    reference = _events((0.0, 20.0, "apnea_obstructive"), (100.0, 15.0, "apnea_central"), (300.0, 30.0, "hypopnea"))
    predicted = _events((5.0, 12.0, "apnea_obstructive"), (102.0, 10.0, "hypopnea"), (500.0, 12.0, "hypopnea"))
    scores = event_agreement(reference, predicted)
    assert scores["event_recall"] == pytest.approx(2 / 3) and scores["event_precision"] == pytest.approx(2 / 3)
    assert scores["event_f1_obstructive"] == 1.0 and scores["event_f1_central"] == 0.0
    assert scores["event_f1_hypopnea"] == 0.0 and scores["n_true_hypopnea"] == 1
    touching = event_agreement(_events((0.0, 20.0, "hypopnea")), _events((20.0, 12.0, "hypopnea")))
    assert touching["event_recall"] == 0.0  # one ends where the other begins: no overlap, no hit


def test_the_per_second_model_outputs_every_second_of_every_epoch() -> None:
    torch.manual_seed(0)
    model = SleepClassifier(["Airflow", "SpO2"], get_preset("tiny"), 5, "sequence", resolution_s=1.0).eval()
    night = {c: torch.randn(27, 3000) for c in model.channels}
    with torch.no_grad():
        logits = model({c: x[None, :20] for c, x in night.items()})
    assert logits.shape == (1, 20, 30, 5)
    proba = model.predict_proba(night)
    assert proba.shape == (27, 30, 5) and np.allclose(proba.sum(-1), 1, atol=1e-5)
    # the first window covers epochs 0-19 alone: its predictions are the night's there
    first = torch.softmax(logits, -1)[0].numpy()
    np.testing.assert_allclose(proba[:7], first[:7], atol=1e-5)
    with pytest.raises(ValueError, match="sequence context"):
        SleepClassifier(["Airflow"], get_preset("tiny"), 5, "epoch", resolution_s=1.0)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("events")
    simulate_cohort(root / "rec", 8, 25 / 60, seed=90, ahi=40.0, progress=False)
    assert prepare_store(root / "rec", root / "store", progress=False).ok
    return root / "store"


def test_finetune_and_evaluate_the_events_task(store: Path, tmp_path: Path) -> None:
    config = TrainConfig(epochs=2, batch_size=2, max_steps_per_epoch=4, precision="fp32", device="cpu", seed=0)
    result = finetune(store, "events", 1.0, tmp_path / "events", preset="tiny", channels=["Airflow", "SpO2"],
                      config=config, progress=False)
    model, meta = load_classifier(result.checkpoint)
    assert meta.task == "events" and meta.spec.resolution_s == 1.0 and model.output_shape == (30, 5)
    assert meta.decoding is not None  # chosen on the validation nights, kept with the weights
    with pytest.raises(ConfigError, match="decoding"):  # an epoch model has none
        type(meta).from_dict({**meta.to_dict(), "task": "stage", "spec": {**meta.to_dict()["spec"], "n_outputs": 5,
                                                                         "resolution_s": None}})
    scores = evaluate(result.checkpoint, store)
    st = EpochStore(store)
    assert scores["task"] == "events" and scores["n_epochs"] > 0  # per-second labels scored
    assert scores["n_epochs"] % 30 == 0
    for key in ("event_f1", "event_f1_50", "ahi_error", "ahi_bias"):
        assert np.isfinite(scores[key]), key
    assert {"event_f1_obstructive", "event_f1_central", "event_f1_mixed", "event_f1_hypopnea"} <= set(scores)
    assert scores["n_true_events"] > 0 and len(st.night_ids) == 8
    with pytest.raises(ValueError, match="fine-tune it"):
        probe(store, "events", 1.0, tmp_path / "probe", preset="tiny", channels=["Airflow"], config=config,
              progress=False)
    # scoring a night with the events model: typed events decoded second by second, in every output
    night = store.parent / "rec" / "sim-0090.edf"
    result = score_recording(night, [result.checkpoint], annotations=night.with_name("sim-0090-nsrr.xml"),
                             threshold=0.2)
    assert result.second_proba is not None and result.second_proba.shape[1:] == (30, 5)
    assert result.scores_respiration  # (no stage model here: the AHI has no sleep time to divide by)
    events = result.respiratory_events()
    assert {"onset_s", "duration_s", "event", "probability"} <= set(events.columns)
    assert set(events["event"]) <= {"apnea_obstructive", "apnea_central", "apnea_mixed", "hypopnea"}
    assert (events["duration_s"] >= 10).all()
    agreement = result.event_agreement()
    assert agreement is not None and "event_f1_central" in agreement and agreement["n_true_events"] > 0
    assert result.decoding == dataclasses.replace(meta.decoding, threshold=0.2)  # the user's threshold wins
    assert result.summary()["event_decoding"]["threshold"] == 0.2
    again = ScoringResult.from_json(result.to_json())
    assert again.decoding == result.decoding
    pd.testing.assert_frame_equal(again.respiratory_events(), events, atol=1e-3)
    own = score_recording(night, [tmp_path / "events" / "model.safetensors"])
    assert own.decoding == read_checkpoint_meta(tmp_path / "events" / "model.safetensors").decoding
