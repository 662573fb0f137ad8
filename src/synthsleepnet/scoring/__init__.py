"""Scoring a recording and the result object.

Names are imported on first use: the result and the preparation need no torch, so a fresh
``score`` process can read the recording while torch is imported (:mod:`.prepare`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import attach

_API: dict[str, str] = {
    "PreparedInput": ".prepare",
    "Scorer": ".score",
    "ScoringResult": ".result",
    "embed_epochs": ".embed",
    "load_scorers": ".score",
    "score_recording": ".score",
    "write_embeddings": ".embed",
}

__all__ = ["PreparedInput", "Scorer", "ScoringResult", "embed_epochs", "load_scorers", "score_recording",
           "write_embeddings"]

__getattr__, __dir__ = attach(__name__, _API, globals())

if TYPE_CHECKING:  # the same names, for type checkers and IDEs
    from .embed import embed_epochs, write_embeddings
    from .prepare import PreparedInput
    from .result import ScoringResult
    from .score import Scorer, load_scorers, score_recording
