"""SynthSleepNet: a multimodal self-supervised foundation model for polysomnography.

The package follows the data flow: read (``io``) → prepare (``preprocessing``) → store
(``store``) → pretrain, adapt (``training``) → score (``scoring``) → report. The public API is
listed below; each name is imported from its module on first use, so ``import synthsleepnet``
(and the command line's ``--help``) stays fast and never imports torch until a model is needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import attach
from ._version import __version__

#: Public name → the module that defines it.
_API: dict[str, str] = {
    "AdaptConfig": "._config",
    "ModelConfig": "._config",
    "PreprocessingConfig": "._config",
    "TrainConfig": "._config",
    "AnnotationError": "._validation",
    "ChannelNotFoundError": "._validation",
    "CheckpointError": "._validation",
    "ConfigError": "._validation",
    "ModelOutputError": "._validation",
    "PSGReadError": "._validation",
    "ResumeError": "._validation",
    "SignalQualityError": "._validation",
    "StoreError": "._validation",
    "set_log_level": "._logging",
    "TASKS": ".tasks",
    "Task": ".tasks",
    "Recording": ".io",
    "Scoring": ".io",
    "find_recordings": ".io",
    "load_channel_table": ".io",
    "map_channels": ".io",
    "read_recording": ".io",
    "read_scoring": ".io",
    "PreparedNight": ".preprocessing",
    "describe_recording": ".preprocessing",
    "prepare_recording": ".preprocessing",
    "EpochStore": ".store",
    "prepare_store": ".store",
    "sleep_statistics": ".stats",
    "respiratory_indices": ".respiratory",
    "find_desaturations": ".respiratory",
    "spo2_measures": ".respiratory",
    "scored_indices": ".respiratory",
    "detect_r_peaks": ".cardiac",
    "heart_rate": ".cardiac",
    "cardiac_measures": ".cardiac",
    "hrv_measures": ".cardiac",
    "position_measures": ".positional",
    "read_body_position": ".io",
    "scoring_statistics": ".stats",
    "pretrain_unimodal": ".training",
    "pretrain_multimodal": ".training",
    "probe": ".training",
    "finetune": ".training",
    "evaluate": ".training",
    "load_classifier": ".models",
    "load_encoder": ".models",
    "ScoringResult": ".scoring",
    "score_recording": ".scoring",
    "embed_epochs": ".scoring",
    "score_night": ".score_files",
    "score_nights": ".score_files",
    "simulate_cohort": ".simulate",
    "fetch": ".fetch",
    "load_recipe": ".recipes",
    "run_recipe": ".recipes",
    "run_demo": ".demo",
}

__all__ = [
    "__version__",
    "AdaptConfig",
    "AnnotationError",
    "ChannelNotFoundError",
    "CheckpointError",
    "ConfigError",
    "EpochStore",
    "ModelConfig",
    "ModelOutputError",
    "PSGReadError",
    "PreparedNight",
    "PreprocessingConfig",
    "Recording",
    "ResumeError",
    "Scoring",
    "ScoringResult",
    "SignalQualityError",
    "StoreError",
    "TASKS",
    "Task",
    "TrainConfig",
    "cardiac_measures",
    "describe_recording",
    "detect_r_peaks",
    "embed_epochs",
    "evaluate",
    "fetch",
    "find_desaturations",
    "find_recordings",
    "finetune",
    "heart_rate",
    "hrv_measures",
    "load_channel_table",
    "load_classifier",
    "load_encoder",
    "load_recipe",
    "map_channels",
    "position_measures",
    "prepare_recording",
    "prepare_store",
    "pretrain_multimodal",
    "pretrain_unimodal",
    "probe",
    "read_body_position",
    "read_recording",
    "read_scoring",
    "respiratory_indices",
    "run_demo",
    "run_recipe",
    "scored_indices",
    "scoring_statistics",
    "score_night",
    "score_nights",
    "score_recording",
    "set_log_level",
    "simulate_cohort",
    "sleep_statistics",
    "spo2_measures",
]


__getattr__, __dir__ = attach(__name__, _API, globals())


if TYPE_CHECKING:  # the same names, for type checkers and IDEs
    from ._config import AdaptConfig, ModelConfig, PreprocessingConfig, TrainConfig
    from ._logging import set_log_level
    from ._validation import (
        AnnotationError,
        ChannelNotFoundError,
        CheckpointError,
        ConfigError,
        ModelOutputError,
        PSGReadError,
        ResumeError,
        SignalQualityError,
        StoreError,
    )
    from .cardiac import cardiac_measures, detect_r_peaks, heart_rate, hrv_measures
    from .demo import run_demo
    from .fetch import fetch
    from .io import (
        Recording,
        Scoring,
        find_recordings,
        load_channel_table,
        map_channels,
        read_body_position,
        read_recording,
        read_scoring,
    )
    from .models import load_classifier, load_encoder
    from .positional import position_measures
    from .preprocessing import PreparedNight, describe_recording, prepare_recording
    from .recipes import load_recipe, run_recipe
    from .respiratory import find_desaturations, respiratory_indices, scored_indices, spo2_measures
    from .score_files import score_night, score_nights
    from .scoring import ScoringResult, embed_epochs, score_recording
    from .simulate import simulate_cohort
    from .stats import scoring_statistics, sleep_statistics
    from .store import EpochStore, prepare_store
    from .tasks import TASKS, Task
    from .training import evaluate, finetune, pretrain_multimodal, pretrain_unimodal, probe
