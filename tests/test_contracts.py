"""Typed contracts between the rooms: the task registry, the checkpoint schema (damaged files
refused, never scored), configs, resume identity, device placement and the light CLI."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from synthsleepnet import EpochStore, prepare_store
from synthsleepnet._config import (
    ModelConfig,
    PreprocessingConfig,
    TrainConfig,
    config_from_dict,
    get_preset,
    load_run_config,
)
from synthsleepnet._device import Runtime, resolve_precision
from synthsleepnet._validation import (
    CheckpointError,
    ConfigError,
    ModelOutputError,
    ResumeError,
    StoreError,
)
from synthsleepnet.cli import main
from synthsleepnet.metrics import classification_metrics
from synthsleepnet.models import (
    CheckpointMeta,
    ModelSpec,
    build_model,
    load_checkpoint,
    load_classifier,
    model_from_preset,
    save_checkpoint,
)
from synthsleepnet.scoring import score_recording
from synthsleepnet.tasks import TASKS, Task, event_rule, register_task
from synthsleepnet.training import fit, pretrain_unimodal, sample_labelled_epochs
from synthsleepnet.training.data import MultiChannelEpochs, Windows
from synthsleepnet.training.losses import neuronet_loss, synthsleepnet_loss

TINY = get_preset("tiny")
CHANNELS = ("C4-M1", "E1-M2")
QUICK = TrainConfig(epochs=1, batch_size=8, max_steps_per_epoch=2, precision="fp32", device="cpu")


# --- the task registry ------------------------------------------------------------------------
@pytest.fixture()
def arousal_task() -> Iterator[Task]:
    """A toy task: one registry entry and its label rule. Removed again after the test."""
    task = register_task(Task("arousal", ("none", "arousal"), event_rule(("arousal",), respiratory=False),
                              events=("arousal",), description="an arousal overlaps the epoch"))
    yield task
    del TASKS["arousal"]


def test_a_new_task_is_one_registry_entry(arousal_task: Task, sim_dir: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    prepare_store([sim_dir / "sim-0011.edf"], tmp_path / "store", progress=False)
    store = EpochStore(tmp_path / "store")
    assert store.label_names == ("stage", "apnea", "hypopnea", "events", "arousal")
    night = store.night(store.night_ids[0])
    column = store.label_column("arousal")
    arousals = night.events[night.events["event"] == "arousal"]
    first = int(arousals["onset_s"].iloc[0] // 30)
    assert night.labels[first, column] == 1 and 0 < night.labels[:, column].sum() < night.n_epochs
    # datasets, label sampling, metrics and the command line pick the task up by name
    assert MultiChannelEpochs(store, store.night_ids, ["C4-M1"])[0][1].shape == (5,)
    sample = sample_labelled_epochs(store, store.night_ids, 0.5, task="arousal", seed=0)
    assert sum(v.size for v in sample.values()) == night.n_epochs // 2
    labels = night.labels[:, column]
    assert classification_metrics(labels, labels, arousal_task.n_classes, arousal_task.classes)["macro_f1"] == 1.0
    with pytest.raises(SystemExit):
        main(["probe", "--help"])
    assert "arousal" in capsys.readouterr().out
    # a store prepared before the task existed says so instead of returning another column
    del TASKS["arousal"]
    old = tmp_path / "old"
    prepare_store([sim_dir / "sim-0011.edf"], old, progress=False)
    TASKS["arousal"] = arousal_task
    with pytest.raises(StoreError, match=r"has no labels for task 'arousal' \(its columns: \['stage', 'apnea', "
                                         r"'hypopnea', 'events'\]\); prepare the store again"):
        EpochStore(old).label_column("arousal")
    with pytest.raises(StoreError, match="holds label columns"):
        prepare_store([sim_dir / "sim-0012.edf"], old, progress=False)


def test_unknown_task_lists_the_registered_ones() -> None:
    from synthsleepnet.tasks import get_task

    with pytest.raises(ValueError, match=r"task must be one of \['stage', 'apnea', 'hypopnea', 'events'\], got 'sleepiness'"):
        get_task("sleepiness")


# --- checkpoints ------------------------------------------------------------------------------
def _classifier_checkpoint(path: Path, *, nan: bool = False) -> Path:
    torch.manual_seed(0)
    spec = ModelSpec("sleep_classifier", TINY, CHANNELS, 5, "epoch")
    model = build_model(spec)
    if nan:  # a diverged model: saved properly, its outputs are NaN
        with torch.no_grad():
            next(p for n, p in model.named_parameters() if n.startswith("head.")).fill_(float("nan"))
    meta = CheckpointMeta(phase="probe", spec=spec, task="stage", preprocessing=PreprocessingConfig())
    return save_checkpoint(path, model, meta)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _classifier_checkpoint(tmp_path_factory.mktemp("ckpt") / "stage.safetensors")


def _rewrite(source: Path, target: Path, edit: Callable[[dict[str, Any]], Any]) -> Path:
    """Copy a checkpoint with its metadata changed by ``edit`` (which gets the metadata dict,
    and may return a replacement string for it)."""
    raw = source.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    meta = json.loads(header["__metadata__"]["synthsleepnet"])
    replacement = edit(meta)
    header["__metadata__"]["synthsleepnet"] = replacement if isinstance(replacement, str) else json.dumps(meta)
    text = json.dumps(header).encode()
    text += b" " * ((-len(text)) % 8)
    target.write_bytes(len(text).to_bytes(8, "little") + text + raw[8 + n:])
    return target


def _set(*keys: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(meta: dict[str, Any]) -> None:
        node = meta
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value

    return edit


def test_a_checkpoint_round_trips_with_its_typed_metadata(checkpoint: Path) -> None:
    model, meta = load_classifier(checkpoint)
    assert meta.phase == "probe" and meta.task == "stage" and meta.spec.config == TINY
    assert meta.preprocessing == PreprocessingConfig() and model.channels == list(CHANNELS)
    assert meta.package_version and len(meta.tensor_sha256) == 64


def test_flipped_weight_bytes_are_refused(checkpoint: Path, tmp_path: Path, sim_dir: Path) -> None:
    raw = bytearray(checkpoint.read_bytes())
    raw[-100] ^= 0xFF  # one byte of the last tensor
    damaged = tmp_path / "flipped.safetensors"
    damaged.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="do not match the SHA-256 recorded when the checkpoint was saved"):
        load_checkpoint(damaged)
    out = tmp_path / "scored"
    assert main(["score", str(sim_dir / "sim-0011.edf"), "--model", str(damaged), "--out", str(out)]) == 2
    assert not out.exists()  # no hypnogram, no outputs


@pytest.mark.parametrize(("edit", "message"), [
    (lambda m: json.dumps([1, 2, 3]), "its metadata is a list, not a table"),
    (lambda m: "[" * 200_000 + "]" * 200_000, "its metadata is nested too deeply"),
    (_set("spec", "config", "encoder", "bogus", value=1), r"spec\.config\.encoder: unknown field\(s\) \['bogus'\]"),
    (_set("spec", "config", "encoder", "embed_dim", value=-5), r"embed_dim must be an integer in \[1, 16384\], got -5"),
    (_set("spec", "config", "encoder", "embed_dim", value=10**9), r"embed_dim must be an integer in \[1, 16384\]"),
    (_set("spec", "config", "encoder", "epoch_s", value=0), "epoch_s must be a finite number > 0, got 0"),
    (_set("spec", "config", "fusion", "fusion_dim", value="wide"), r"fusion_dim: expected an integer, got 'wide'"),
    (_set("phase", value="finetune_everything"), r"phase must be one of \['pretrain_unimodal'"),
    (_set("spec", "n_outputs", value=2), "task 'stage' has 5 classes but the model 2 outputs"),
    # plausible sizes that disagree with the weights: found on the meta device, before allocating
    (_set("spec", "config", "encoder", "embed_dim", value=2048), "its weights do not match the model its metadata"),
])
def test_damaged_or_implausible_metadata_is_refused(checkpoint: Path, tmp_path: Path,
                                                    edit: Callable[[dict[str, Any]], Any], message: str) -> None:
    damaged = _rewrite(checkpoint, tmp_path / "damaged.safetensors", edit)
    with pytest.raises(CheckpointError, match=message) as info:
        load_checkpoint(damaged)
    assert str(damaged) in str(info.value)


def test_a_header_that_lies_about_its_size_is_refused(checkpoint: Path, tmp_path: Path) -> None:
    raw = checkpoint.read_bytes()
    huge = tmp_path / "huge.safetensors"
    huge.write_bytes((2**40).to_bytes(8, "little") + raw[8:])
    with pytest.raises(CheckpointError, match="header length 1099511627776 does not fit a file"):
        load_checkpoint(huge)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CheckpointError, match="does not fit the file's data"):
        load_checkpoint(truncated)


def test_a_model_with_nan_outputs_never_produces_a_hypnogram(tmp_path: Path, sim_dir: Path) -> None:
    diverged = _classifier_checkpoint(tmp_path / "nan.safetensors", nan=True)
    with pytest.raises(ModelOutputError, match=r"nan\.safetensors produced non-finite probabilities"):
        score_recording(sim_dir / "sim-0011.edf", [diverged], device="cpu")
    out = tmp_path / "scored"
    assert main(["score", str(sim_dir / "sim-0011.edf"), "--model", str(diverged), "--out", str(out)]) == 2
    assert not (out / "epochs.csv").exists()


def test_the_wrong_kind_of_checkpoint_is_named(tmp_path: Path) -> None:
    model = model_from_preset("synthsleepnet", TINY, channels=CHANNELS)
    meta = CheckpointMeta(phase="pretrain_multimodal", spec=ModelSpec("synthsleepnet", TINY, CHANNELS))
    path = save_checkpoint(tmp_path / "fusion.safetensors", model, meta)
    with pytest.raises(CheckpointError, match="is a pretrain_multimodal checkpoint holding a synthsleepnet model; "
                                              "this needs a sleep_classifier model"):
        load_classifier(path)


# --- configs ----------------------------------------------------------------------------------
def test_a_model_config_that_does_not_fit_the_data_fails_at_build_time() -> None:
    with pytest.raises(ConfigError, match=r"expects 30-s epochs at 100 Hz, but the data was prepared as 30-s epochs "
                                          r"at 128 Hz"):
        TINY.check_preprocessing(PreprocessingConfig(sfreq=128.0))


def test_one_config_file_for_every_command(tmp_path: Path) -> None:
    file = tmp_path / "run.toml"
    file.write_text('[preprocessing]\nclip = 10.0\n[model]\npreset = "tiny"\n[model.encoder]\nembed_dim = 32\n'
                    '[adapt]\nlora_rank = 2\n[train]\nepochs = 3\n', encoding="utf-8")
    run = load_run_config(file)
    assert run.preprocessing.clip == 10.0 and run.adapt.lora_rank == 2
    assert run.model_config().encoder.embed_dim == 32 and run.model_config().fusion == TINY.fusion
    assert run.model_config("small").encoder.embed_dim == 32  # the flag picks the preset, the file overrides
    train = run.train_config("finetune", batch_size=4)
    assert (train.epochs, train.batch_size, train.accumulate) == (3, 4, 4)
    file.write_text("[training]\nepochs = 3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"unknown section\(s\) \['training'\]"):
        load_run_config(file)
    file.write_text("[train]\nepochs = 'many'\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"run\.toml \[train\]: epochs: expected an integer, got 'many'"):
        load_run_config(file)
    bad_yaml = tmp_path / "aliases.yaml"
    bad_yaml.write_text("channels: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"aliases\.yaml: not valid YAML"):
        load_run_config(bad_yaml)


def test_configs_round_trip_and_refuse_bad_values() -> None:
    config = dataclasses.replace(TINY, preset="mine")
    assert config_from_dict(ModelConfig, json.loads(json.dumps(dataclasses.asdict(config)))) == config
    with pytest.raises(ConfigError, match=r"encoder: embed_dim \(60\) must be divisible by n_heads \(8\)"):
        config_from_dict(ModelConfig, {"encoder": {"embed_dim": 60}})
    with pytest.raises(ValueError, match=r"precision must be one of \['auto', 'bf16', 'fp16', 'fp32'\]"):
        resolve_precision("int4", torch.device("cpu"))


# --- resume ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_store(tmp_path_factory: pytest.TempPathFactory, sim_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("store")
    summary = prepare_store(sim_dir, root / "store", progress=False)
    assert summary.ok
    return root / "store"


def test_resume_refuses_another_run_and_a_damaged_state(small_store: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(small_store, store)
    out = tmp_path / "run"
    pretrain_unimodal(store, "eeg", out, config=QUICK, progress=False)
    with pytest.raises(ResumeError, match=r"holds another run.*modality: 'eeg' → 'eog'"):
        pretrain_unimodal(store, "eog", out, config=QUICK, resume=True, progress=False)
    with pytest.raises(ResumeError, match=r"model\.config\.preset: 'tiny' → 'small'"):
        pretrain_unimodal(store, "eeg", out, preset="small", config=QUICK, resume=True, progress=False)
    with pytest.raises(ResumeError, match=r"train\.batch_size: 8 → 4"):
        pretrain_unimodal(store, "eeg", out, config=dataclasses.replace(QUICK, batch_size=4), resume=True,
                          progress=False)
    state = out / "train_state.pt"
    state.write_bytes(state.read_bytes()[:1000])
    with pytest.raises(ResumeError, match=r"train_state\.pt is damaged and cannot be resumed .*--restart"):
        pretrain_unimodal(store, "eeg", out, config=QUICK, resume=True, progress=False)
    result = pretrain_unimodal(store, "eeg", out, config=QUICK, restart=True, progress=False)
    assert result.checkpoint.exists() and len(result.history) == 1
    assert result.history[0]["seconds"] > 0  # each epoch's wall time, in log.csv too


def test_a_run_saved_before_a_field_existed_resumes(small_store: Path, tmp_path: Path) -> None:
    """A field a newer version adds, at its default, is no difference: the run resumes (an older
    version's runs were refused when fine-tuning gained its distillation settings); a saved value
    that differs still refuses."""
    store = tmp_path / "store"
    shutil.copytree(small_store, store)
    out = tmp_path / "run"
    pretrain_unimodal(store, "eeg", out, config=QUICK, progress=False)
    path = out / "train_state.pt"
    state = torch.load(path, map_location="cpu", weights_only=True)
    identity = json.loads(state["identity"])
    del identity["model"]["config"]["encoder"]["frames"], identity["train"]["warmup_frac"]  # as before they existed
    torch.save({**state, "identity": json.dumps(identity)}, path)
    assert pretrain_unimodal(store, "eeg", out, config=QUICK, resume=True, progress=False).checkpoint.exists()
    identity["model"]["config"]["encoder"]["frames"] = "continuous"
    torch.save({**state, "identity": json.dumps(identity)}, path)
    with pytest.raises(ResumeError, match=r"model\.config\.encoder\.frames: 'continuous' → 'overlapping'"):
        pretrain_unimodal(store, "eeg", out, config=QUICK, resume=True, progress=False)


# --- nothing dropped silently -------------------------------------------------------------------
def test_datasets_and_fit_say_which_nights_they_left_out(small_store: Path, tmp_path: Path) -> None:
    store = EpochStore(small_store)
    nights = store.night_ids
    assert MultiChannelEpochs(store, nights, ["C4-M1", "E1-M2"]).skipped == {}
    with pytest.raises(ValueError, match=r"no nights with all of \['Fpz-Cz'\].*'sim-0011': \"lacks channel\(s\) "
                                         r"\['Fpz-Cz'\]"):
        MultiChannelEpochs(store, nights, ["Fpz-Cz"])
    with pytest.raises(ValueError, match="'sim-0011': 'has 80 epochs, fewer than one 100-epoch window'"):
        Windows(store, nights, ["C4-M1"], length=100, stride=50)
    model = build_model(ModelSpec("epoch_head", TINY, n_outputs=2))
    meta = CheckpointMeta(phase="probe", spec=ModelSpec("epoch_head", TINY, n_outputs=2), task="apnea")
    x, y = torch.randn(16, 64), torch.randint(0, 2, (16,))

    def step(batch: Any, _: torch.Generator) -> dict[str, torch.Tensor]:
        return {"loss": torch.nn.functional.cross_entropy(model(batch[0]), batch[1])}

    result = fit(model, torch.utils.data.TensorDataset(x, y), step, config=QUICK, out_dir=tmp_path / "fit", meta=meta,
                 skipped={"night-x": "lacks channel(s) ['ECG']"}, progress=False)
    assert result.skipped == {"night-x": "lacks channel(s) ['ECG']"}
    assert json.loads((tmp_path / "fit" / "skipped.json").read_text()) == result.skipped


def test_domain_errors_name_what_is_missing(small_store: Path) -> None:
    with pytest.raises(StoreError, match=r"no night 'nope'; nights: \['sim-0011'"):
        EpochStore(small_store).night("nope")


# --- devices ----------------------------------------------------------------------------------
def _meta_step(name: str) -> torch.Tensor:
    """A forward pass (and loss) with parameters and inputs on the ``meta`` device: any tensor a
    model creates without ``device=`` lands on the CPU and the pass fails."""
    meta = torch.device("meta")
    x = torch.randn(2, 3000, device=meta)
    if name == "neuronet":
        model = model_from_preset("neuronet", TINY).to(meta)
        return neuronet_loss(model.pretext(x), TINY.neuronet)["loss"]
    if name == "synthsleepnet":
        model = model_from_preset("synthsleepnet", TINY, channels=CHANNELS).to(meta)
        return synthsleepnet_loss(model.pretext({c: x for c in CHANNELS}), TINY.fusion)["loss"]
    if name == "sleep_classifier":
        model = model_from_preset("sleep_classifier", TINY, channels=CHANNELS, n_outputs=5, context="sequence")
        model.to(meta)
        seq = torch.randn(2, 20, 3000, device=meta)
        return torch.nn.functional.cross_entropy(model({c: seq for c in CHANNELS}).reshape(-1, 5),
                                                 torch.zeros(40, dtype=torch.long, device=meta))
    model = model_from_preset("epoch_head", TINY, n_outputs=2).to(meta)
    return model(torch.randn(4, 64, device=meta)).sum()


@pytest.mark.parametrize("name", ["neuronet", "synthsleepnet", "sleep_classifier", "epoch_head"])
def test_every_model_runs_a_training_step_on_the_meta_device(name: str) -> None:
    loss = _meta_step(name)
    assert loss.device.type == "meta"
    loss.backward()


def test_to_moves_every_parameter_and_buffer() -> None:
    model = model_from_preset("sleep_classifier", TINY, channels=CHANNELS, n_outputs=5, context="sequence")
    model.to(torch.device("meta"))
    assert {t.device.type for t in [*model.parameters(), *model.buffers()]} == {"meta"}


def test_precision_follows_the_hardware(monkeypatch: pytest.MonkeyPatch) -> None:
    import synthsleepnet._device as device

    cpu = torch.device("cpu")
    monkeypatch.setattr(device, "cpu_model_and_flags", lambda: ("Xeon", frozenset({"avx512f", "amx_bf16"})))
    assert resolve_precision("auto", cpu) == torch.bfloat16
    monkeypatch.setattr(device, "cpu_model_and_flags", lambda: ("EPYC", frozenset({"avx2"})))
    assert resolve_precision("auto", cpu) is None and resolve_precision("bf16", cpu) == torch.bfloat16
    cuda = torch.device("cuda", 0)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert resolve_precision("auto", cuda) == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)  # e.g. a V100: fp16 and loss scaling
    assert resolve_precision("auto", cuda) == torch.float16 and Runtime(cuda, torch.float16).needs_grad_scaler
    assert resolve_precision("fp32", cuda) is None and not Runtime(cpu, torch.bfloat16).needs_grad_scaler
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available here; use --device cpu"):
            device.resolve_device("cuda")
    assert device.resolve_device("auto") == (torch.device("cuda", 0) if torch.cuda.is_available() else cpu)


# --- the command line -----------------------------------------------------------------------
def test_help_info_stats_and_inspect_do_not_import_torch(real_data: Path, small_store: Path, sim_dir: Path) -> None:
    code = (
        "import sys, contextlib, io\n"
        "from synthsleepnet.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    for argv in (['info', sys.argv[1]], ['stats', sys.argv[2]], ['inspect', sys.argv[3]],\n"
        "                 ['stats', sys.argv[4] + '-nsrr.xml', '--recording', sys.argv[4] + '.edf']):\n"
        "        assert main(argv) == 0, argv\n"
        "    try:\n"
        "        main(['--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code, str(real_data / "sleep-edf" / "short_psg.edf"),
                    str(real_data / "hmc" / "SN001_sleepscoring.edf"), str(small_store), str(sim_dir / "sim-0011")],
                   check=True)


def test_help_imports_no_numerical_library_and_shows_each_functions_docstring(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Help (and a mistyped command's message) comes at once: no NumPy, pandas, SciPy or torch."""
    code = (
        "import sys, contextlib, io\n"
        "from synthsleepnet.cli import main\n"
        "for argv in (['--help'], ['score', '--help'], ['prepare']):\n"
        "    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
        "        try:\n"
        "            main(argv)\n"
        "        except SystemExit:\n"
        "            pass\n"
        "heavy = sorted({'numpy', 'pandas', 'scipy', 'torch'} & set(sys.modules))\n"
        "assert not heavy, f'imported {heavy}'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

    import importlib
    import inspect

    import synthsleepnet.cli as cli

    read: list[tuple[str, str, str]] = []
    doc = cli._doc
    monkeypatch.setattr(cli, "_doc", lambda module, qualname: read.append((module, qualname, doc(module, qualname)))
                        or read[-1][2])
    cli._build_parser()
    assert len(read) >= 16
    for module, qualname, text in read:  # the source read without importing = the imported docstring
        obj: Any = importlib.import_module(f"synthsleepnet.{module}")
        for part in qualname.split("."):
            obj = getattr(obj, part)
        assert text and text == inspect.getdoc(obj).split("\n\n")[0].replace("\n", " "), (module, qualname)


def test_unexpected_errors_do_not_print_a_traceback(monkeypatch: pytest.MonkeyPatch,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    import synthsleepnet.cli as cli

    def broken(_: Any) -> int:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(cli, "_cmd_models", broken)
    assert main(["models"]) == 3
    assert "unexpected ZeroDivisionError: division by zero (please report it" in caplog.text


def test_seeded_splits_and_sampling_use_the_task_name(small_store: Path) -> None:
    store = EpochStore(small_store)
    a = sample_labelled_epochs(store, store.night_ids, 0.1, task="apnea", seed=1)
    column = store.label_column("apnea")
    assert all((store.night(n).labels[idx, column] >= 0).all() for n, idx in a.items())
    assert np.isclose(sum(v.size for v in a.values()),
                      round(0.1 * sum(int((store.night(n).labels[:, column] >= 0).sum()) for n in store.night_ids)))
