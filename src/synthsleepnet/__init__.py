"""SynthSleepNet: a multimodal self-supervised foundation model for polysomnography.

The package follows the data flow: read (``io``) → prepare (``preprocessing``) → store
(``store``) → pretrain → adapt → score → report.
"""

from ._config import PreprocessingConfig
from ._logging import set_log_level
from ._validation import AnnotationError, ChannelNotFoundError, PSGReadError, SignalQualityError
from .io import (
    Recording,
    Scoring,
    find_recordings,
    load_channel_table,
    map_channels,
    read_recording,
    read_scoring,
)
from .preprocessing import PreparedNight, describe_recording, prepare_recording
from .store import EpochStore, prepare_store

__version__ = "0.1.0"

__all__ = [
    "AnnotationError",
    "ChannelNotFoundError",
    "EpochStore",
    "PSGReadError",
    "PreparedNight",
    "PreprocessingConfig",
    "Recording",
    "Scoring",
    "SignalQualityError",
    "__version__",
    "describe_recording",
    "find_recordings",
    "load_channel_table",
    "map_channels",
    "prepare_recording",
    "prepare_store",
    "read_recording",
    "read_scoring",
    "set_log_level",
]
