"""Models: shapes, paper sizes, masking, losses, fusion slicing, Mamba2, LoRA, checkpoints."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.nn.modules.batchnorm import _BatchNorm

from synthsleepnet._config import PreprocessingConfig, TemporalConfig, config_from_dict, get_preset
from synthsleepnet._validation import ConfigError
from synthsleepnet.models import (
    MODELS,
    CheckpointMeta,
    Mamba2,
    ModelSpec,
    NeuroNetEncoder,
    TemporalContextModule,
    build_model,
    check_compatible,
    count_parameters,
    encoder_gflops,
    fold_batchnorm,
    fuse_for_inference,
    load_checkpoint,
    merge_lora,
    model_from_preset,
    read_checkpoint_meta,
    save_checkpoint,
)
from synthsleepnet.models.frame_backbone import _Conv1dAs2d, _SignalConv, make_frames
from synthsleepnet.models.lora import LoRALinear
from synthsleepnet.models.mamba2 import ssd_chunked, ssd_sequential
from synthsleepnet.models.masking import random_masking
from synthsleepnet.training import (
    distillation_loss,
    masked_mse,
    neuronet_loss,
    nt_xent,
    synthsleepnet_loss,
)

CHANNELS = ["C4-M1", "E1-M2", "Chin"]


def _epochs(batch: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, 3000, generator=torch.Generator().manual_seed(seed))


TINY = get_preset("tiny")

# one case per registered model: the completeness gate below fails when a model has none
CASES = {
    "neuronet": (lambda: model_from_preset("neuronet", "tiny"), lambda b: _epochs(b), (28, 64)),
    "synthsleepnet": (lambda: model_from_preset("synthsleepnet", "tiny", channels=CHANNELS),
                      lambda b: {c: _epochs(b, i) for i, c in enumerate(CHANNELS)}, (81, 64)),
    "epoch_head": (lambda: model_from_preset("epoch_head", "tiny", n_outputs=2), lambda b: torch.randn(b, 64), (2,)),
    "sleep_classifier": (lambda: model_from_preset("sleep_classifier", "tiny", channels=CHANNELS, n_outputs=5),
                         lambda b: {c: _epochs(b, i) for i, c in enumerate(CHANNELS)}, (5,)),
}
# the building blocks every architecture is made of
PARTS = {
    "encoder": (lambda: NeuroNetEncoder(TINY.encoder), lambda b: _epochs(b), (28, 64)),
    "temporal": (lambda: TemporalContextModule(64, 5, TINY.temporal), lambda b: torch.randn(b, 20, 64), (20, 5)),
}


def test_every_registered_model_has_a_test_case() -> None:
    assert set(CASES) == set(MODELS)


@pytest.mark.parametrize("name", sorted(CASES) + sorted(PARTS))
@pytest.mark.parametrize("batch", [1, 2])
def test_output_shapes(name: str, batch: int) -> None:
    make, inputs, shape = {**CASES, **PARTS}[name]
    model = make().eval()
    with torch.no_grad():
        out = model(inputs(batch))
    assert out.shape == (batch, *shape)
    assert torch.isfinite(out).all()


def test_unknown_model_and_preset_list_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"architecture must be one of \['neuronet', 'synthsleepnet', "
                                          r"'sleep_classifier', 'epoch_head'\], got 'resnet'"):
        config_from_dict(ModelSpec, {"architecture": "resnet", "config": {}})
    with pytest.raises(ValueError, match=r"unknown model 'resnet'; registered models: \['epoch_head'"):
        build_model(ModelSpec("resnet", TINY))  # a caller that bypassed the type check
    with pytest.raises(ValueError, match=r"unknown model preset 'huge'; presets: \['fast', 'paper', 'small', 'tiny'\]"):
        model_from_preset("neuronet", "huge")


def test_paper_neuronet_size_and_flops() -> None:
    model = model_from_preset("neuronet", "paper")
    total, _ = count_parameters(model)
    assert total == pytest.approx(71.6e6, rel=0.01)  # authors' configuration: 71.6 M
    assert model.encoder.n_frames == 27 and model.encoder.backbone.n_features == 3328
    flops = encoder_gflops(model.encoder)
    assert flops["total"] == pytest.approx(8.9, rel=0.03)
    assert flops["conv"] == pytest.approx(5.4, rel=0.03) and flops["frame_mlp"] == pytest.approx(1.8, rel=0.03)


def test_paper_synthsleepnet_size() -> None:
    model = model_from_preset("synthsleepnet", "paper", channels=["C4-M1", "E1-M2", "Chin", "ECG"])
    total, trainable = count_parameters(model)
    assert total == pytest.approx(296e6, rel=0.01) and trainable == pytest.approx(28e6, rel=0.02)


def test_frames_are_an_unfold_of_the_epoch() -> None:
    x = torch.arange(3000.0)[None]
    frames = make_frames(x, 400, 100)
    assert frames.shape == (1, 27, 400)
    assert frames[0, 26, 0] == 2600 and frames[0, 26, -1] == 2999


def test_backbone_eval_output_does_not_depend_on_chunk_size() -> None:
    encoder = NeuroNetEncoder(TINY.encoder).eval()
    x = _epochs(3)
    with torch.no_grad():
        a = encoder(x)
        encoder.backbone.chunk_frames = 7
        b = encoder(x)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("length", "ratio", "kept"), [(27, 0.8, 5), (27, 0.4, 16), (27, 0.0, 27), (3, 0.9, 1)])
def test_masking_ratio(length: int, ratio: float, kept: int) -> None:
    x = torch.randn(4, length, 8)
    out = random_masking(x, ratio, torch.Generator().manual_seed(0))
    assert out.kept.shape == (4, kept, 8)
    assert (out.mask.sum(1) == length - kept).all()
    # kept tokens are exactly the unmasked ones
    for i in range(4):
        unmasked = x[i][out.mask[i] == 0]
        assert torch.equal(torch.sort(unmasked, dim=0).values, torch.sort(out.kept[i], dim=0).values)


def test_masked_mse_counts_only_masked_tokens() -> None:
    target, pred = torch.zeros(2, 5, 3), torch.ones(2, 5, 3)
    mask = torch.tensor([[1, 0, 0, 1, 0], [0, 0, 0, 0, 1]], dtype=torch.float32)
    base = masked_mse(pred, target, mask)
    pred2 = pred.clone()
    pred2[mask == 0] = 100.0  # errors on visible tokens must not count
    assert masked_mse(pred2, target, mask) == base == 1.0


def test_nt_xent_against_hand_computation() -> None:
    rng = np.random.default_rng(0)
    z1, z2 = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    tau = 0.5
    z = np.concatenate([z1, z2])
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    losses = []
    for i in range(6):
        partner = (i + 3) % 6
        sims = np.array([z[i] @ z[k] / tau for k in range(6) if k != i])
        pos = z[i] @ z[partner] / tau
        losses.append(-pos + math.log(np.exp(sims).sum()))
    got = nt_xent(torch.tensor(z1), torch.tensor(z2), tau)
    assert got.item() == pytest.approx(np.mean(losses), rel=1e-6)


def test_distillation_loss_is_the_tempered_kl() -> None:
    teacher = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    assert distillation_loss(teacher.log(), teacher, 2.0).item() == pytest.approx(0.0, abs=1e-6)  # the student agrees
    student = torch.zeros(2, 3)  # uniform
    soft = teacher.pow(0.5) / teacher.pow(0.5).sum(-1, keepdim=True)
    per_epoch = (soft * (soft * 3).log()).sum(-1)
    assert distillation_loss(student, teacher, 2.0).item() == pytest.approx(4 * per_epoch.mean().item(), rel=1e-5)


@pytest.mark.parametrize("chunk", [4, 8, 16, 64])
@pytest.mark.parametrize("length", [1, 20, 37])
def test_mamba2_chunked_equals_sequential(chunk: int, length: int) -> None:
    g = torch.Generator().manual_seed(length)
    b, h, p, groups, n = 2, 4, 8, 2, 16
    x = torch.randn(b, length, h, p, generator=g, dtype=torch.float64)
    dt = torch.rand(b, length, h, generator=g, dtype=torch.float64)
    a = -torch.rand(h, generator=g, dtype=torch.float64) * 4
    bb = torch.randn(b, length, groups, n, generator=g, dtype=torch.float64)
    cc = torch.randn(b, length, groups, n, generator=g, dtype=torch.float64)
    torch.testing.assert_close(ssd_chunked(x, dt, a, bb, cc, chunk), ssd_sequential(x, dt, a, bb, cc))


def test_mamba2_is_causal() -> None:
    torch.manual_seed(0)
    mixer = Mamba2(32, headdim=16)
    x = torch.randn(1, 12, 32)
    y = mixer(x)
    x2 = x.clone()
    x2[:, 8:] += 5.0
    y2 = mixer(x2)
    torch.testing.assert_close(y[:, :8], y2[:, :8])
    assert not torch.allclose(y[:, 8:], y2[:, 8:])


@pytest.mark.parametrize("mixer", ["mamba2", "gru", "transformer"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_temporal_module_variants(mixer: str, bidirectional: bool) -> None:
    config = TemporalConfig(mixer=mixer, bidirectional=bidirectional)
    model = TemporalContextModule(64, 5, config).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 20, 64)).shape == (2, 20, 5)


def test_bidirectional_sees_the_future() -> None:
    torch.manual_seed(0)
    model = TemporalContextModule(64, 5, TemporalConfig(bidirectional=True)).eval()
    x = torch.randn(1, 20, 64)
    x2 = x.clone()
    x2[:, 15:] += 3
    with torch.no_grad():
        assert not torch.allclose(model(x)[:, :10], model(x2)[:, :10])


def test_lora_starts_as_identity_trains_only_adapters_and_merges() -> None:
    model = model_from_preset("synthsleepnet", "tiny", channels=CHANNELS).eval()
    encoder = model.encoders["C4_M1"]
    wrapped = [m for m in encoder.modules() if isinstance(m, LoRALinear)]
    assert len(wrapped) == 2  # one attention output projection per block
    trainable = {n for n, p in encoder.named_parameters() if p.requires_grad}
    assert trainable and all(n.endswith(("lora_a", "lora_b")) for n in trainable)
    x = {c: _epochs(2, i) for i, c in enumerate(CHANNELS)}
    with torch.no_grad():
        for m in wrapped:
            m.lora_b.normal_()
        before = model.embed(x)
        merge_lora(model)
        after = model.embed(x)
    assert not any(isinstance(m, LoRALinear) for m in model.modules())
    torch.testing.assert_close(before, after, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("preset", ["fast", "tiny"])
def test_scoring_folds_batchnorm_and_adapters_without_changing_predictions(preset: str) -> None:
    torch.manual_seed(0)
    model = model_from_preset("sleep_classifier", preset, channels=CHANNELS[:2], n_outputs=5, context="sequence")
    with torch.no_grad():  # trained-looking statistics and adapters, not the identity they start as
        for m in model.modules():
            if isinstance(m, _BatchNorm):
                m.running_mean.normal_(0, 0.5), m.running_var.uniform_(0.5, 2), m.weight.normal_(1, 0.2)
            if isinstance(m, LoRALinear):
                m.lora_b.normal_(0, 0.02)
    night = {c: np.random.default_rng(i).standard_normal((23, 3000)).astype(np.float32)
             for i, c in enumerate(CHANNELS[:2])}
    before = model.predict_proba(night)
    with pytest.raises(ValueError, match="eval mode"):
        fold_batchnorm(model.train())
    fused = fuse_for_inference(model)
    assert not any(isinstance(m, LoRALinear) for m in fused.modules())
    assert not any(isinstance(m, _BatchNorm) for m in fused.fusion.encoders.modules())
    assert not any(p.requires_grad for p in fused.parameters())
    np.testing.assert_allclose(fused.predict_proba(night), before, rtol=1e-4, atol=1e-5)


def test_each_decoder_sees_exactly_its_own_block() -> None:
    model = model_from_preset("synthsleepnet", "tiny", channels=CHANNELS)
    seen: list[torch.Tensor] = []
    fused: list[torch.Tensor] = []
    model.decoder_embed.register_forward_hook(lambda m, inp, out: seen.append(inp[0]))
    model.fusion_norm.register_forward_hook(lambda m, inp, out: fused.append(out))
    model.pretext({c: _epochs(2, i) for i, c in enumerate(CHANNELS)}, torch.Generator().manual_seed(0))
    kept = int(27 * (1 - model.mask_ratio))
    assert [s.shape[1] for s in seen] == [kept] * 3
    for i, block in enumerate(seen):
        assert torch.equal(block, fused[0][:, i * kept:(i + 1) * kept])


def test_absent_modalities_contribute_nothing() -> None:
    model = model_from_preset("synthsleepnet", "tiny", channels=CHANNELS).eval()
    x = {"C4-M1": _epochs(2, 0), "E1-M2": _epochs(2, 1)}
    with torch.no_grad():
        before = model.embed(x)
        for p in model.encoders["Chin"].parameters():
            p.add_(torch.randn_like(p))
        for p in model.token_proj["Chin"].parameters():
            p.add_(1.0)
        after = model.embed(x)
    torch.testing.assert_close(before, after)
    with pytest.raises(ValueError, match=r"subset of the model's channels \['C4-M1', 'E1-M2', 'Chin'\]"):
        model.embed({"ECG": _epochs(1)})


def _optimise(model: torch.nn.Module, step: object, n: int = 25) -> tuple[dict[str, float], dict[str, float]]:
    torch.manual_seed(0)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    first: dict[str, float] = {}
    for i in range(n):
        losses = step(torch.Generator().manual_seed(i % 2))  # type: ignore[operator]
        opt.zero_grad()
        losses["loss"].backward()
        opt.step()
        if i == 0:
            first = {k: float(v.detach()) for k, v in losses.items()}
    with torch.no_grad():
        last = {k: float(v) for k, v in step(torch.Generator().manual_seed(0)).items()}  # type: ignore[operator]
    return first, last


def test_neuronet_losses_decrease() -> None:
    torch.manual_seed(0)
    model = model_from_preset("neuronet", "tiny")
    x = _epochs(8)
    first, last = _optimise(model, lambda g: neuronet_loss(model.pretext(x, g), TINY.neuronet))
    assert last["reconstruction"] < first["reconstruction"] and last["contrastive"] < first["contrastive"]


def test_synthsleepnet_losses_decrease() -> None:
    torch.manual_seed(0)
    model = model_from_preset("synthsleepnet", "tiny", channels=CHANNELS)
    x = {c: _epochs(8, i) for i, c in enumerate(CHANNELS)}
    first, last = _optimise(model, lambda g: synthsleepnet_loss(model.pretext(x, g), TINY.fusion))
    assert last["reconstruction"] < first["reconstruction"] and last["contrastive"] < first["contrastive"]


def test_temporal_cross_entropy_decreases() -> None:
    torch.manual_seed(0)
    model = TemporalContextModule(64, 5, TINY.temporal)
    x, y = torch.randn(4, 20, 64), torch.randint(0, 5, (4, 20))
    ce = torch.nn.functional.cross_entropy
    first, last = _optimise(model, lambda g: {"loss": ce(model(x).reshape(-1, 5), y.reshape(-1))})
    assert last["loss"] < first["loss"]


def test_synthsleepnet_loads_a_pretrained_neuronet_encoder() -> None:
    neuronet = model_from_preset("neuronet", "tiny")
    fusion = model_from_preset("synthsleepnet", "tiny", channels=CHANNELS).eval()
    fusion.load_encoder("C4-M1", neuronet.encoder.state_dict())
    x = _epochs(2)
    with torch.no_grad():
        torch.testing.assert_close(fusion.encoders["C4_M1"](x), neuronet.encoder.eval()(x))


def _meta(channels: list[str] = CHANNELS, **kwargs: object) -> CheckpointMeta:
    spec = ModelSpec("synthsleepnet", TINY, tuple(channels))
    return CheckpointMeta(phase="pretrain_multimodal", spec=spec, preprocessing=PreprocessingConfig(), **kwargs)


def test_checkpoint_round_trip_and_metadata(tmp_path: Path) -> None:
    model = model_from_preset("synthsleepnet", "tiny", channels=CHANNELS).eval()
    path = save_checkpoint(tmp_path / "m.safetensors", model, _meta(seed=7))
    loaded, meta = load_checkpoint(path)
    assert meta.preset == "tiny" and meta.seed == 7 and meta.channels == CHANNELS
    assert meta.spec.config == TINY and meta.preprocessing == PreprocessingConfig() and len(meta.tensor_sha256) == 64
    x = {c: _epochs(2, i) for i, c in enumerate(CHANNELS)}
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval().embed(x), model.embed(x))
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # atomic write left nothing


def test_checkpoint_rejections(tmp_path: Path) -> None:
    model = model_from_preset("synthsleepnet", "tiny", channels=["C4-M1"])
    path = save_checkpoint(tmp_path / "h.safetensors", model, _meta(channels=["C4-M1"]))
    meta = read_checkpoint_meta(path)
    with pytest.raises(ValueError, match=f"trained on data prepared with preprocessing {meta.preprocessing_hash}, "
                                         "but this data used xyz"):
        check_compatible(meta, preprocessing_hash="xyz")
    with pytest.raises(ValueError, match=r"no encoder for channel\(s\) \['ECG'\]; it knows \['C4-M1'\]"):
        check_compatible(meta, channels=["ECG"])
    bad = tmp_path / "pickle.pt"
    torch.save({"x": 1}, bad)
    with pytest.raises(ValueError, match=r"pickle\.pt is not a SynthSleepNet checkpoint"):
        read_checkpoint_meta(bad)


def test_sequence_classifier_predicts_a_whole_night() -> None:
    model = model_from_preset("sleep_classifier", "tiny", channels=CHANNELS[:2], n_outputs=5, context="sequence")
    night = {c: np.random.default_rng(i).standard_normal((47, 3000)).astype(np.float32)
             for i, c in enumerate(CHANNELS[:2])}
    probs = model.predict_proba(night)
    assert probs.shape == (47, 5)  # 47 is not a multiple of 20: the last window is end-aligned
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any(".backbone.mlp.0.lora_a" in n for n in trainable) and any("fusion.fusion.0.mlp.fc1.lora" in n for n in trainable)
    assert not any(n.endswith("attn.proj.lora_a") for n in trainable)  # pretrained adapters stay frozen


def test_a_new_classifier_embeds_each_epoch_independently_of_its_batch() -> None:
    # the probe embeds the labelled epochs before any training: the frozen fusion must already
    # use its stored BatchNorm statistics and no dropout, or the head learns batch artefacts
    model = model_from_preset("sleep_classifier", "tiny", channels=CHANNELS[:2], n_outputs=5)
    x = {c: torch.randn(6, 3000, generator=torch.Generator().manual_seed(i)) for i, c in enumerate(CHANNELS[:2])}
    for mode in (False, True):  # and while the head trains: the fusion never leaves eval mode
        model.train(mode)
        with torch.no_grad():
            whole = model.embed(x)
            part = model.embed({c: v[:2] for c, v in x.items()})
        torch.testing.assert_close(whole[:2], part, rtol=1e-5, atol=1e-5)
        assert model.head.training == mode and not any(m.training for m in model.fusion.modules())


def test_batchnorm_calibration_gives_a_random_encoder_distinct_embeddings() -> None:
    from synthsleepnet.training.adapt import calibrate_batchnorm

    torch.manual_seed(0)
    model = model_from_preset("sleep_classifier", "tiny", channels=CHANNELS[:1], n_outputs=5)
    g = torch.Generator().manual_seed(0)
    # epochs of very different amplitude, as after robust scaling of wake vs N3
    items = [({CHANNELS[0]: torch.randn(3000, generator=g) * scale}, torch.zeros(3)) for scale in (0.2, 1.0, 5.0) * 4]
    x = {CHANNELS[0]: torch.stack([item[0][CHANNELS[0]] for item in items])}

    def spread() -> float:
        with torch.no_grad():
            e = model.embed(x)
        return float(e.std(0).mean() / e.abs().mean())

    before = spread()
    calibrate_batchnorm(model, items, n_items=12)
    assert spread() > 2 * before  # default statistics squash every epoch to nearly one embedding
    norms = [m for m in model.fusion.modules() if isinstance(m, _BatchNorm)]
    assert all(not m.training and m.momentum == 0.1 for m in norms)  # frozen again, momentum restored


@pytest.mark.parametrize("preset", ["paper", "small", "tiny"])
def test_conv_feature_arithmetic_matches_a_dry_run(preset: str) -> None:
    from synthsleepnet.models.frame_backbone import conv_features

    config = get_preset(preset).encoder
    backbone = NeuroNetEncoder(config).backbone
    with torch.no_grad():
        ran = backbone._conv_features(torch.zeros(2, config.frame_samples)).shape[-1]
    assert conv_features(config.frame_samples, config.backbone) == ran == 2 * backbone.n_features


def test_fast_preset_shapes_size_and_speed_design() -> None:
    fast = get_preset("fast")
    model = model_from_preset("neuronet", fast).eval()
    assert count_parameters(model)[0] == 381_872  # one conv pass per epoch: a seventh of tiny's
    x = _epochs(3)
    with torch.no_grad():
        tokens = model(x)
        alone = model(x[1:2])
    assert tokens.shape == (3, 28, 64)
    torch.testing.assert_close(tokens[1:2], alone, rtol=1e-5, atol=1e-5)  # eval: independent of the batch
    flops = encoder_gflops(model.encoder)
    assert flops["conv"] < get_preset("tiny").encoder.embed_dim and flops["total"] < 0.1


def test_continuous_frames_pool_each_frames_span() -> None:
    from synthsleepnet.models.frame_backbone import ContinuousFrameBackbone

    backbone = ContinuousFrameBackbone(3000, 400, 100, get_preset("fast").encoder.backbone)
    x = torch.arange(2 * 3 * 187, dtype=torch.float32).reshape(2, 3, 187)
    pooled = backbone.frame_pool(x)
    first, last = backbone._spans(187, x.device)
    assert pooled.shape == (2, 27, 3) and int(first[0]) == 0 and int(last[-1]) == 187
    for f in (0, 13, 26):
        torch.testing.assert_close(pooled[:, f], x[..., int(first[f]):int(last[f])].mean(-1))


def test_backbone_convolutions_equal_conv1d_and_keep_channels_last() -> None:
    g = torch.Generator().manual_seed(0)
    stem = _SignalConv(1, 16, 7, stride=2, padding=3, bias=True)
    signals = torch.randn(3, 3000, generator=g)
    out = stem(signals)
    torch.testing.assert_close(out.squeeze(2), F.conv1d(signals[:, None], stem.weight, stem.bias, 2, 3))
    assert out.shape == (3, 16, 1, 1500) and out.is_contiguous(memory_format=torch.channels_last)
    conv = _Conv1dAs2d(16, 32, 5, stride=2, padding=1, bias=False)
    after = conv(out)
    torch.testing.assert_close(after.squeeze(2), F.conv1d(out.squeeze(2), conv.weight, None, 2, 1))
    assert after.is_contiguous(memory_format=torch.channels_last)
