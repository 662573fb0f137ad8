"""Map cohort channel labels to canonical channels and modalities.

One table (``data/channel_aliases.toml``) maps the labels of SHHS, MESA, MrOS, CFS, Sleep-EDF, HMC,
ISRUC and DREAMS to canonical channels; a user file of the same shape adds or overrides entries.
When no alias matches, a canonical bipolar channel is derived from two monopolar leads (C4 − M1).
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from .._config import load_config_file
from .._validation import ChannelNotFoundError

__all__ = [
    "MODALITIES",
    "ChannelMapping",
    "ChannelTable",
    "MappedChannel",
    "load_channel_table",
    "map_channels",
    "normalize_label",
]

#: Modalities in their canonical order. ``resp`` (airflow, effort) and ``spo2`` are optional extras.
MODALITIES: tuple[str, ...] = ("eeg", "eog", "emg", "ecg", "resp", "spo2")

_MODALITY_WORD = re.compile(r"^(eeg|eog|emg|ecg|ekg)\s+(?=.*[a-z])(?=..)")
_MASTOID_A = re.compile(r"(?<![a-z0-9])a([12])(?![0-9])")


def normalize_label(label: str) -> str:
    """Normalise a channel label for matching.

    Case, spaces and underscores are ignored, a leading modality word is dropped when a
    multi-character electrode name follows (``"EEG C4-M1"`` → ``"c4-m1"``), ``:`` reads as ``-``
    and the mastoid references ``A1``/``A2`` read as ``M1``/``M2``.

    Examples
    --------
    >>> normalize_label("EEG C4-A1")
    'c4-m1'
    >>> normalize_label("EEG(sec)")
    'eeg(sec)'
    """
    text = label.strip().lower().replace("_", " ").replace(":", "-")
    text = re.sub(r"\s+", " ", text)
    text = _MODALITY_WORD.sub("", text)
    text = _MASTOID_A.sub(r"m\1", text)
    return text.replace(" ", "")


@dataclasses.dataclass(frozen=True)
class ChannelTable:
    """Canonical channels (with modality), their aliases and their derivations."""

    modality: dict[str, str]
    aliases: dict[str, tuple[str, ...]]
    derivations: dict[str, tuple[str, str]]

    def merged_with(self, user: ChannelTable) -> ChannelTable:
        """Return a table where ``user`` entries come first and may add new channels."""
        modality = {**self.modality, **user.modality}
        aliases = {name: tuple(user.aliases.get(name, ())) + tuple(self.aliases.get(name, ()))
                   for name in modality}
        derivations = {**self.derivations, **user.derivations}
        return ChannelTable(modality, aliases, derivations)


def _table_from_mapping(data: Mapping[str, Any], source: str) -> ChannelTable:
    unknown = sorted(set(data) - {"channels", "aliases", "derivations"})
    if unknown:
        raise ValueError(f"{source}: unknown section(s) {unknown}; "
                         "expected 'channels', 'aliases' and 'derivations'")
    channels = dict(data.get("channels", {}))
    aliases = {k: tuple(v) for k, v in dict(data.get("aliases", {})).items()}
    derivations: dict[str, tuple[str, str]] = {}
    for name, expr in dict(data.get("derivations", {})).items():
        parts = [p.strip() for p in str(expr).split(" - ")]
        if len(parts) != 2 or not all(parts):
            raise ValueError(f"{source}: derivation for {name!r} must read 'PLUS - MINUS', got {expr!r}")
        derivations[name] = (parts[0], parts[1])
    for modality in channels.values():
        if modality not in MODALITIES:
            raise ValueError(f"{source}: modality must be one of {list(MODALITIES)}, got {modality!r}")
    return ChannelTable(channels, aliases, derivations)


def load_channel_table(user_file: str | Path | None = None) -> ChannelTable:
    """Load the built-in channel table, extended by a user TOML/YAML file if given.

    The user file has the sections ``[channels]`` (canonical name → modality, to add channels),
    ``[aliases]`` (canonical name → list of labels, tried before the built-in ones) and
    ``[derivations]`` (canonical name → ``"PLUS - MINUS"``).
    """
    text = resources.files("synthsleepnet").joinpath("data/channel_aliases.toml").read_text("utf-8")
    table = _table_from_mapping(tomllib.loads(text), "built-in channel table")
    if user_file is None:
        return table
    user = _table_from_mapping(load_config_file(user_file), str(user_file))
    names = set(user.aliases) | set(user.derivations)
    undefined = sorted(names - set(table.modality) - set(user.modality))
    if undefined:
        raise ValueError(f"{user_file}: channel(s) {undefined} are not canonical; add them under "
                         f"[channels] with a modality, or use one of {sorted(table.modality)}")
    return table.merged_with(user)


@dataclasses.dataclass(frozen=True)
class MappedChannel:
    """One canonical channel found in a recording.

    ``sources`` holds one label (direct alias) or two (``plus - minus`` derivation).
    """

    name: str
    modality: str
    sources: tuple[str, ...]

    @property
    def derived(self) -> bool:
        return len(self.sources) == 2


@dataclasses.dataclass(frozen=True)
class ChannelMapping:
    """How a recording's labels map to canonical channels, and what stayed unmapped."""

    channels: tuple[MappedChannel, ...]
    unmapped: tuple[str, ...]
    duplicates: dict[str, tuple[str, ...]]

    @property
    def modalities(self) -> tuple[str, ...]:
        present = {c.modality for c in self.channels}
        return tuple(m for m in MODALITIES if m in present)

    def by_label(self) -> dict[str, MappedChannel]:
        """Source label → the canonical channel it feeds."""
        return {src: ch for ch in self.channels for src in ch.sources}


def map_channels(
    labels: Sequence[str],
    table: ChannelTable | None = None,
    *,
    required: Iterable[str] = (),
    source: str = "recording",
) -> ChannelMapping:
    """Map a recording's channel labels to canonical channels.

    Parameters
    ----------
    labels : sequence of str
        The labels as stored in the file.
    table : ChannelTable | None
        Alias table; the built-in one when None.
    required : iterable of str
        Modalities (``"eeg"``) or canonical channels (``"C4-M1"``) that must be present. Anything
        else missing is reported, not fatal.
    source : str
        Name of the file, used in error messages.

    Returns
    -------
    ChannelMapping
        Canonical channels in table order, the labels left unmapped, and labels that matched a
        canonical channel already taken (the first label wins).

    Raises
    ------
    ChannelNotFoundError
        If a required modality or channel is absent; the message lists the available labels.
    """
    table = table or load_channel_table()
    normalized: dict[str, str] = {}
    for label in labels:
        normalized.setdefault(normalize_label(label), label)
    used: set[str] = set()
    mapped: list[MappedChannel] = []
    duplicates: dict[str, tuple[str, ...]] = {}
    for name, modality in table.modality.items():
        keys = [normalize_label(a) for a in table.aliases.get(name, ())] + [normalize_label(name)]
        hits = [normalized[k] for k in dict.fromkeys(keys) if k in normalized and normalized[k] not in used]
        if hits:
            mapped.append(MappedChannel(name, modality, (hits[0],)))
            used.add(hits[0])
            if len(hits) > 1:
                duplicates[name] = tuple(hits[1:])
            continue
        if name in table.derivations:
            plus, minus = (normalize_label(t) for t in table.derivations[name])
            if plus in normalized and minus in normalized and normalized[plus] not in used:
                mapped.append(MappedChannel(name, modality, (normalized[plus], normalized[minus])))
                used.add(normalized[plus])
    # reference leads (M1, M2) may feed several derivations; they are not "unmapped"
    feeding = {s for ch in mapped for s in ch.sources}
    unmapped = tuple(label for label in labels if label not in feeding)
    mapping = ChannelMapping(tuple(mapped), unmapped, duplicates)
    _check_required(mapping, required, labels, source)
    return mapping


def _check_required(mapping: ChannelMapping, required: Iterable[str], labels: Sequence[str],
                    source: str) -> None:
    names = {c.name for c in mapping.channels}
    for want in required:
        if want in MODALITIES:
            present = want in mapping.modalities
        else:
            present = want in names
        if not present:
            raise ChannelNotFoundError(
                f"{source}: required {'modality' if want in MODALITIES else 'channel'} {want!r} "
                f"not found. Available labels: {list(labels)}. Add an alias for one of them in a "
                "channel file (--channel-file) or drop it from the required list.")
