"""A multimodal PSG simulator: the built-in data for the demo and the tests."""

from .architecture import SubjectProfile, simulate_hypnogram
from .cohort import simulate_cohort
from .night import SimulatedNight, simulate_night, write_night

__all__ = ["SimulatedNight", "SubjectProfile", "simulate_cohort", "simulate_hypnogram",
           "simulate_night", "write_night"]
