"""A local stand-in for the Jibble API: a synthetic organisation served over real HTTP."""

from jibble_pipeline.simulator.organisation import SyntheticOrganisation
from jibble_pipeline.simulator.server import FaultPlan, JibbleSimulator, SimulatorStats

__all__ = ["FaultPlan", "JibbleSimulator", "SimulatorStats", "SyntheticOrganisation"]
