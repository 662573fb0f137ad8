"""Scoring files: real Sleep-EDF/HMC/YASA hypnograms, NSRR XML, CSV/TSV/BIDS, bad labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from synthsleepnet import AnnotationError, read_scoring, scored_indices
from synthsleepnet.io.annotations import UNSCORED, parse_stage_label

# R&K / AASM description -> our stage name, for the independent count through MNE
_MNE_STAGE = {"Sleep stage W": "W", "Sleep stage 1": "N1", "Sleep stage 2": "N2", "Sleep stage 3": "N3",
              "Sleep stage 4": "N3", "Sleep stage R": "R", "Sleep stage ?": "UNS", "Movement time": "UNS",
              "Sleep stage N1": "N1", "Sleep stage N2": "N2", "Sleep stage N3": "N3"}


def _mne_counts(path: Path) -> dict[str, int]:
    mne = pytest.importorskip("mne")
    counts = dict.fromkeys(("W", "N1", "N2", "N3", "R", "UNS"), 0)
    for ann in mne.read_annotations(path):
        desc = ann["description"]
        if desc in _MNE_STAGE:
            counts[_MNE_STAGE[desc]] += int(round(ann["duration"] / 30))
    return counts


def test_twenty_sleep_edf_hypnograms_match_mne(real_data: Path) -> None:
    files = sorted((real_data / "sleep-edf" / "hypnograms").glob("SC4*-Hypnogram.edf"))
    assert len(files) == 20
    for path in files:
        assert read_scoring(path).stage_counts() == _mne_counts(path), path.name


def test_hmc_scoring_matches_mne_and_reads_lights(real_data: Path) -> None:
    path = real_data / "hmc" / "SN001_sleepscoring.edf"
    scoring = read_scoring(path)
    assert scoring.n_epochs == 854
    assert scoring.stage_counts() == _mne_counts(path)
    assert scoring.lights_off_s == pytest.approx(33.43) and scoring.lights_on_s is not None



@pytest.mark.parametrize(("marks", "expected"), [
    ((("Lights off", 600.0), ("Lights on", 28000.0)), (600.0, 28000.0)),
    ((("LightsOff", 600.0), ("LIGHTS ON", 28000.0)), (600.0, 28000.0)),
    ((("Lights out", 600.0), ("Lights off", 900.0), ("Lights on", 20000.0), ("Lights on", 28000.0)),
     (600.0, 28000.0)),                                            # the first off, the last on
    ((("Lights off", 600.0), ("Lights on", float("nan"))), (600.0, None)),
    ((("Lights on", 600.0), ("Lights off", 900.0)), (None, None)),  # on before off: neither is believed
])
def test_lights_marks(marks: tuple[tuple[str, float], ...], expected: tuple[float | None, float | None]) -> None:
    from synthsleepnet.io.annotations import lights_marks
    from synthsleepnet.io.recording import Annotation

    notes: list[str] = []
    assert lights_marks([Annotation(onset, 0.0, text) for text, onset in marks], notes) == expected
    assert bool(notes) == (None in expected)  # a mark dropped or disbelieved is said


def test_scoring_lights_follow_the_scoring_onto_the_recording(real_data: Path) -> None:
    import datetime as dt

    from synthsleepnet.preprocessing import align_scoring

    scoring = read_scoring(real_data / "hmc" / "SN001_sleepscoring.edf")
    assert scoring.start is not None and scoring.lights_off_s is not None and scoring.lights_on_s is not None
    earlier = scoring.start - dt.timedelta(seconds=90)  # a recording that started 90 s before the scoring
    aligned = align_scoring(scoring, earlier, 900, 30.0)
    assert aligned.lights_s == (scoring.lights_off_s + 90, scoring.lights_on_s + 90)


def test_yasa_integer_and_letter_hypnograms(real_data: Path) -> None:
    ints = read_scoring(real_data / "yasa" / "data_full_6hrs_100Hz_hypno_30s.txt")
    assert ints.n_epochs == 720 and ints.stage_counts()["R"] > 0  # 4 means REM in YASA files
    letters = read_scoring(real_data / "yasa" / "sub-02_hypno_30s.txt")
    assert letters.n_epochs == 98 and letters.stage_counts()["W"] == 36


@pytest.mark.parametrize(("text", "code"), [
    ("Sleep stage W", 0), ("Sleep stage 1", 1), ("Sleep stage 3", 3), ("Sleep stage 4", 3),
    ("Sleep stage R", 4), ("Sleep stage N2", 2), ("Sleep stage ?", UNSCORED), ("Movement time", UNSCORED),
    ("Stage 4 sleep|4", 3), ("REM sleep|5", 4), ("Wake|0", 0), ("Unscored|9", UNSCORED),
    ("Lights off", None), ("Obstructive apnea|Obstructive Apnea", None),
])
def test_stage_labels_rk_to_aasm(text: str, code: int | None) -> None:
    assert parse_stage_label(text) == code


def test_unscored_is_never_wake() -> None:
    assert parse_stage_label("Sleep stage ?") == UNSCORED != 0
    assert parse_stage_label("Movement time") == UNSCORED and parse_stage_label("Movement") == UNSCORED


def test_unknown_stage_label_is_refused() -> None:
    with pytest.raises(AnnotationError, match=r"night\.tsv: unknown stage label 'Sleep stage 7'"):
        parse_stage_label("Sleep stage 7", source="night.tsv")


NSRR = """<?xml version="1.0" encoding="UTF-8"?>
<PSGAnnotation><EpochLength>30</EpochLength><ScoredEvents>
<ScoredEvent><EventType/><EventConcept>Recording Start Time</EventConcept><Start>0</Start><Duration>300</Duration></ScoredEvent>
<ScoredEvent><EventType>Stages|Stages</EventType><EventConcept>Wake|0</EventConcept><Start>0</Start><Duration>60.0</Duration></ScoredEvent>
<ScoredEvent><EventType>Stages|Stages</EventType><EventConcept>Stage 2 sleep|2</EventConcept><Start>60</Start><Duration>90.0</Duration></ScoredEvent>
<ScoredEvent><EventType>Stages|Stages</EventType><EventConcept>Stage 4 sleep|4</EventConcept><Start>150</Start><Duration>60.0</Duration></ScoredEvent>
<ScoredEvent><EventType>Stages|Stages</EventType><EventConcept>REM sleep|5</EventConcept><Start>210</Start><Duration>90.0</Duration></ScoredEvent>
<ScoredEvent><EventType>Respiratory|Respiratory</EventType><EventConcept>Obstructive apnea|Obstructive Apnea</EventConcept><Start>95.5</Start><Duration>12.5</Duration></ScoredEvent>
<ScoredEvent><EventType>Respiratory|Respiratory</EventType><EventConcept>Central apnea|Central Apnea</EventConcept><Start>160</Start><Duration>11</Duration></ScoredEvent>
<ScoredEvent><EventType>Respiratory|Respiratory</EventType><EventConcept>Mixed apnea|Mixed Apnea</EventConcept><Start>200</Start><Duration>15</Duration></ScoredEvent>
<ScoredEvent><EventType>Respiratory|Respiratory</EventType><EventConcept>Hypopnea|Hypopnea</EventConcept><Start>230</Start><Duration>20</Duration></ScoredEvent>
<ScoredEvent><EventType>Respiratory|Respiratory</EventType><EventConcept>SpO2 desaturation|SpO2 desaturation</EventConcept><Start>240</Start><Duration>25</Duration></ScoredEvent>
<ScoredEvent><EventType>Arousals|Arousals</EventType><EventConcept>Arousal|Arousal ()</EventConcept><Start>108</Start><Duration>5</Duration></ScoredEvent>
</ScoredEvents></PSGAnnotation>
"""


def test_nsrr_xml_stages_and_events(tmp_path: Path) -> None:
    path = tmp_path / "shhs1-200001-nsrr.xml"
    path.write_text(NSRR)
    scoring = read_scoring(path)
    np.testing.assert_array_equal(scoring.stages, [0, 0, 2, 2, 2, 3, 3, 4, 4, 4])
    events = scoring.events
    assert list(events["event"]) == ["apnea_obstructive", "arousal", "apnea_central", "apnea_mixed",
                                     "hypopnea", "desaturation"]
    assert events.loc[0, "onset_s"] == 95.5 and events.loc[0, "duration_s"] == 12.5
    assert scoring.respiratory_scored and scoring.desaturations is None  # its desaturation states no depth


def test_nsrr_desaturations_keep_their_depth(tmp_path: Path) -> None:
    def desaturation(start: float, baseline: str | None, nadir: str | None) -> str:
        depth = "".join(f"<{tag}>{value}</{tag}>" for tag, value in (("SpO2Baseline", baseline), ("SpO2Nadir", nadir))
                        if value is not None)
        return (f"<ScoredEvent><EventType>Respiratory|Respiratory</EventType><EventConcept>SpO2 desaturation|SpO2 "
                f"desaturation</EventConcept><Start>{start}</Start><Duration>20</Duration>{depth}</ScoredEvent>")

    events = [desaturation(100, "64.1", "60.1"), desaturation(200, "96", "93"), desaturation(300, "96", None),
              desaturation(400, "abc", "90"), desaturation(500, "90", "95")]  # 4 %, 3 %, then no depth to trust
    path = tmp_path / "night-nsrr.xml"
    path.write_text(NSRR.replace("</ScoredEvents>", "".join(events) + "</ScoredEvents>"))
    scoring = read_scoring(path)
    assert scoring.desaturations is not None
    assert scoring.desaturations.to_dict("list") == {"onset_s": [100.0, 200.0], "duration_s": [20.0, 20.0],
                                                     "drop_pct": [4.0, 3.0]}  # 64.1 − 60.1 is 4, not 3.99999
    assert "4 of 6 SpO2 desaturation(s) state no usable SpO2Baseline and SpO2Nadir; the hypopnea rules do not count them" \
        in scoring.notes



@pytest.mark.parametrize(("label", "kind"), [
    ("ObstructiveApnea", "apnea_obstructive"),  # Philips Alice's EDF+ labels have no spaces
    ("Apnea Obstructive", "apnea_obstructive"), ("Obstructive_Apnoea", "apnea_obstructive"),
    ("CentralApnea", "apnea_central"), ("Apnoea central", "apnea_central"), ("MixedApnea", "apnea_mixed"),
    ("Obstructive Hypopnea", "hypopnea"), ("Hypopnea Central", "hypopnea"), ("Hypopnoea", "hypopnea"),
    ("Apnea", "apnea"), ("RelativeDesaturation", "desaturation"), ("Arousal (ARO SPONT)", "arousal"),
    ("Limb Movement (Left)", None), ("Lights Off", None),
])
def test_event_labels_are_read_whatever_their_word_order_and_spacing(tmp_path: Path, label: str,
                                                                     kind: str | None) -> None:
    path = tmp_path / "events.tsv"
    path.write_text(f"onset\tduration\tdescription\n0\t30\tW\n100\t15\t{label}\n")
    assert list(read_scoring(path).events["event"]) == ([kind] if kind else [])


def test_nsrr_xml_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.xml"
    path.write_text("<PSGAnnotation><ScoredEvents>")
    with pytest.raises(AnnotationError, match=r"bad\.xml: not well-formed XML"):
        read_scoring(path)
    path.write_text(NSRR.replace("Stage 2 sleep|2", "Stage 7 sleep|7"))
    with pytest.raises(AnnotationError, match=r"bad\.xml: unknown stage label 'Stage 7 sleep\|7'"):
        read_scoring(path)
    path.write_text("<Other/>")
    with pytest.raises(AnnotationError, match="no ScoredEvents"):
        read_scoring(path)


# the same night as NSRR above, as Compumedics Profusion exports it (NSRR's *-profusion.xml)
PROFUSION = """<?xml version="1.0" encoding="UTF-8"?>
<CMPStudyConfig><EpochLength>30</EpochLength>
<StepChannels><StepChannel><Input>LIGHT</Input><Labels><Label>ON</Label><Label>OFF</Label></Labels></StepChannel></StepChannels>
<ScoredEventSettings><ScoredEventSetting><Name>Obstructive Apnea</Name><Colour>16628921</Colour><Input>ABDO RES</Input></ScoredEventSetting></ScoredEventSettings>
<ScoredEvents>
<ScoredEvent><Name>Obstructive Apnea</Name><Start>95.5</Start><Duration>12.5</Duration><Input>ABDO RES</Input></ScoredEvent>
<ScoredEvent><Name>Arousal ()</Name><Start>108</Start><Duration>5</Duration><Input>C4</Input></ScoredEvent>
<ScoredEvent><Name>Central Apnea</Name><Start>160</Start><Duration>11</Duration><Input>ABDO RES</Input></ScoredEvent>
<ScoredEvent><Name>Mixed Apnea</Name><Start>200</Start><Duration>15</Duration><Input>ABDO RES</Input></ScoredEvent>
<ScoredEvent><Name>Hypopnea</Name><Start>230</Start><Duration>20</Duration><Input>ABDO RES</Input></ScoredEvent>
<ScoredEvent><LowestSpO2>90</LowestSpO2><Desaturation>3</Desaturation><Name>SpO2 desaturation</Name><Start>240</Start><Duration>25</Duration><Input>SaO2</Input></ScoredEvent>
<ScoredEvent><Name>SpO2 artifact</Name><Start>250</Start><Duration>4</Duration><Input>SaO2</Input></ScoredEvent>
</ScoredEvents>
<SleepStages><SleepStage>0</SleepStage><SleepStage>0</SleepStage><SleepStage>2</SleepStage><SleepStage>2</SleepStage>
<SleepStage>2</SleepStage><SleepStage>4</SleepStage><SleepStage>3</SleepStage><SleepStage>5</SleepStage>
<SleepStage>5</SleepStage><SleepStage>5</SleepStage></SleepStages>
</CMPStudyConfig>
"""


def test_profusion_xml_reads_like_the_nsrr_xml_of_the_same_night(tmp_path: Path) -> None:
    (tmp_path / "n-nsrr.xml").write_text(NSRR)
    (tmp_path / "n-profusion.xml").write_text(PROFUSION)
    nsrr, profusion = read_scoring(tmp_path / "n-nsrr.xml"), read_scoring(tmp_path / "n-profusion.xml")
    np.testing.assert_array_equal(profusion.stages, nsrr.stages)
    assert profusion.events.equals(nsrr.events)  # same names mapped the same way; artefacts not events
    assert profusion.respiratory_scored and not profusion.notes
    assert profusion.desaturations is not None  # Profusion states each desaturation's fall
    assert profusion.desaturations.to_dict("list") == {"onset_s": [240.0], "duration_s": [25.0], "drop_pct": [3.0]}
    indices = scored_indices(profusion.events, profusion.stages, desaturations=profusion.desaturations)
    assert indices["AHI_3pct"] == indices["AHI"] and indices["AHI_4pct"] < indices["AHI"]  # its hypopnea fell 3 %
    hours = np.count_nonzero(profusion.stages > 0) * 30 / 3600
    assert indices["ArI"] == pytest.approx(1 / hours)  # its one arousal, at 108 s, in sleep
    in_wake = pd.DataFrame({"onset_s": [10.0], "duration_s": [5.0], "event": ["arousal"]})  # epoch 0: W
    assert scored_indices(pd.concat([profusion.events, in_wake]), profusion.stages)["ArI"] == indices["ArI"]
    unaroused = profusion.events[profusion.events["event"] != "arousal"]
    assert "ArI" not in scored_indices(unaroused, profusion.stages)  # a scoring marking none did not score them


def test_profusion_quirks_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "n-profusion.xml"
    path.write_text(PROFUSION.replace("<SleepStage>4</SleepStage>", "<SleepStage>9</SleepStage>"))
    scoring = read_scoring(path)
    assert scoring.stages[5] == UNSCORED and "['9']" in scoring.notes[0]
    path.write_text(PROFUSION.replace("<EpochLength>30</EpochLength>", "<EpochLength>20</EpochLength>"))
    assert read_scoring(path).n_epochs == 6  # ten 20-s epochs are six 30-s ones (and a half, dropped)
    path.write_text(PROFUSION.replace("<EpochLength>30</EpochLength>", "<EpochLength>0</EpochLength>"))
    with pytest.raises(AnnotationError, match=r"n-profusion\.xml: EpochLength 0 s is not a scoring epoch"):
        read_scoring(path)
    path.write_text(PROFUSION.replace("<Start>160</Start>", "<Start>1 60</Start>"))
    with pytest.raises(AnnotationError, match=r"ScoredEvent #2 \('Central Apnea'\) has a non-numeric Start"):
        read_scoring(path)


def test_a_profusion_scoring_is_found_beside_its_recording(tmp_path: Path) -> None:
    from synthsleepnet.io import find_recordings

    (tmp_path / "shhs1-200001.edf").write_bytes(b"")
    (tmp_path / "shhs1-200001-profusion.xml").write_text(PROFUSION)
    [found] = find_recordings(tmp_path)
    assert found.scoring == tmp_path / "shhs1-200001-profusion.xml"
    (tmp_path / "shhs1-200001-nsrr.xml").write_text(NSRR)
    assert find_recordings(tmp_path)[0].scoring == tmp_path / "shhs1-200001-nsrr.xml"  # NSRR's own first



@pytest.mark.parametrize("nights", [
    ("SC4001E0-PSG", "SC4002E0-PSG"),                                          # Sleep-EDF: two nights, one person
    ("shhs1-200077", "shhs2-200077"), ("mros-visit1-aa0001", "mros-visit2-aa0001"),
    ("chat-baseline-300001", "chat-followup-300001", "chat-nonrandomized-300001"),
    ("sub-01_ses-1_task-sleep_eeg", "sub-01_ses-2_task-sleep_eeg"),           # BIDS sessions
])
def test_one_persons_nights_have_one_subject_so_no_split_separates_them(nights: tuple[str, ...]) -> None:
    from synthsleepnet.io import subject_id

    assert len({subject_id(night) for night in nights}) == 1
    assert subject_id(nights[0]) != subject_id(nights[0].replace("0", "9"))  # another person is another subject


def test_bids_events_tsv(tmp_path: Path) -> None:
    path = tmp_path / "sub-01_task-sleep_events.tsv"
    path.write_text("onset\tduration\ttrial_type\n0\t30\tW\n30\t30\tN1\n60\t60\tN2\n"
                    "70\t15\thypopnea\n120\t30\tR\n")
    scoring = read_scoring(path)
    np.testing.assert_array_equal(scoring.stages, [0, 1, 2, 2, 4])
    assert list(scoring.events["event"]) == ["hypopnea"]


def test_a_scoring_in_20_s_epochs_is_resampled_to_30_s_and_said(tmp_path: Path) -> None:
    path = tmp_path / "mass.csv"  # 20-s epochs: W W N1 N2 N2 N2 R R R (three minutes)
    rows = "".join(f"{20 * i},20,{stage}\n" for i, stage in enumerate("W W N1 N2 N2 N2 R R R".split()))
    path.write_text("onset,duration,stage\n" + rows)
    scoring = read_scoring(path)
    np.testing.assert_array_equal(scoring.stages, [0, 1, 2, 2, 4, 4])  # the stage at each epoch's midpoint
    assert ("9 stage annotation(s) do not span whole 30-s epochs (the first lasts 20 s): each epoch takes the "
            "stage scored at its midpoint") in scoring.notes
    whole = tmp_path / "whole.csv"  # 30-s epochs, and runs of them, are nothing to say
    whole.write_text("onset,duration,stage\n0,30,W\n30,90,N2\n")
    assert not any("whole 30-s epochs" in note for note in read_scoring(whole).notes)


def test_respiratory_events_without_a_duration_are_kept_and_said(tmp_path: Path) -> None:
    path = tmp_path / "sub-01_task-sleep_events.tsv"  # BIDS writes n/a where a duration is unknown
    path.write_text("onset\tduration\ttrial_type\n0\t60\tN2\n45\tn/a\thypopnea\n50\t12\tobstructive apnea\n")
    scoring = read_scoring(path)
    assert list(scoring.events["duration_s"]) == [0.0, 12.0]
    assert ("1 respiratory event(s) have no duration: each flags the epoch it starts in, covers no second of the "
            "per-second labels and has no duration in the indices") in scoring.notes


def test_csv_events_need_a_label_column(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text("onset,duration,foo\n0,30,W\n")
    with pytest.raises(AnnotationError, match=r"events\.csv: an events table needs a label column"):
        read_scoring(path)


def test_per_epoch_file_with_unknown_label(tmp_path: Path) -> None:
    path = tmp_path / "hyp.txt"
    path.write_text("W\nN1\nN5\n")
    with pytest.raises(AnnotationError, match=r"hyp\.txt, line 3: unknown stage label 'N5'"):
        read_scoring(path)
    path.write_text("0\n1\n7\n")
    with pytest.raises(AnnotationError, match=r"hyp\.txt, line 3: unknown stage code '7'"):
        read_scoring(path)


def test_unknown_format(tmp_path: Path) -> None:
    path = tmp_path / "scores.docx"
    path.write_bytes(b"x")
    with pytest.raises(AnnotationError, match=r"unknown scoring format '\.docx'"):
        read_scoring(path)
