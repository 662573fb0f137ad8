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
from .montage import canonical_modality, is_position_label, parse_label
from .position_codes import parse_position_codes

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
    profiles: dict[str, tuple[tuple[str, ...], dict[str, tuple[str, ...]]]] = dataclasses.field(default_factory=dict)
    position_labels: tuple[str, ...] = ()  # labels of a position channel, tried before the montage reader
    position_codes: dict[int, str] = dataclasses.field(default_factory=dict)  # recorder code -> position

    def position_label(self, labels: Iterable[str]) -> str | None:
        """The label of the recording's body-position channel: one the table names, else the
        first the montage reader reads as one (:func:`~synthsleepnet.io.montage.is_position_label`)."""
        labels = list(labels)
        by_key = {normalize_label(label): label for label in reversed(labels)}
        named = [by_key[key] for key in map(normalize_label, self.position_labels) if key in by_key]
        return next(iter(named), None) or next((label for label in labels if is_position_label(label)), None)

    def modality_of(self, name: str) -> str | None:
        """The modality of a canonical channel: the table's, else read from its name (``C3-M1``)."""
        return self.modality.get(name) or canonical_modality(name)

    def merged_with(self, user: ChannelTable) -> ChannelTable:
        """Return a table where ``user`` entries come first and may add new channels.

        Aliases to a name the table lacks but the montage reader understands (``C3-M1``) add
        that channel with its modality.
        """
        read = {n: m for n in [*user.aliases, *user.derivations] if n not in self.modality and n not in user.modality
                and (m := canonical_modality(n))}
        modality = {**self.modality, **read, **user.modality}
        aliases = {name: tuple(user.aliases.get(name, ())) + tuple(self.aliases.get(name, ()))
                   for name in modality}
        derivations = {**self.derivations, **user.derivations}
        return ChannelTable(modality, aliases, derivations, {**self.profiles, **user.profiles},
                            user.position_labels + self.position_labels, user.position_codes or self.position_codes)

    def profiles_for(self, labels: Iterable[str]) -> list[str]:
        """The cohort profiles whose distinctive labels (all of them) a recording carries."""
        have = {normalize_label(label) for label in labels}
        return [name for name, (detect, _) in self.profiles.items()
                if detect and {normalize_label(d) for d in detect} <= have]


def _table_from_mapping(data: Mapping[str, Any], source: str) -> ChannelTable:
    unknown = sorted(set(data) - {"channels", "aliases", "derivations", "profiles", "position"})
    if unknown:
        raise ValueError(f"{source}: unknown section(s) {unknown}; "
                         "expected 'channels', 'aliases', 'derivations', 'profiles' and 'position'")
    profiles: dict[str, tuple[tuple[str, ...], dict[str, tuple[str, ...]]]] = {}
    for name, profile in dict(data.get("profiles", {})).items():
        if not isinstance(profile, Mapping) or set(profile) - {"detect", "aliases"}:
            raise ValueError(f"{source}: profile {name!r} must hold 'detect' (labels) and 'aliases'")
        profiles[name] = (tuple(profile.get("detect", ())),
                          {k: tuple(v) for k, v in dict(profile.get("aliases", {})).items()})
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
    position = data.get("position", {})
    if not isinstance(position, Mapping) or set(position) - {"labels", "codes"} or \
            not isinstance(position.get("codes", {}), Mapping):
        raise ValueError(f"{source}: [position] may hold 'labels' (a list) and 'codes' (code = position)")
    return ChannelTable(channels, aliases, derivations, profiles, tuple(map(str, position.get("labels", ()))),
                        parse_position_codes(position.get("codes", {}), f"{source}: [position] codes"))


def load_channel_table(user_file: str | Path | None = None) -> ChannelTable:
    """Load the built-in channel table, extended by a user TOML/YAML file if given.

    The user file has the sections ``[channels]`` (canonical name → modality, to add channels),
    ``[aliases]`` (canonical name → list of labels, tried before the built-in ones),
    ``[derivations]`` (canonical name → ``"PLUS - MINUS"``) and ``[position]`` (the body-position
    channel's ``labels`` and its recorder's ``codes``: :mod:`~synthsleepnet.io.body_position`).
    """
    text = resources.files("synthsleepnet").joinpath("data/channel_aliases.toml").read_text("utf-8")
    table = _table_from_mapping(tomllib.loads(text), "built-in channel table")
    if user_file is None:
        return table
    user = _table_from_mapping(load_config_file(user_file), str(user_file))
    names = set(user.aliases) | set(user.derivations)
    undefined = sorted(n for n in names - set(table.modality) - set(user.modality) if not canonical_modality(n))
    if undefined:
        raise ValueError(f"{user_file}: channel(s) {undefined} are not canonical; add them under "
                         f"[channels] with a modality, or use one of {sorted(table.modality)} (or a "
                         "derivation such as C3-M1)")
    return table.merged_with(user)


@dataclasses.dataclass(frozen=True)
class MappedChannel:
    """One canonical channel found in a recording.

    ``sources`` holds one label (direct alias) or two (``plus - minus`` derivation); ``rule``
    says how it was found (an alias, a derivation, or how the montage reader read the label).
    """

    name: str
    modality: str
    sources: tuple[str, ...]
    rule: str = "channel table alias"

    @property
    def derived(self) -> bool:
        return len(self.sources) == 2


@dataclasses.dataclass(frozen=True)
class ChannelMapping:
    """How a recording's labels map to canonical channels, and what each label is.

    ``explanations`` has one line per label: the channel it feeds and by which rule, or why it
    is not used (a sensor that is no model input, an ambiguous label, a duplicate, no rule).
    """

    channels: tuple[MappedChannel, ...]
    unmapped: tuple[str, ...]
    duplicates: dict[str, tuple[str, ...]]
    explanations: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def modalities(self) -> tuple[str, ...]:
        present = {c.modality for c in self.channels}
        return tuple(m for m in MODALITIES if m in present)

    @property
    def ambiguous(self) -> list[str]:
        return [label for label in self.unmapped if parse_label(label).ambiguous]

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

    Three passes, the first that claims a label wins: the alias table (built-in, extended by a
    user channel file: explicit aliases always win), derivations from monopolar leads
    (``C4 − M1``), then the montage reader (:func:`~synthsleepnet.io.montage.parse_label`:
    any scalp derivation, eyes, chin, ECG, vendor names for flow, belts and SpO2). Labels that
    are ambiguous or no model input are explained, never guessed.

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
        Canonical channels (table order, then as read), the labels left unmapped, labels that
        matched a channel already taken (the first label wins), and an explanation per label.

    Raises
    ------
    ChannelNotFoundError
        If a required modality or channel is absent; the message lists the available labels.
    """
    table = table or load_channel_table()
    normalized: dict[str, str] = {}
    for label in labels:
        normalized.setdefault(normalize_label(label), label)
    profiles = table.profiles_for(labels)
    profile_aliases: dict[str, tuple[str, str]] = {}  # normalized label -> (canonical, profile)
    for profile in profiles:
        for name, names in table.profiles[profile][1].items():
            profile_aliases.update({normalize_label(a): (name, profile) for a in names})
    used: set[str] = set()
    mapped: list[MappedChannel] = []
    duplicates: dict[str, tuple[str, ...]] = {}
    for name, modality in table.modality.items():
        mine = [k for k, (n, _) in profile_aliases.items() if n == name]
        general = [normalize_label(a) for a in (*table.aliases.get(name, ()), name)]
        keys = mine + [k for k in general if k not in profile_aliases]
        hits = [normalized[k] for k in dict.fromkeys(keys) if k in normalized and normalized[k] not in used]
        if hits:
            key = normalize_label(hits[0])
            rule = (f"{profile_aliases[key][1].upper()} montage (its labels "
                    f"{list(table.profiles[profile_aliases[key][1]][0])} are present)" if key in profile_aliases
                    else "channel table alias")
            mapped.append(MappedChannel(name, modality, (hits[0],), rule))
            used.add(hits[0])
            if len(hits) > 1:
                duplicates[name] = tuple(hits[1:])
            continue
        if name in table.derivations:
            plus, minus = (normalize_label(t) for t in table.derivations[name])
            if plus in normalized and minus in normalized and normalized[plus] not in used:
                rule = f"derived: {normalized[plus]} − {normalized[minus]}"
                mapped.append(MappedChannel(name, modality, (normalized[plus], normalized[minus]), rule))
                used.add(normalized[plus])
    feeding = {s for ch in mapped for s in ch.sources}  # reference leads may feed several derivations
    taken = {ch.name for ch in mapped}
    explanations: dict[str, str] = {}
    for label in labels:
        if label in feeding or label in {d for dups in duplicates.values() for d in dups}:
            continue
        parsed = parse_label(label)
        if parsed.canonical is None or parsed.modality is None:
            explanations[label] = f"not used: {parsed.reason}"
        elif parsed.canonical in taken:
            duplicates[parsed.canonical] = (*duplicates.get(parsed.canonical, ()), label)
        else:
            mapped.append(MappedChannel(parsed.canonical, parsed.modality, (label,), f"read as {parsed.rule}"))
            taken.add(parsed.canonical)
            feeding.add(label)
    for name, labels_ in duplicates.items():
        for label in labels_:
            explanations[label] = f"not used: {name} is already fed by another label (the first one wins)"
    for ch in mapped:
        for label in ch.sources:
            explanations.setdefault(label, f"{ch.name} ({ch.modality}): {ch.rule}")
    unmapped = tuple(label for label in labels if label not in feeding)
    mapping = ChannelMapping(tuple(mapped), unmapped, duplicates, {k: explanations[k] for k in labels
                                                                    if k in explanations})
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
