"""The command line, run in-process through main(argv)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from synthsleepnet._config import PRESETS
from synthsleepnet.cli import main


def test_info_maps_sleep_edf_channels_and_reports_1hz(real_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(real_data / "sleep-edf" / "short_psg.edf")]) == 0
    out = capsys.readouterr().out
    assert "EEG Fpz-Cz" in out and "Fpz-Cz (eeg)" in out
    assert "Pz-Oz (eeg)" in out and "EOG-H (eog)" in out
    emg_line = next(line for line in out.splitlines() if "EMG submental" in line)
    assert " 1 " in emg_line and "not used: native rate 1 Hz" in emg_line
    temp = next(line for line in out.splitlines() if "Temp rectal" in line)
    assert "not used: temperature: not a model input" in temp



def test_stats_with_lights_given_as_clock_times(real_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hypnogram = str(real_data / "sleep-edf" / "hypnograms" / "SC4001EC-Hypnogram.edf")  # 24 h from 16:13
    assert main(["stats", hypnogram, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["TIB_min"] == 24 * 60
    assert main(["stats", hypnogram, "--json", "--lights-off", "23:00", "--lights-on", "07:00"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["TIB_min"] == 8 * 60 and stats["TST_min"] == 326.5  # every sleep epoch lies in those 8 h
    assert main(["stats", hypnogram, "--lights-off", "23:00", "--lights-on", "21:00"]) == 2
    assert "lights on (21:00:00) is not after lights off (23:00:00)" in capsys.readouterr().err


def test_stats_gives_a_scorings_own_ahi_by_the_hypopnea_rules(sim_dir: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    import numpy as np

    from synthsleepnet.simulate import simulate_night

    assert main(["stats", str(sim_dir / "sim-0013-nsrr.xml"), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    night = simulate_night(13, hours=40 / 60, ahi=30.0)  # the same night: its events as designed
    truth = night.respiratory_truth
    asleep = night.hypnogram[(truth["onset_s"] // night.epoch_s).astype(int)] > 0
    hours = stats["TST_min"] / 60
    deep = truth["desaturation_pct"].round(1) >= 4  # the XML states each desaturation's depth
    assert stats["AHI"] == pytest.approx(asleep.sum() / hours) and stats["n_events"] == asleep.sum()
    assert stats["AHI_4pct"] == pytest.approx(np.sum(asleep & ((truth["event"] != "hypopnea") | deep)) / hours)
    assert stats["AHI_4pct"] <= stats["AHI_3pct"] <= stats["AHI"] and stats["AHI_4pct"] < stats["AHI"]
    falls = night.hypnogram[((truth["onset_s"] + 20) // night.epoch_s).astype(int)] > 0  # each 20 s after its event
    assert stats["ODI4"] == pytest.approx(np.sum(falls & deep) / hours)  # the scorer's own, from its stated depths
    arousals = night.events[night.events["event"] == "arousal"]
    aroused = night.hypnogram[(arousals["onset_s"] // night.epoch_s).astype(int)] > 0
    assert aroused.any() and stats["ArI"] == pytest.approx(aroused.sum() / hours)  # its arousal index


def test_stats_with_its_recording_gives_the_heart_rate_by_the_scorers_stages(
        sim_dir: Path, real_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from synthsleepnet.cardiac import cardiac_measures, detect_r_peaks, heart_rate, hrv_measures
    from synthsleepnet.io import read_recording
    from synthsleepnet.simulate import simulate_night

    edf, xml = sim_dir / "sim-0012.edf", sim_dir / "sim-0012-nsrr.xml"
    assert main(["stats", str(xml), "--recording", str(edf), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    ecg = read_recording(edf).signal("ECG")
    beats, hypnogram = detect_r_peaks(ecg.data, ecg.sfreq), simulate_night(12, hours=40 / 60, ahi=30.0).hypnogram
    expected = {**cardiac_measures(heart_rate(beats, ecg.duration_s), hypnogram), **hrv_measures(beats, hypnogram)}
    assert expected["HRV_segments_NREM"] > 0 and stats["TST_min"] == pytest.approx(np.sum(hypnogram > 0) / 2)
    for key in ("HR_mean_sleep", "HR_max_recording", "HR_mean_NREM", "HRV_RMSSD_NREM", "HRV_SDNN_NREM",
                "HRV_segments_NREM", "HRV_segments_W"):
        assert stats[key] == pytest.approx(expected[key], abs=1e-6), key
    assert main(["stats", str(xml), "--recording", str(real_data / "sleep-edf" / "short_psg.edf")]) == 2
    assert "short_psg.edf: no heart rate: no channel reads as an ECG" in capsys.readouterr().err
    assert main(["stats", str(xml), str(xml), "--recording", str(edf)]) == 2
    assert "--recording goes with one scoring, not 2" in capsys.readouterr().err

    # a scoring that starts a minute after its recording is moved onto it, as prepare moves it
    import dataclasses
    import datetime as dt

    from synthsleepnet import read_scoring, scoring_statistics

    recording = read_recording(edf)
    assert recording.start is not None
    later = dataclasses.replace(read_scoring(xml), start=recording.start + dt.timedelta(seconds=60))
    shifted = np.r_[[-1, -1], hypnogram[:-2]]  # two epochs later on the recording
    moved = scoring_statistics(later, recording=recording)
    for key, value in {**cardiac_measures(heart_rate(beats, ecg.duration_s), shifted),
                       **hrv_measures(beats, shifted)}.items():
        assert moved[key] == pytest.approx(value, abs=1e-6, nan_ok=True), key
    # lights given as clock times bound time in bed for the heart rate too
    off, on = ((recording.start + dt.timedelta(minutes=m)).time() for m in (5, 35))
    bounded = scoring_statistics(xml, recording=recording, lights=(off, on))  # the XML states no start: the EDF's
    assert bounded["TIB_min"] == 30.0
    for key, value in {**cardiac_measures(heart_rate(beats, ecg.duration_s), hypnogram, in_bed=slice(10, 70)),
                       **hrv_measures(beats, hypnogram, in_bed=slice(10, 70))}.items():
        assert bounded[key] == pytest.approx(value, abs=1e-6, nan_ok=True), key


def test_stats_of_a_folder_of_recordings_pairs_each_with_its_scoring(sim_dir: Path, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    import pandas as pd

    folder = tmp_path / "cohort"
    shutil.copytree(sim_dir, folder)
    shutil.copy(folder / "sim-0011.edf", folder / "unscored.edf")  # no scoring beside it
    assert main(["stats", "--recordings", str(folder), "--out", str(tmp_path / "table.csv")]) == 1  # one failed
    table = pd.read_csv(tmp_path / "table.csv")
    assert [Path(r).name for r in table["recording"]] == ["sim-0011.edf", "sim-0012.edf", "sim-0013.edf", "unscored.edf"]
    assert [Path(s).name for s in table["scoring"][:3]] == [f"sim-00{n}-nsrr.xml" for n in (11, 12, 13)]
    assert "unscored.edf: no scoring found beside it" in table["error"].iloc[3] and table["error"][:3].isna().all()
    capsys.readouterr()
    assert main(["stats", str(folder / "sim-0012-nsrr.xml"), "--recording", str(folder / "sim-0012.edf"), "--json"]) == 0
    one = json.loads(capsys.readouterr().out)
    assert table.iloc[1][["TST_min", "AHI", "HR_mean_sleep", "HRV_RMSSD_NREM"]].tolist() == pytest.approx(
        [one["TST_min"], one["AHI"], one["HR_mean_sleep"], one["HRV_RMSSD_NREM"]])  # as one at a time
    assert main(["stats", str(folder / "sim-0012-nsrr.xml"), "--recordings", str(folder)]) == 2
    assert "give scoring files or --recordings FOLDER, not both" in capsys.readouterr().err
    assert main(["stats"]) == 2 and "give a scoring file (or several), or --recordings FOLDER" in capsys.readouterr().err


def test_json_outputs_are_strict_json_with_null_for_undefined_numbers(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    hypnogram = tmp_path / "no-rem.csv"  # no REM: its R latency is undefined
    hypnogram.write_text("onset,duration,stage\n0,30,W\n30,60,N2\n")
    assert main(["stats", str(hypnogram), "--json"]) == 0

    def refuse(constant: str) -> None:
        raise AssertionError(f"not JSON: {constant}")  # what jq and JavaScript do with NaN

    stats = json.loads(capsys.readouterr().out, parse_constant=refuse)
    assert stats["R_latency_min"] is None and stats["TST_min"] == 1.0


def test_stats_of_many_scorings_make_one_table(sim_dir: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    import pandas as pd

    broken = tmp_path / "broken-nsrr.xml"
    broken.write_text("<PSGAnnotation><ScoredEvents>")
    scorings = [str(sim_dir / f"sim-00{n}-nsrr.xml") for n in (11, 12, 13)]
    assert main(["stats", *scorings, str(broken), "--out", str(tmp_path / "cohort.csv")]) == 1  # one failed
    table = pd.read_csv(tmp_path / "cohort.csv")
    assert list(table["scoring"]) == [*scorings, str(broken)]
    assert table["error"].iloc[:3].isna().all() and "not well-formed XML" in table["error"].iloc[3]
    capsys.readouterr()
    main(["stats", scorings[2], "--json"])
    one = json.loads(capsys.readouterr().out)
    assert table.iloc[2][["TST_min", "SE_pct", "AHI", "AHI_4pct"]].tolist() == pytest.approx(
        [one["TST_min"], one["SE_pct"], one["AHI"], one["AHI_4pct"]])  # the same numbers as one at a time
    assert main(["stats", *scorings[:2], "--json"]) == 0
    assert [row["scoring"] for row in json.loads(capsys.readouterr().out)] == scorings[:2]


def test_info_says_when_a_recording_embeds_its_scoring(sim_dir: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from helpers import embed_stages

    embedded = embed_stages(sim_dir / "sim-0011.edf", sim_dir / "sim-0011-nsrr.xml", tmp_path / "own.edf")
    assert main(["info", str(embedded)]) == 0
    assert "its own scoring: 80 epochs staged in its annotations" in capsys.readouterr().out
    assert main(["info", "--json", str(sim_dir / "sim-0011.edf")]) == 0  # lights marks only: no scoring
    assert json.loads(capsys.readouterr().out)["own_scoring_epochs"] == 0


def test_info_json(real_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "--json", str(real_data / "sleep-edf" / "short_psg.edf")]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = {r["label"]: r for r in data["channels"]}
    assert rows["EEG Fpz-Cz"]["canonical"] == "Fpz-Cz" and rows["Resp oro-nasal"]["sfreq"] == 1


def test_prepare_sleep_edf_with_hypnogram(real_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["prepare", str(real_data / "sleep-edf" / "short_psg.edf"), "--scoring",
                 str(real_data / "sleep-edf" / "hypnograms" / "SC4001EC-Hypnogram.edf"),
                 "--out", str(tmp_path / "st"), "--quiet"])
    out = capsys.readouterr().out
    assert code == 0 and "hypnogram trimmed" in out
    assert main(["inspect", str(tmp_path / "st"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["epochs"] == 10 and summary["stages"]["W"] == 10


def test_prepare_exit_status_on_failure(sim_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.edf"
    junk.write_bytes(b"x" * 300)
    args = ["prepare", str(sim_dir / "sim-0011.edf"), str(junk), "--out", str(tmp_path / "st"), "--quiet"]
    assert main(args) == 1
    assert "FAILED junk" in capsys.readouterr().out
    assert main([*args, "--keep-going"]) == 0


def test_simulate_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["simulate", "--nights", "1", "--hours", "0.2", "--out", str(tmp_path), "--quiet"]
    assert main(args) == 0
    assert main(args) == 2  # refused: the folder holds EDF files
    assert main([*args, "--overwrite"]) == 0


@pytest.mark.parametrize("command", ["info", "prepare", "inspect", "simulate", "models"])
def test_every_subcommand_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert len(capsys.readouterr().out) > 100


def test_errors_exit_2_with_a_message(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert main(["inspect", str(tmp_path)]) == 2
    assert "is not an epoch store" in caplog.text


def test_models_lists_presets_with_sizes_and_flops(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--json"]) == 0
    rows = {r["preset"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == {"paper", "small", "tiny", "fast"}
    paper = rows["paper"]
    assert paper["neuronet_params"] == pytest.approx(71.6e6, rel=0.01)
    assert paper["synthsleepnet_params"] == pytest.approx(296e6, rel=0.01)
    assert paper["synthsleepnet_trainable"] == pytest.approx(28e6, rel=0.02)
    assert paper["gflops_per_epoch_per_modality"]["total"] == pytest.approx(8.9, rel=0.03)
    assert rows["tiny"]["neuronet_params"] < rows["small"]["neuronet_params"] < paper["neuronet_params"]


_KEPT_AFTER_FREE = """
import ctypes, sys
from synthsleepnet.score_files import reuse_freed_memory
fields = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")
class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in fields]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype, libc.malloc.restype = Info, ctypes.c_void_p
if sys.argv[1] == "set":
    reuse_freed_memory()
libc.free(ctypes.c_void_p(libc.malloc(20 << 20)))
print(libc.mallinfo2().fordblks >= 20 << 20)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the malloc settings are glibc's")
def test_score_command_keeps_freed_batches_for_reuse() -> None:
    kept = {mode: subprocess.run([sys.executable, "-c", _KEPT_AFTER_FREE, mode], capture_output=True, text=True,
                                 check=True).stdout.strip() for mode in ("default", "set")}
    assert kept == {"default": "False", "set": "True"}  # a 20-MB batch freed stays in the heap


_EXECUTABLE = """
import atexit, sys
from pathlib import Path
atexit.register(Path(sys.argv[1]).write_text, "exit handlers ran")
sys.argv = ["synthsleepnet", *sys.argv[2:]]
from synthsleepnet.cli import run
run()
"""


@pytest.mark.parametrize(("command", "status"), [(["models"], 0), (["stats", "no-such-scoring.xml"], 2)])
def test_executable_flushes_its_output_runs_exit_handlers_and_keeps_the_status(
        command: list[str], status: int, tmp_path: Path) -> None:
    # it leaves with os._exit (no interpreter teardown): what is buffered for a pipe must still arrive
    marker = tmp_path / "exit.txt"
    buffered = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    done = subprocess.run([sys.executable, "-c", _EXECUTABLE, str(marker), *command], capture_output=True, text=True,
                          cwd=tmp_path, env=buffered)
    assert done.returncode == status
    assert marker.read_text() == "exit handlers ran"
    if status == 0:
        assert [row.split()[0] for row in done.stdout.splitlines()[1:]] == list(PRESETS)  # every row arrived
    else:
        assert "no-such-scoring.xml" in done.stderr
