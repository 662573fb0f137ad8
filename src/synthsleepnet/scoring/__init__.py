"""Scoring a recording and the result object."""

from .embed import embed_epochs, write_embeddings
from .result import ScoringResult, severity_band
from .score import Scorer, load_scorers, score_recording

__all__ = ["Scorer", "ScoringResult", "embed_epochs", "load_scorers", "score_recording", "severity_band",
           "write_embeddings"]
