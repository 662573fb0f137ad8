"""Reading PSG: recordings, channel mapping, scorings, file discovery (attached lazily)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import attach

_API = {
    "Scoring": ".annotations", "parse_stage_label": ".annotations", "read_scoring": ".annotations",
    "POSITIONS": ".position_codes", "read_body_position": ".body_position",
    "MODALITIES": ".channels", "ChannelMapping": ".channels", "ChannelTable": ".channels",
    "load_channel_table": ".channels", "map_channels": ".channels",
    "RecordingFiles": ".discover", "find_recordings": ".discover", "find_scoring": ".discover",
    "subject_id": ".discover",
    "Annotation": ".recording", "Recording": ".recording", "Signal": ".recording", "read_recording": ".recording",
}

__all__ = [
    "MODALITIES",
    "POSITIONS",
    "Annotation",
    "ChannelMapping",
    "ChannelTable",
    "Recording",
    "RecordingFiles",
    "Scoring",
    "Signal",
    "find_recordings",
    "find_scoring",
    "load_channel_table",
    "map_channels",
    "parse_stage_label",
    "read_body_position",
    "read_recording",
    "read_scoring",
    "subject_id",
]

__getattr__, __dir__ = attach(__name__, _API, globals())

if TYPE_CHECKING:  # the same names, for type checkers and IDEs
    from .annotations import Scoring, parse_stage_label, read_scoring
    from .body_position import read_body_position
    from .channels import MODALITIES, ChannelMapping, ChannelTable, load_channel_table, map_channels
    from .discover import RecordingFiles, find_recordings, find_scoring, subject_id
    from .position_codes import POSITIONS
    from .recording import Annotation, Recording, Signal, read_recording
