"""Body position: reading a position channel's codes, and sleep and AHI by position."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import edfio
import numpy as np
import pandas as pd
import pytest

from synthsleepnet import PreprocessingConfig
from synthsleepnet.io import load_channel_table, read_recording
from synthsleepnet.io.body_position import decode_positions, read_body_position
from synthsleepnet.io.position_codes import POSITIONS, codes_from_transducer, parse_position_codes
from synthsleepnet.positional import describe_position, epoch_positions, position_measures
from synthsleepnet.preprocessing import describe_recording, suggest_channel_file
from synthsleepnet.scoring.prepare import prepare_input
from synthsleepnet.simulate import simulate_night, write_night

SUPINE, LEFT, RIGHT, PRONE, UPRIGHT = range(5)
SHHS_LIKE = {0: "right", 1: "left", 2: "supine", 3: "prone"}  # a recorder whose 1 is not supine


def _write(path: Path, position: np.ndarray, sfreq: float, *, label: str = "POSITION", transducer: str = "") -> Path:
    eeg = edfio.EdfSignal(np.random.default_rng(0).normal(0, 20, int(position.size / sfreq * 100)), 100,
                          label="EEG C4-M1", physical_dimension="uV", physical_range=(-200, 200))
    pos = edfio.EdfSignal(position, sfreq, label=label, transducer_type=transducer, physical_range=(-1, 10))
    edfio.Edf([eeg, pos], starttime=dt.time(23, 0)).write(path)
    return path


def test_codes_become_one_position_per_second_whatever_the_recorders_rate() -> None:
    codes = np.r_[np.full(25, 2.0), np.full(30, 1.0), np.full(25, 3.0)]  # 10 Hz: 2.5 s supine, 3 s left, 2.5 s prone
    np.testing.assert_array_equal(decode_positions(codes + 0.02, 10.0, SHHS_LIKE, source="x"),
                                  [SUPINE, SUPINE, LEFT, LEFT, LEFT, PRONE, PRONE, PRONE])
    slow = decode_positions(np.array([2.0, 0.0]), 0.25, SHHS_LIKE, source="x")  # a sample every 4 s
    np.testing.assert_array_equal(slow, [SUPINE] * 4 + [RIGHT] * 4)
    glitch = np.full(100, 2.0)
    glitch[95] = 7.0  # one sample the codes do not name: its second is unknown
    glitch[85] = 2.4  # nor is one between two codes
    np.testing.assert_array_equal(decode_positions(glitch, 10.0, SHHS_LIKE, source="x")[-2:], [-1, -1])


def test_values_the_codes_do_not_name_are_refused_with_what_was_found() -> None:
    other_recorder = np.r_[np.full(50, 4.0), np.full(50, 6.0)]  # codes 4 and 6: not this table's
    with pytest.raises(ValueError, match=r"night.edf: POSITION: 100 % of the position samples .* \(values 4, 6\)"):
        decode_positions(other_recorder, 1.0, SHHS_LIKE, source="night.edf: POSITION")
    voltage = np.linspace(-0.8, 0.8, 600)  # a continuous signal, not codes
    with pytest.raises(ValueError, match=r"\[position\] section"):
        decode_positions(voltage, 1.0, SHHS_LIKE, source="x")


def test_code_tables_read_synonyms_and_name_what_they_cannot_read() -> None:
    assert parse_position_codes({"1": "Back", "2": "front", "3": "Sitting"}, "f") == {1: "supine", 2: "prone",
                                                                                      3: "upright"}
    with pytest.raises(ValueError, match=r"my.toml: position 'sideways' \(code 3\)"):
        parse_position_codes({3: "sideways"}, "my.toml")
    with pytest.raises(ValueError, match=r"my.toml: position code 'a'"):
        parse_position_codes({"a": "left"}, "my.toml")
    assert codes_from_transducer("0=right, 1=supine; 2=left") == {0: "right", 1: "supine", 2: "left"}
    assert codes_from_transducer("Codes: 0 = Right 1 = Back") == {0: "right", 1: "supine"}
    for text in ("Internal mercury gauge", "", "0=right sensor", "1=sideways"):
        assert codes_from_transducer(text) is None


def test_a_channel_file_names_the_position_channel_and_its_codes(tmp_path: Path) -> None:
    table = load_channel_table()
    assert table.position_label(["EEG", "Pleth", "Body Position", "POS"]) == "Body Position"
    assert table.position_label(["EEG", "X9"]) is None and table.position_codes == {}
    file = tmp_path / "clinic.toml"
    file.write_text('[position]\nlabels = ["X9"]\ncodes = { 0 = "right", 1 = "back", 2 = "left", 3 = "front" }\n')
    mine = load_channel_table(file)
    assert mine.position_label(["POSITION", "x9"]) == "x9"  # the file's label before the montage reader's
    assert mine.position_codes == {0: "right", 1: "supine", 2: "left", 3: "prone"}
    for section, message in (('codes = { 0 = "upside down" }', r"\[position\] codes: position 'upside down'"),
                             ('code = { 0 = "left" }', r"\[position\] may hold 'labels'")):
        file.write_text(f"[position]\n{section}\n")
        with pytest.raises(ValueError, match=rf"clinic.toml: {message}"):
            load_channel_table(file)


def test_a_recordings_position_comes_from_its_own_codes_or_the_channel_file(tmp_path: Path) -> None:
    position = np.r_[np.full(300, 2.0), np.full(300, 0.0)]  # 5 min supine, 5 min on the right
    spelt = read_recording(_write(tmp_path / "spelt.edf", position, 1.0, transducer="codes 0=right 2=back"))
    found = read_body_position(spelt, load_channel_table())
    assert found is not None and found[1] == "POSITION"
    np.testing.assert_array_equal(found[0], np.r_[np.full(300, SUPINE), np.full(300, RIGHT)])
    silent = read_recording(_write(tmp_path / "silent.edf", position, 1.0, transducer="Internal mercury gauge"))
    with pytest.raises(ValueError, match=r"silent.edf: POSITION: its position codes are unknown"):
        read_body_position(silent, load_channel_table())
    file = tmp_path / "codes.toml"
    file.write_text('[position]\ncodes = { 0 = "right", 1 = "left", 2 = "supine", 3 = "prone" }\n')
    from_file = read_body_position(silent, load_channel_table(file))
    assert from_file is not None and (from_file[0] == found[0]).all()
    file.write_text('[position]\ncodes = { 0 = "left", 2 = "prone" }\n')  # a table for another recorder
    own = read_body_position(spelt, load_channel_table(file))
    assert own is not None and (own[0] == found[0]).all()  # a channel's own codes come first
    no_channel = read_recording(_write(tmp_path / "none.edf", position, 1.0, label="Light"))
    assert read_body_position(no_channel, load_channel_table()) is None


def test_info_says_what_scoring_makes_of_the_position_channel_and_suggests_its_codes(tmp_path: Path) -> None:
    position = np.full(600, 2.0)
    rows = describe_recording(_write(tmp_path / "a.edf", position, 1.0, transducer="0=right 2=supine"))
    assert next(r["use"] for r in rows if r["label"] == "POSITION").endswith(
        "codes {0: 'right', 2: 'supine'} from its transducer field")
    silent = _write(tmp_path / "b.edf", position, 1.0)
    rows = describe_recording(silent)
    assert "not used: body position (no model input) whose codes are unknown" in next(r["use"] for r in rows if r["label"] == "POSITION")
    suggested = tmp_path / "channels.toml"
    suggested.write_text(suggest_channel_file(rows, str(silent)).replace("# codes =", "codes ="))  # the user's edit
    found = read_body_position(read_recording(silent), load_channel_table(suggested))
    assert found is not None and (found[0] == POSITIONS.index("left")).all()


def test_a_night_is_prepared_with_its_position_or_says_why_not(tmp_path: Path) -> None:
    position = np.r_[np.full(300, 2.0), np.full(300, 0.0)]

    def prepared(path: Path) -> list[int] | None:
        night = prepare_input(path, None, config=PreprocessingConfig(), channel_table=load_channel_table(),
                              channels={"C4-M1"})
        assert night.night.n_epochs == 20  # the night is scored either way
        notes.extend(night.night.report.notes)
        return night.body_position

    notes: list[str] = []
    assert prepared(_write(tmp_path / "a.edf", position, 1.0, transducer="0=right 2=supine")) == [0] * 300 + [2] * 300
    assert prepared(_write(tmp_path / "b.edf", position, 1.0)) is None
    assert any(n.startswith("no body position: POSITION: its position codes are unknown") for n in notes)


def _hour(position: np.ndarray, onsets: list[float], stages: np.ndarray | None = None) -> dict:
    events = pd.DataFrame({"onset_s": onsets, "duration_s": 15.0, "event": "apnea_obstructive"})
    return position_measures(position, np.full(120, 2) if stages is None else stages, events)


def test_sleep_and_ahi_by_position_count_sleep_in_bed_only() -> None:
    pos = np.r_[np.full(1200, SUPINE), np.full(1800, LEFT), np.full(600, PRONE)]  # 20 / 30 / 10 min
    m = _hour(pos, [100.0, 500.0, 900.0, 1500.0, 3300.0, 3500.0])
    assert m["sleep_min"] == {"supine": 20.0, "left": 30.0, "right": 0.0, "prone": 10.0, "upright": 0.0}
    assert m["supine_sleep_pct"] == pytest.approx(33.3) and m["nonsupine_sleep_min"] == 40.0
    assert m["AHI_supine"] == pytest.approx(9.0) and m["AHI_nonsupine"] == pytest.approx(4.5)
    assert m["AHI_by_position"]["left"] == pytest.approx(2.0)
    assert math.isnan(m["AHI_by_position"]["prone"])  # 10 min: under 15, no index (2 events would read 12/h)
    assert m["positional_osa"] is True and m["position_changes"] == 2
    stages = np.r_[np.zeros(10), np.full(110, 2)]  # the first 5 minutes awake: the apnea at 100 s is not counted
    awake = _hour(pos, [100.0, 500.0, 900.0, 1500.0], stages)
    assert awake["sleep_min"]["supine"] == 15.0 and awake["AHI_supine"] == pytest.approx(8.0)
    in_bed = position_measures(pos, np.full(120, 2), pd.DataFrame({"onset_s": [100.0, 1500.0], "event": "hypopnea"}),
                               in_bed=slice(20, 120))  # lights off after 10 minutes
    assert in_bed["sleep_min"]["supine"] == 10.0 and in_bed["AHI_by_position"]["left"] == pytest.approx(2.0)
    later = position_measures(pos, np.full(120, 2), in_bed=slice(50, 120))  # the turn at 20 min is before bed
    assert later["position_changes"] == 1


def test_with_spo2_the_ahi_by_position_also_follows_the_hypopnea_rules() -> None:
    pos = np.r_[np.full(1800, SUPINE), np.full(1800, LEFT)]
    events = pd.DataFrame({"onset_s": [100.0, 400.0, 700.0, 2000.0, 2400.0], "duration_s": 15.0,
                           "event": ["hypopnea", "hypopnea", "apnea_obstructive", "hypopnea", "hypopnea"],
                           "desaturation_pct": [4.5, 3.2, math.nan, math.nan, 2.0],
                           "confirmed_by": ["desaturation", "desaturation", "", "arousal", ""]})
    m = position_measures(pos, np.full(120, 2), events, desaturations_measured=True)
    assert (m["AHI_supine"], m["AHI_3pct_supine"], m["AHI_4pct_supine"]) == (6.0, 6.0, 4.0)
    assert (m["AHI_nonsupine"], m["AHI_3pct_nonsupine"], m["AHI_4pct_nonsupine"]) == (4.0, 2.0, 0.0)
    assert "AHI_4pct_supine" not in position_measures(pos, np.full(120, 2), events)  # SpO2 not measured


def test_unknown_position_is_left_out_and_said() -> None:
    pos = np.r_[np.full(1800, SUPINE), np.full(900, LEFT), np.full(900, -1)]
    m = _hour(pos, [100.0, 2000.0, 3000.0])  # the last event happens while the position is unknown
    assert m["position_known_sleep_pct"] == 75.0 and m["supine_sleep_pct"] == pytest.approx(66.7)
    assert m["AHI_supine"] == pytest.approx(2.0) and m["AHI_nonsupine"] == pytest.approx(4.0)
    assert math.isnan(position_measures(pos, np.full(120, 2))["AHI_supine"])  # no respiratory scoring
    only_supine = _hour(np.r_[np.full(1800, SUPINE), np.full(1800, -1)], [100.0])
    assert math.isnan(only_supine["AHI_nonsupine"]) and only_supine["positional_osa"] is None  # no verdict
    assert describe_position(only_supine) == "supine 100 % of sleep; AHI supine 2.0/h, non-supine n/a (< 15 min)"


def test_positional_needs_an_ahi_of_five_and_twice_the_non_supine() -> None:
    half = np.r_[np.full(1800, SUPINE), np.full(1800, RIGHT)]
    mild = _hour(half, [100.0, 200.0, 2000.0])  # supine 4/h, non-supine 2/h, but AHI 3/h
    assert mild["AHI_supine"] == 2 * mild["AHI_nonsupine"] and mild["positional_osa"] is False
    both = _hour(half, [100.0 * i for i in range(1, 7)] + [1900.0, 2100.0, 2300.0, 2500.0])  # 12 vs 8/h
    assert both["positional_osa"] is False
    supine = _hour(half, [100.0 * i for i in range(1, 7)] + [1900.0, 2100.0])  # 12 vs 4/h
    assert supine["positional_osa"] is True


def test_each_epoch_gets_the_position_it_held_longest() -> None:
    pos = np.r_[np.full(20, LEFT), np.full(10, SUPINE), np.full(30, -1), np.full(12, PRONE), np.full(18, -1)]
    assert epoch_positions(pos, 4) == ["left", "", "prone", ""]


def test_the_simulated_night_writes_its_position_in_codes_it_spells(tmp_path: Path) -> None:
    night = simulate_night(5, hours=1.0)
    edf, _ = write_night(night, tmp_path)
    channel = next(s for s in edfio.read_edf(edf).signals if s.label == "Position")
    assert channel.sampling_frequency == 1 and channel.transducer_type.startswith("codes 0=right 1=supine")
    found = read_body_position(read_recording(edf), load_channel_table())
    assert found is not None and night.body_position is not None
    np.testing.assert_array_equal(found[0], night.body_position)
    assert set(np.unique(found[0])) <= set(range(len(POSITIONS)))
