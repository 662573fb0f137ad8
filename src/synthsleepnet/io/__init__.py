"""Reading PSG: recordings, channel mapping, scorings, file discovery."""

from .annotations import Scoring, parse_stage_label, read_scoring
from .channels import MODALITIES, ChannelMapping, ChannelTable, load_channel_table, map_channels
from .discover import RecordingFiles, find_recordings, find_scoring, subject_id
from .recording import Annotation, Recording, Signal, read_recording

__all__ = [
    "MODALITIES",
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
    "read_recording",
    "read_scoring",
    "subject_id",
]
