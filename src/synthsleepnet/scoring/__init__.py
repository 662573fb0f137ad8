"""Scoring a recording and the result object."""

from .embed import embed_epochs, write_embeddings
from .result import ScoringResult
from .score import Scorer, load_scorers, score_recording

__all__ = ["Scorer", "ScoringResult", "embed_epochs", "load_scorers", "score_recording", "write_embeddings"]
