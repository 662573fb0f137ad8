"""Training: splits, label fractions, class balance, metrics against scikit-learn, the loop
(resume, DDP), and every command end to end on tiny simulated nights."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from helpers import head_and_meta
from safetensors.torch import load_file

from synthsleepnet import EpochStore, prepare_store
from synthsleepnet._config import PHASE_DEFAULTS, TrainConfig
from synthsleepnet.cli import main
from synthsleepnet.metrics import auprc, auroc, classification_metrics, event_f1
from synthsleepnet.models import read_checkpoint_meta
from synthsleepnet.simulate import simulate_cohort
from synthsleepnet.training import (
    assign_splits,
    class_weights,
    finetune,
    fit,
    inverse_frequency_weights,
    probe,
    sample_labelled_epochs,
    split_nights,
)
from synthsleepnet.training.data import TeacherTargets, Windows

QUICK = ["--epochs", "1", "--batch-size", "8", "--max-steps-per-epoch", "2", "--quiet"]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ten simulated 25-minute nights of five subjects (two nights each), prepared."""
    root = tmp_path_factory.mktemp("cohort")
    for i, (edf, xml) in enumerate(simulate_cohort(root / "sim", 10, 25 / 60, seed=40, ahi=35.0, progress=False)):
        name = f"subj{4 + i // 2}_night{i % 2}"
        (root / "rec").mkdir(exist_ok=True)
        edf.rename(root / "rec" / f"{name}.edf")
        xml.rename(root / "rec" / f"{name}-nsrr.xml")
    summary = prepare_store(root / "rec", root / "store", subject_pattern=r"subj(\d)_night", progress=False)
    assert summary.ok
    return root


@pytest.fixture()
def store(cohort: Path, tmp_path: Path) -> Path:
    """A private copy of the cohort's store (tests write splits and runs into it)."""
    shutil.copytree(cohort / "store", tmp_path / "store")
    return tmp_path / "store"


def test_splits_are_by_subject_disjoint_deterministic_and_saved(store: Path) -> None:
    fractions = {"pretrain": 0.4, "train": 0.2, "val": 0.2, "test": 0.2}
    first = assign_splits(store, fractions=fractions, seed=1)
    assert set(first) == {"4", "5", "6", "7", "8"}  # subjects, not nights
    assert sorted(first.values()) == ["pretrain", "pretrain", "test", "train", "val"]
    st = EpochStore(store)
    by_split = {s: set(st.manifest.loc[st.manifest["split"] == s, "subject"]) for s in ("pretrain", "train", "val", "test")}
    for a in by_split:
        for b in by_split:
            assert a == b or not by_split[a] & by_split[b]
    nights = split_nights(st, "test")
    assert len(nights) == 2 and {st.manifest.set_index("night_id").loc[n, "subject"] for n in nights} == by_split["test"]
    assert assign_splits(store, seed=99) == first  # kept unless overwrite
    (store / "splits.json").unlink()
    assert assign_splits(store, fractions=fractions, seed=1) == first  # same seed, same split


def test_split_fractions_are_checked(store: Path) -> None:
    with pytest.raises(ValueError, match="must be non-negative, sum to 1"):
        assign_splits(store, fractions={"train": 0.5, "test": 0.6}, overwrite=True)


def test_label_fraction_sampling(store: Path) -> None:
    assign_splits(store, seed=0)
    st = EpochStore(store)
    nights = st.night_ids[:4]
    total = sum(int((st.night(n).labels[:, 0] >= 0).sum()) for n in nights)
    a = sample_labelled_epochs(st, nights, 0.05, task="stage", seed=3)
    b = sample_labelled_epochs(st, nights, 0.05, task="stage", seed=3)
    c = sample_labelled_epochs(st, nights, 0.05, task="stage", seed=4)
    assert {k: v.tolist() for k, v in a.items()} == {k: v.tolist() for k, v in b.items()}
    assert {k: v.tolist() for k, v in a.items()} != {k: v.tolist() for k, v in c.items()}
    n = sum(v.size for v in a.values())
    assert n == round(0.05 * total)
    for night, idx in a.items():
        assert len(set(idx.tolist())) == idx.size  # without replacement
        assert (st.night(night).labels[idx, 0] >= 0).all()
    with pytest.raises(ValueError, match=r"label fraction must be in \(0, 1\]"):
        sample_labelled_epochs(st, nights, 0.0, task="stage", seed=0)


def test_label_fractions_count_labelled_epochs_only() -> None:
    labels = np.array([[0], [-1], [2], [-1], [3], [-1]], dtype=np.int8)  # half the night unscored
    store = SimpleNamespace(label_column=lambda task: 0, night=lambda night: SimpleNamespace(labels=labels))
    assert sample_labelled_epochs(store, ["n1"], 1.0, task="stage", seed=0)["n1"].tolist() == [0, 2, 4]
    assert sum(v.size for v in sample_labelled_epochs(store, ["n1"], 0.67, task="stage", seed=0).values()) == 2


def test_class_weights_are_inverse_frequencies() -> None:
    labels = np.array([0] * 90 + [1] * 10 + [-1] * 5)
    w = class_weights(labels, 2)
    assert w[1] / w[0] == pytest.approx(9.0)  # rare class up-weighted, not the frequent one
    sample = inverse_frequency_weights(labels)
    assert sample[-1] == 0 and sample[labels == 0].sum() == pytest.approx(sample[labels == 1].sum())
    draws = np.random.default_rng(0).choice(labels.size, size=20000, p=sample)
    assert np.mean(labels[draws] == 1) == pytest.approx(0.5, abs=0.02)


def test_class_weights_follow_the_sampler() -> None:
    windows = np.array([[0, 0, 0, 0]] * 8 + [[0, 1, 1, -1]] * 2)  # event windows are rare
    sampling = inverse_frequency_weights((windows == 1).any(axis=1).astype(int))
    assert sampling[8:].sum() == pytest.approx(0.5)  # half of the draws hold an event
    # per draw, expected epochs: "none" 0.5 * 4 + 0.5 * 1 = 2.5, event 0.5 * 2 = 1
    w = class_weights(windows, 2, sampling)
    assert w[1] / w[0] == pytest.approx(2.5)
    assert class_weights(windows, 2)[1] / class_weights(windows, 2)[0] == pytest.approx(34 / 4)


def test_window_labels_hide_epochs_outside_the_sample(store: Path) -> None:
    st = EpochStore(store)
    night = st.night_ids[0]
    chosen = {night: np.array([3, 25])}
    windows = Windows(st, [night], st.night(night).channels[:1], length=20, stride=10, epochs=chosen)
    labels = windows.labels(0)
    assert labels.shape == (len(windows), 20)
    for (_, start), row, (_, y) in zip(windows.items, labels, (windows[i] for i in range(len(windows))), strict=True):
        np.testing.assert_array_equal(row, y[:, 0].numpy())  # what training sees
        assert set(np.flatnonzero(row >= 0) + start) <= {3, 25}


def test_a_labelled_set_smaller_than_the_batch_keeps_the_learning_rate(tmp_path: Path) -> None:
    # 1 % labels can be fewer epochs than one batch: the step must still use the configured rate
    torch.manual_seed(0)
    model, meta = head_and_meta(4, 2)
    first = model.net[0].weight
    before = first.detach().clone()
    data = torch.utils.data.TensorDataset(torch.randn(8, 4), torch.randint(0, 2, (8,)))
    config = TrainConfig(epochs=1, batch_size=256, base_lr=0.256, weight_decay=0.0, precision="fp32")

    def step(batch: tuple[torch.Tensor, torch.Tensor], _: torch.Generator) -> dict[str, torch.Tensor]:
        return {"loss": torch.nn.functional.cross_entropy(model(batch[0]), batch[1])}

    fit(model, data, step, config=config, out_dir=tmp_path, meta=meta, progress=False)
    # one AdamW step moves every weight with a gradient by the learning rate (0.256 * 256 / 256)
    torch.testing.assert_close((first.detach() - before).abs(), torch.full_like(before, 0.256), rtol=1e-3, atol=1e-3)


def test_the_training_state_keeps_what_trains_and_guards_what_is_frozen(tmp_path: Path) -> None:
    from synthsleepnet._validation import ResumeError

    torch.manual_seed(0)
    model, meta = head_and_meta(4, 2)
    model.net[0].requires_grad_(False)  # a frozen first layer, as a classifier's fusion is
    data = torch.utils.data.TensorDataset(torch.randn(16, 4), torch.randint(0, 2, (16,)))
    config = TrainConfig(epochs=3, batch_size=8, precision="fp32", seed=1)

    def step(batch: tuple[torch.Tensor, torch.Tensor], _: torch.Generator) -> dict[str, torch.Tensor]:
        return {"loss": torch.nn.functional.cross_entropy(model(batch[0]), batch[1])}

    scores = iter([0.5, 0.9, 0.7])

    def validate(_: torch.nn.Module) -> dict[str, float]:
        return {"macro_f1": next(scores)}

    result = fit(model, data, step, config=config, out_dir=tmp_path / "run", meta=meta, validate=validate,
                 progress=False)
    state = torch.load(tmp_path / "run" / "train_state.pt", weights_only=True)
    assert not any(k.startswith("net.0.") for k in state["model"])  # frozen: hashed, not stored
    assert "net.4.weight" in state["model"] and "net.5.running_mean" in state["model"]
    # the checkpoint holds the selected epoch (2), not the last, and the model is left holding it
    assert result.best_epoch == 2 and read_checkpoint_meta(result.checkpoint).epoch == 2
    saved = load_file(str(result.checkpoint))
    torch.testing.assert_close(saved["net.4.weight"], state["best"]["net.4.weight"], rtol=0, atol=0)
    torch.testing.assert_close(model.net[4].weight.detach(), saved["net.4.weight"], rtol=0, atol=0)
    with torch.no_grad():
        model.net[0].weight.add_(1.0)  # the frozen weights change between the run and its resumption
    with pytest.raises(ResumeError, match="frozen weights differ"):
        fit(model, data, step, config=config, out_dir=tmp_path / "run", meta=meta, validate=validate, resume=True,
            progress=False)


def test_metrics_match_scikit_learn() -> None:
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    y = rng.integers(-1, 5, 500)
    p = np.where(rng.random(500) < 0.6, y, rng.integers(0, 5, 500)).clip(0)
    got = classification_metrics(y, p, 5)
    keep = y >= 0
    assert got["accuracy"] == pytest.approx(sk.accuracy_score(y[keep], p[keep]))
    assert got["macro_f1"] == pytest.approx(sk.f1_score(y[keep], p[keep], average="macro"))
    assert got["kappa"] == pytest.approx(sk.cohen_kappa_score(y[keep], p[keep]))
    assert got["confusion"] == sk.confusion_matrix(y[keep], p[keep], labels=range(5)).tolist()
    assert list(got["f1"].values()) == pytest.approx(list(sk.f1_score(y[keep], p[keep], average=None)))
    y3 = y[keep][y[keep] != 3]  # a night without N3, scored and predicted (as happens): macro over 4 classes
    p3 = np.where(p[keep][y[keep] != 3] == 3, 2, p[keep][y[keep] != 3])
    assert classification_metrics(y3, p3, 5)["macro_f1"] == pytest.approx(sk.f1_score(y3, p3, average="macro"))
    yb, score = rng.integers(0, 2, 300), rng.random(300)
    score[:50] = 0.5  # ties
    assert auroc(yb, score) == pytest.approx(sk.roc_auc_score(yb, score))
    assert auprc(yb, score) == pytest.approx(sk.average_precision_score(yb, score))


def test_event_f1_overlap_rule() -> None:
    true = [(100.0, 20.0), (400.0, 15.0), (900.0, 30.0)]
    pred = [(90.0, 30.0), (600.0, 30.0), (905.0, 5.0)]
    got = event_f1(true, pred)
    assert got["event_recall"] == pytest.approx(2 / 3) and got["event_precision"] == pytest.approx(2 / 3)
    strict = event_f1(true, pred, min_overlap=0.5)  # 5 s of a 30-s event is not a match at 50 %
    assert strict["event_recall"] == pytest.approx(1 / 3)


def test_every_command_end_to_end(store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = tmp_path / "runs"
    encoders = []
    for modality in ("eeg", "eog", "emg", "ecg"):
        assert main(["pretrain", "unimodal", "--store", str(store), "--modality", modality,
                     "--out", str(runs / modality), *QUICK]) == 0
        encoders.append(f"{modality}={runs / modality / 'model.safetensors'}")
    assert main(["pretrain", "multimodal", "--store", str(store), "--encoders", *encoders,
                 "--out", str(runs / "fusion"), *QUICK]) == 0
    fusion = runs / "fusion" / "model.safetensors"
    assert main(["probe", "--store", str(store), "--task", "stage", "--labels", "0.5", "--fusion", str(fusion),
                 "--out", str(runs / "probe"), "--epochs", "2", "--quiet"]) == 0
    assert main(["finetune", "--store", str(store), "--task", "apnea", "--labels", "1.0", "--fusion", str(fusion),
                 "--out", str(runs / "ft"), "--epochs", "1", "--batch-size", "2", "--max-steps-per-epoch", "2",
                 "--quiet"]) == 0
    assert main(["finetune", "--store", str(store), "--task", "stage", "--labels", "0.05", "--scratch",
                 "--out", str(runs / "scratch"), "--epochs", "1", "--batch-size", "2", "--max-steps-per-epoch",
                 "1", "--quiet"]) == 0
    teacher = runs / "scratch" / "model.safetensors"
    assert main(["finetune", "--store", str(store), "--task", "stage", "--labels", "0.05", "--fusion", str(fusion),
                 "--teacher", str(teacher), "--out", str(runs / "student"), "--epochs", "1", "--batch-size", "2",
                 "--max-steps-per-epoch", "1", "--quiet"]) == 0
    student = read_checkpoint_meta(runs / "student" / "model.safetensors")  # records its teacher
    assert tuple(student.parents["teacher"]) == (str(teacher), read_checkpoint_meta(teacher).tensor_sha256)
    assert {"label_loss", "distillation"} <= set((runs / "student" / "log.csv").read_text().split("\n")[0].split(","))
    capsys.readouterr()
    assert main(["evaluate", str(runs / "probe" / "model.safetensors"), "--store", str(store), "--json"]) == 0
    stage = json.loads(capsys.readouterr().out)
    assert stage["split"] == "test" and stage["phase"] == "probe" and len(stage["confusion"]) == 5
    assert main(["evaluate", str(runs / "ft" / "model.safetensors"), "--store", str(store), "--json"]) == 0
    apnea = json.loads(capsys.readouterr().out)
    assert {"auroc", "auprc", "event_f1"} <= set(apnea) and apnea["pretrained"] is True
    log = (runs / "probe" / "log.csv").read_text().splitlines()
    assert log[0].startswith("epoch,lr,loss") and "val_macro_f1" in log[0] and len(log) == 3
    probe_config = json.loads((runs / "probe" / "config.json").read_text())
    # fewer labelled epochs than a batch: the batch, and so the learning rate, stays as configured
    assert probe_config["epochs"] == 2 and probe_config["batch_size"] == PHASE_DEFAULTS["probe"].batch_size
    # the test subjects were never used for training or selection
    st = EpochStore(store)
    meta = read_checkpoint_meta(runs / "probe" / "model.safetensors")
    assert meta.data is not None and meta.parents["fusion"][0] == str(fusion) and meta.task == "stage"
    test_nights = set(split_nights(st, "test"))
    assert not test_nights & set(meta.data.nights) and not test_nights & set(meta.data.val_nights)


def test_rerunning_into_a_used_folder_needs_resume(store: Path, tmp_path: Path) -> None:
    args = ["pretrain", "unimodal", "--store", str(store), "--modality", "eeg", "--out", str(tmp_path / "r"), *QUICK]
    assert main(args) == 0
    assert main(args) == 2  # FileExistsError, reported
    assert main([*args, "--resume"]) == 0


def test_kill_and_resume_gives_the_same_weights(store: Path, tmp_path: Path) -> None:
    base = [sys.executable, "-m", "synthsleepnet", "pretrain", "unimodal", "--store", str(store), "--modality",
            "eeg", "--epochs", "3", "--batch-size", "8", "--max-steps-per-epoch", "6", "--quiet"]
    subprocess.run([*base, "--out", str(tmp_path / "straight")], check=True, capture_output=True)
    killed = tmp_path / "killed"
    proc = subprocess.Popen([*base, "--out", str(killed)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not (killed / "train_state.pt").exists():
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    state = torch.load(killed / "train_state.pt", weights_only=True)
    assert state["epoch"] < 2, "the run finished before it could be killed; make epochs longer"
    subprocess.run([*base, "--out", str(killed), "--resume"], check=True, capture_output=True)
    a = load_file(str(tmp_path / "straight" / "model.safetensors"))
    b = load_file(str(killed / "model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


def test_two_processes_agree_with_one(tmp_path: Path) -> None:
    script = Path(__file__).with_name("ddp_fit.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1"}  # a crash shows its stack
    subprocess.run([sys.executable, str(script), str(tmp_path / "one")], check=True, env=env, capture_output=True)
    torchrun = Path(sys.executable).with_name("torchrun")
    with socket.socket() as probe:  # a free port: parallel CI jobs on one host must not collide
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # loopback only, so neither c10d nor gloo needs the host name to resolve
    two = subprocess.run([str(torchrun), "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port",
                          str(port), str(script), str(tmp_path / "two")],
                         env={**env, "GLOO_SOCKET_IFNAME": "lo"}, capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-4000:]
    ranks = torch.load(tmp_path / "two" / "ranks.pt", weights_only=True)
    torch.testing.assert_close(ranks[0], ranks[1], rtol=0, atol=0)  # replicas stay identical
    one = load_file(str(tmp_path / "one" / "model.safetensors"))
    two = load_file(str(tmp_path / "two" / "model.safetensors"))
    for key in one:
        torch.testing.assert_close(one[key], two[key], rtol=1e-5, atol=1e-6)


def test_loader_workers_do_not_change_the_result(store: Path, tmp_path: Path) -> None:
    from synthsleepnet.training import pretrain_unimodal

    config = TrainConfig(epochs=1, batch_size=8, max_steps_per_epoch=3, precision="fp32", device="cpu", seed=5)
    a = pretrain_unimodal(store, "eeg", tmp_path / "w0", config=config, progress=False)
    b = pretrain_unimodal(store, "eeg", tmp_path / "w2", config=dataclasses.replace(config, workers=2),
                          progress=False)
    wa, wb = load_file(str(a.checkpoint)), load_file(str(b.checkpoint))
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key], rtol=0, atol=0)


def test_each_rank_reads_a_disjoint_reshuffled_share() -> None:
    from synthsleepnet.training.loop import EpochSampler

    shares = [EpochSampler(10, seed=1, rank=r, world=3) for r in range(3)]
    first = [list(s) for s in shares]
    assert all(len(s) == 4 for s in first)  # 10 items padded to 12, as DistributedSampler does
    assert {i for s in first for i in s} == set(range(10))  # every item read, two twice (the padding)
    for s in shares:
        s.set_epoch(1)
    assert [list(s) for s in shares] != first  # a new order every epoch, the same on every rank
    again = EpochSampler(10, seed=1, rank=0, world=3)
    again.set_epoch(1)
    assert list(again) == list(shares[0])


def test_a_pretraining_batch_reads_only_its_channel(store: Path) -> None:
    from synthsleepnet.training.data import ChannelEpochs

    st = EpochStore(store)
    data = ChannelEpochs(st, st.night_ids[:2], ["C4-M1", "C3-M2"])
    picks = [0, len(data) - 1, 5, len(data) // 2]
    batch = data.__getitems__(picks)
    for pick, item in zip(picks, batch, strict=True):
        night = data.nights[data._night[pick]]
        full = st.night(night).read([int(data._epoch[pick])])[0, data._channel[pick]]
        torch.testing.assert_close(item, torch.from_numpy(full))



def test_the_convolution_cache_trains_the_same_model(store: Path, tmp_path: Path) -> None:
    from synthsleepnet._config import AdaptConfig
    from synthsleepnet.training import finetune

    config = TrainConfig(epochs=2, batch_size=2, max_steps_per_epoch=3, precision="fp32", device="cpu", seed=3)
    weights, logs = [], []
    for cached in (True, False):
        out = tmp_path / ("cached" if cached else "direct")
        result = finetune(store, "stage", 0.5, out, preset="tiny", channels=["C4-M1", "E1-M2"], config=config,
                          adapt=AdaptConfig(cache_conv=cached), progress=False)
        weights.append(load_file(str(result.checkpoint)))
        logs.append([line.split(",") for line in (out / "log.csv").read_text().splitlines()])
    new_adapters = [k for k in weights[0] if k.endswith("lora_b") and ("backbone.mlp" in k or "fusion.fusion" in k)]
    assert len(new_adapters) == 6 and all(weights[0][k].abs().sum() > 0 for k in new_adapters)  # zero at start
    for key in weights[0]:
        torch.testing.assert_close(weights[0][key], weights[1][key], rtol=1e-4, atol=1e-5)
    loss = logs[0][0].index("loss")
    assert [float(r[loss]) for r in logs[0][1:]] == pytest.approx([float(r[loss]) for r in logs[1][1:]], rel=1e-4)


def test_a_teacher_labels_every_training_window(store: Path) -> None:
    """Distillation: the student trains on every window (not only those holding a labelled
    epoch), each with the teacher's probabilities of its epochs beside the labels."""
    channels = ["C4-M1", "E1-M2"]
    st = EpochStore(store)
    nights = st.night_ids[:3]
    sample = {night: np.array([5]) for night in nights[:2]}  # the third night has no labelled epoch
    some = Windows(st, nights, channels, epochs=sample)
    every = Windows(st, nights, channels, epochs=sample, keep_unlabelled=True)
    assert len(every) == len(Windows(st, nights, channels)) > len(some)
    proba = {n: np.random.default_rng(0).dirichlet(np.ones(5), st.night(n).n_epochs).astype(np.float32)
             for n in nights}
    item = TeacherTargets(every, every, proba)[len(every) - 1]
    night, start = every.items[-1]
    assert night == nights[2] and (item[1].numpy() == -1).all()  # a window no label reaches: the teacher's alone
    np.testing.assert_array_equal(item[2].numpy(), proba[night][start:start + 20])


def test_a_teacher_must_be_a_fine_tuned_model_of_the_task(store: Path, tmp_path: Path) -> None:
    from synthsleepnet._validation import CheckpointError

    config = TrainConfig(epochs=1, batch_size=2, max_steps_per_epoch=1, precision="fp32", device="cpu", seed=3)
    fusion = _fusion_checkpoint(store, tmp_path / "fusion.safetensors")
    with pytest.raises(CheckpointError, match=f"{fusion} is a pretrain_multimodal checkpoint .* a teacher is a "
                                              "fine-tune checkpoint of the task being fine-tuned"):
        finetune(store, "stage", 0.5, tmp_path / "student", preset="tiny", channels=["C4-M1", "E1-M2"], config=config,
                 teacher=fusion, progress=False)
    from synthsleepnet._config import AdaptConfig, get_preset
    from synthsleepnet.models import CheckpointMeta, ModelSpec, build_model, save_checkpoint

    spec = ModelSpec("sleep_classifier", get_preset("tiny"), ("O1-M2",), 5, "sequence", AdaptConfig())
    occipital = save_checkpoint(tmp_path / "o1.safetensors", build_model(spec),
                                CheckpointMeta(phase="finetune", spec=spec, task="stage",
                                               preprocessing=EpochStore(store).config))
    with pytest.raises(ValueError, match=rf"teacher {occipital} reads \['O1-M2'\]; training night\(s\) \['"):
        finetune(store, "stage", 0.5, tmp_path / "student2", preset="tiny", channels=["C4-M1"], config=config,
                 teacher=occipital, progress=False)
    with pytest.raises(ValueError, match="distillation teaches per-epoch predictions; task 'events' predicts every"):
        finetune(store, "events", 0.5, tmp_path / "events", preset="tiny", channels=["C4-M1", "Airflow"],
                 config=config, teacher=fusion, progress=False)


def _fusion_checkpoint(store: Path, path: Path) -> Path:
    """A (randomly initialised) pretrained-fusion checkpoint over two of the store's channels."""
    from synthsleepnet._config import get_preset
    from synthsleepnet.models import CheckpointMeta, ModelSpec, build_model, save_checkpoint

    torch.manual_seed(0)
    spec = ModelSpec("synthsleepnet", get_preset("tiny"), ("C4-M1", "E1-M2"))
    return save_checkpoint(path, build_model(spec), CheckpointMeta(phase="pretrain_multimodal", spec=spec,
                                                                    preprocessing=EpochStore(store).config))


def test_probing_from_stored_features_matches_probing_from_signals(store: Path, tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    from synthsleepnet._config import AdaptConfig
    from synthsleepnet.training import probe

    fusion = _fusion_checkpoint(store, tmp_path / "fusion.safetensors")
    config = TrainConfig(epochs=3, batch_size=16, precision="fp32", device="cpu", seed=2)
    runs = {name: probe(store, "stage", 0.3, tmp_path / name, fusion_checkpoint=fusion, config=config,
                        adapt=AdaptConfig(cache_conv=name != "direct"), progress=False)
            for name in ("direct", "first", "second")}
    weights = {name: load_file(str(r.checkpoint)) for name, r in runs.items()}
    for key in weights["direct"]:
        for name in ("first", "second"):
            torch.testing.assert_close(weights[name][key], weights["direct"][key], rtol=1e-3, atol=1e-4)
    assert len(list((store / "features").rglob("*.safetensors"))) > 2  # kept for the next run


def test_evaluation_reads_a_pretrained_models_features_from_beside_the_store(store: Path, tmp_path: Path) -> None:
    from synthsleepnet.training import evaluate, finetune
    from synthsleepnet.training.splits import split_nights

    fusion = _fusion_checkpoint(store, tmp_path / "fusion.safetensors")
    config = TrainConfig(epochs=1, batch_size=2, max_steps_per_epoch=2, precision="fp32", device="cpu", seed=1)
    model = finetune(store, "stage", 0.5, tmp_path / "ft", fusion_checkpoint=fusion, config=config,
                     progress=False).checkpoint

    def kept() -> set[Path]:
        return {p.relative_to(store) for p in (store / "features").rglob("*.safetensors")}

    before = kept()
    direct = evaluate(model, store, device="cpu", precision="fp32", feature_cache=False)
    assert kept() == before
    cached = evaluate(model, store, device="cpu", precision="fp32")
    test_nights = split_nights(EpochStore(store), "test")
    assert {p.stem for p in kept() - before} == set(test_nights)  # the test nights' features, kept once
    assert cached["confusion"] == direct["confusion"]
    for key in ("accuracy", "macro_f1", "kappa"):
        assert cached[key] == pytest.approx(direct[key], abs=1e-9)
    assert evaluate(model, store, device="cpu", precision="fp32")["confusion"] == direct["confusion"]  # read back


@pytest.mark.parametrize("adapt", [finetune, probe], ids=["finetune", "probe"])
def test_a_scratch_seed_keeps_its_frozen_convolutions_across_label_fractions(adapt: Any, store: Path,
                                                                             tmp_path: Path) -> None:
    config = TrainConfig(epochs=1, batch_size=2, max_steps_per_epoch=1, seed=3, device="cpu", precision="fp32")

    def keys() -> set[str]:
        return {p.name for p in (store / "features").glob("conv-*")} if (store / "features").exists() else set()

    before = keys()
    for fraction in (0.05, 1.0):
        adapt(store, "stage", fraction, tmp_path / f"scratch-{fraction}", preset="tiny",
              channels=["C4-M1", "E1-M2"], config=config, progress=False)
        if fraction == 0.05:
            first = keys() - before
    assert len(first) == 2  # one per channel, kept beside the store
    assert keys() - before == first  # the other label fraction found the same convolutions


def test_stored_features_are_reused_and_recomputed_when_stale(store: Path, tmp_path: Path) -> None:
    from synthsleepnet._config import AdaptConfig
    from synthsleepnet._device import resolve_runtime
    from synthsleepnet.tasks import get_task
    from synthsleepnet.training.adapt import build_classifier
    from synthsleepnet.training.cache import ConvCache

    st = EpochStore(store)
    model, _, _ = build_classifier(get_task("stage"), "sequence", st, preset=None, channels=None, seed=0,
                                   fusion_checkpoint=_fusion_checkpoint(store, tmp_path / "f.safetensors"),
                                   adapt=AdaptConfig())
    runtime = resolve_runtime("cpu", "fp32")
    nights = st.night_ids[:3]
    def built() -> ConvCache:
        cache = ConvCache(model, st, nights, runtime, persist=True)
        cache.materialise()
        return cache

    lazy = ConvCache(model, st, nights, runtime, persist=False)
    assert lazy.computed == 0  # nothing until asked: a finished run that is resumed costs nothing
    lazy.night(nights[1])
    assert lazy.computed == 2 and list(lazy.features) == [nights[1]]
    lazy.release(nights[1])
    assert not lazy.features  # memory freed; asking again recomputes
    first = built()
    assert first.computed == 6 and len(list((store / "features").rglob("*.safetensors"))) == 6
    torch.testing.assert_close(lazy.night(nights[1]), first.night(nights[1]), rtol=0, atol=0)
    again = built()
    assert again.computed == 0
    for night in nights:
        for channel, features in first.night(night).items():
            torch.testing.assert_close(again.night(night)[channel], features, rtol=0, atol=0)
    signals = store / "nights" / nights[0] / "signals.npy"
    os.utime(signals, ns=(signals.stat().st_atime_ns, signals.stat().st_mtime_ns + 10**9))  # prepared again
    damaged = next((store / "features").rglob(f"{nights[1]}.safetensors"))
    damaged.write_bytes(damaged.read_bytes()[:100])
    assert built().computed == 2 + 1
    assert built().computed == 0  # and rewritten
