"""The MLIP single point Maker (it shares its code with the relaxation Maker)."""

from .relax_maker import OmniStaticMaker

__all__ = ["OmniStaticMaker"]
