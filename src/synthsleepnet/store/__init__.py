"""The epoch store: prepared nights on disk, a manifest, random and contiguous access."""

from .build import PrepareSummary, night_id_for, prepare_store
from .epoch_store import STORE_FORMAT_VERSION, EpochStore, create_store, rebuild_manifest
from .night_files import NightFiles

__all__ = [
    "STORE_FORMAT_VERSION",
    "EpochStore",
    "NightFiles",
    "PrepareSummary",
    "create_store",
    "night_id_for",
    "prepare_store",
    "rebuild_manifest",
]
