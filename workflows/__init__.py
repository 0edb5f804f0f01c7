"""jobflow Makers and Flows: MLIP static/relax, surface and MOF adsorption, screening campaigns."""

from .adsorbates import BUILTIN_ADSORBATES, Adsorbate, get_adsorbate
from .anomaly import detect_anomalies
from .campaign import SurfaceCampaign, parse_facet
from .errors import FacetError, FrameworkError, UnknownAdsorbateError, WorkflowInputError
from .mof_campaign import MOFCampaign
from .mof_flow import MOFAdsorptionMaker
from .relax_maker import OmniRelaxMaker, OmniStaticMaker
from .placements import PlacementSettings
from .settings import MLIPSettings
from .slabs import SlabSpec
from .surface_flow import SurfaceAdsorptionMaker
from .validation import R2SCANValidationMaker, ValidationTarget

__all__ = [
    "BUILTIN_ADSORBATES",
    "Adsorbate",
    "FacetError",
    "FrameworkError",
    "MLIPSettings",
    "MOFAdsorptionMaker",
    "MOFCampaign",
    "OmniRelaxMaker",
    "OmniStaticMaker",
    "PlacementSettings",
    "R2SCANValidationMaker",
    "SlabSpec",
    "SurfaceAdsorptionMaker",
    "SurfaceCampaign",
    "UnknownAdsorbateError",
    "ValidationTarget",
    "WorkflowInputError",
    "detect_anomalies",
    "get_adsorbate",
    "parse_facet",
]
