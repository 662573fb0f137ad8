"""The epoch store: atomic nights, resume, manifest, random and contiguous reads."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import embed_stages

from synthsleepnet import EpochStore, PreprocessingConfig, prepare_recording, prepare_store
from synthsleepnet.io import RecordingFiles, find_recordings


@pytest.fixture(scope="module")
def store(sim_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("store") / "store"
    summary = prepare_store(sim_dir, out, cohort="sim", progress=False)
    assert summary.ok and len(summary.prepared) == 3
    return out


def test_discovery_pairs_nsrr_xml(sim_dir: Path) -> None:
    items = find_recordings(sim_dir)
    assert [i.recording.name for i in items] == ["sim-0011.edf", "sim-0012.edf", "sim-0013.edf"]
    assert all(i.scoring is not None and i.scoring.name == i.recording.stem + "-nsrr.xml" for i in items)


def test_discovery_pairs_sleep_edf_and_hmc(tmp_path: Path) -> None:
    for name in ("SC4001E0-PSG.edf", "SC4001EC-Hypnogram.edf", "SN001.edf", "SN001_sleepscoring.edf"):
        (tmp_path / name).write_bytes(b"0")
    pairs = {i.recording.name: i.scoring.name if i.scoring else None for i in find_recordings(tmp_path)}
    assert pairs == {"SC4001E0-PSG.edf": "SC4001EC-Hypnogram.edf", "SN001.edf": "SN001_sleepscoring.edf"}


def test_manifest_and_summary(store: Path) -> None:
    st = EpochStore(store)
    assert st.night_ids == ["sim-0011", "sim-0012", "sim-0013"]
    row = st.manifest.iloc[0]
    assert row["n_epochs"] == 80 and row["cohort"] == "sim" and "C4-M1" in row["channels"]
    assert row["n_W"] + row["n_N1"] + row["n_N2"] + row["n_N3"] + row["n_R"] + row["n_unscored"] == 80
    summary = st.summary()
    assert summary["nights"] == 3 and summary["epochs"] == 240
    assert summary["nights_per_modality"]["spo2"] == 3 and summary["apnea_epochs"] > 0


def test_random_reads_equal_the_prepared_night(store: Path, sim_dir: Path) -> None:
    st = EpochStore(store)
    edf = sim_dir / "sim-0012.edf"
    night = prepare_recording(edf, sim_dir / "sim-0012-nsrr.xml")
    idx = np.array([57, 3, 4, 5, 79, 0])
    got = st.night("sim-0012").read(idx)
    # float16 storage: relative error ≤ 2^-11 and the values are clipped to ±20
    np.testing.assert_allclose(got, night.signals[idx], atol=20 * 2 ** -11, rtol=2 ** -10)
    np.testing.assert_array_equal(st.night("sim-0012").labels, night.labels)
    window = st.night("sim-0012").read_window(10, 20)
    np.testing.assert_array_equal(window, st.night("sim-0012").read(np.arange(10, 30)))


def test_a_recording_that_embeds_its_scoring_is_labelled_from_it(store: Path, sim_dir: Path,
                                                                  tmp_path: Path) -> None:
    own = tmp_path / "own"
    own.mkdir()  # sim-0012 exported with its NSRR scoring's stages inside, no scoring file beside it
    embedded = embed_stages(sim_dir / "sim-0012.edf", sim_dir / "sim-0012-nsrr.xml", own / "sim-0012.edf")
    summary = prepare_store(own, tmp_path / "store", progress=False)
    assert summary.ok and "the recording's own stage annotations are its scoring" in summary.reports["sim-0012"]
    night, paired = EpochStore(tmp_path / "store").night("sim-0012"), EpochStore(store).night("sim-0012")
    stage = EpochStore(store).label_column("stage")
    np.testing.assert_array_equal(night.labels[:, stage], paired.labels[:, stage])
    assert (night.labels[:, stage] >= 0).all() and night.meta["scoring"] == str(embedded)


def test_random_epochs_cover_nights_and_return_labels(store: Path) -> None:
    st = EpochStore(store)
    x, y, keys = st.random_epochs(np.random.default_rng(0), 64)
    assert x.shape == (64, 10, 3000) and y.shape == (64, 4)
    assert len({k[0] for k in keys}) == 3
    for (night_id, i), labels in zip(keys[:5], y[:5], strict=True):
        np.testing.assert_array_equal(st.night(night_id).labels[i], labels)


def test_out_of_range_index(store: Path) -> None:
    with pytest.raises(IndexError, match=r"epoch indices must be in \[0, 80\)"):
        EpochStore(store).night("sim-0011").read([80])


def test_rerun_skips_finished_nights(store: Path, sim_dir: Path) -> None:
    summary = prepare_store(sim_dir, store, progress=False)
    assert summary.skipped == ["sim-0011", "sim-0012", "sim-0013"] and not summary.prepared


def test_other_preprocessing_is_refused(store: Path, sim_dir: Path) -> None:
    with pytest.raises(ValueError, match="prepared with other preprocessing settings"):
        prepare_store(sim_dir, store, config=PreprocessingConfig(clip=10.0), progress=False)


def test_failed_night_is_reported_and_others_prepared(sim_dir: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.edf"
    junk.write_bytes(b"not an edf" * 50)
    items = [RecordingFiles(sim_dir / "sim-0011.edf", sim_dir / "sim-0011-nsrr.xml"), RecordingFiles(junk, None)]
    summary = prepare_store(items, tmp_path / "st", progress=False)
    assert summary.prepared == ["sim-0011"]
    assert "junk.edf: not a readable EDF/BDF file" in summary.failed["junk"]
    assert EpochStore(tmp_path / "st").night_ids == ["sim-0011"]


def test_half_written_night_is_never_listed_and_is_cleaned(store: Path, sim_dir: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "store"
    shutil.copytree(store, copy)
    shutil.rmtree(copy / "nights" / "sim-0013")
    (copy / "manifest.csv").unlink()  # the crash happened before the manifest was rewritten
    partial = copy / "nights" / ".tmp-sim-0013-999"
    partial.mkdir()
    (partial / "signals.npy").write_bytes(b"half")
    st = EpochStore(copy)
    assert "sim-0013" not in st.night_ids
    summary = prepare_store(sim_dir, copy, progress=False)
    assert summary.prepared == ["sim-0013"] and not partial.exists()


def test_kill_midrun_then_resume_loses_nothing(sim_dir: Path, store: Path, tmp_path: Path) -> None:
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "synthsleepnet", "prepare", str(sim_dir), "--out", str(out), "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not (out / "nights" / "sim-0011" / "meta.json").exists():
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = [p.name for p in (out / "nights").iterdir() if not p.name.startswith(".")]
    assert 1 <= len(done) < 3
    for name in done:  # every night present is complete
        assert json.loads((out / "nights" / name / "meta.json").read_text())["n_epochs"] == 80
    result = subprocess.run(cmd, capture_output=True, text=True, check=True)
    assert "skipped" in result.stdout
    resumed, clean = EpochStore(out), EpochStore(store)
    assert resumed.night_ids == clean.night_ids
    for night_id in clean.night_ids:
        np.testing.assert_array_equal(resumed.night(night_id).read(np.arange(80)),
                                      clean.night(night_id).read(np.arange(80)))


def test_parallel_workers_give_the_same_store(sim_dir: Path, store: Path, tmp_path: Path) -> None:
    summary = prepare_store(sim_dir, tmp_path / "par", workers=2, progress=False)
    assert sorted(summary.prepared) == ["sim-0011", "sim-0012", "sim-0013"]
    a, b = EpochStore(tmp_path / "par"), EpochStore(store)
    np.testing.assert_array_equal(a.night("sim-0013").read(np.arange(80)), b.night("sim-0013").read(np.arange(80)))


def test_a_dask_cluster_prepares_the_same_store_isolating_a_bad_night(sim_dir: Path, store: Path,
                                                                       tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    junk = tmp_path / "in" / "junk.edf"
    junk.parent.mkdir()
    junk.write_bytes(b"not an edf" * 50)
    items = [*(RecordingFiles(sim_dir / f"sim-00{n}.edf", sim_dir / f"sim-00{n}-nsrr.xml") for n in (11, 12, 13)),
             RecordingFiles(junk, None)]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as cluster:
        summary = prepare_store(items, tmp_path / "dask", engine="dask", scheduler=cluster.scheduler_address,
                                progress=False)
        assert sorted(summary.prepared) == ["sim-0011", "sim-0012", "sim-0013"]
        assert "junk.edf: not a readable EDF/BDF file" in summary.failed["junk"]
        again = prepare_store(items, tmp_path / "dask", engine="dask", scheduler=cluster.scheduler_address,
                              progress=False)
        assert sorted(again.skipped) == ["sim-0011", "sim-0012", "sim-0013"] and not again.prepared
    a, b = EpochStore(tmp_path / "dask"), EpochStore(store)
    assert a.night_ids == b.night_ids  # the manifest, assembled once at the end
    for night in b.night_ids:
        np.testing.assert_array_equal(a.night(night).read(np.arange(80)), b.night(night).read(np.arange(80)))
    with pytest.raises(ValueError, match="needs the scheduler's address"):
        prepare_store(items, tmp_path / "x", engine="dask", progress=False)
