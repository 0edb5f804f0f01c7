"""jobflow Makers and Flows: MLIP static/relax, surface and MOF adsorption, screening campaigns.

Rooms: ``flows/`` (Makers, the plan of a screen, campaigns, validation), ``structures/``
(bulks, slabs, sites, placements, adsorbates, geometry, anomaly checks), ``thermo/``
(vibrations, free energies, gas references, reactions), ``dft/`` (GPAW, PySCF, VASP, the
AdsorbML rate); beside them the settings, the one relaxation engine (``relax``), job
identity, provenance and errors.
"""

from .errors import FacetError, FrameworkError, UnknownAdsorbateError, WorkflowInputError
from .settings import MLIPSettings
from .structures.adsorbates import BUILTIN_ADSORBATES, Adsorbate, get_adsorbate
from .structures.anomaly import detect_anomalies
from .structures.placements import PlacementSettings
from .structures.slabs import SlabSpec
from .flows.campaign import SurfaceCampaign, parse_facet
from .flows.mof_campaign import MOFCampaign
from .flows.mof_flow import MOFAdsorptionMaker
from .flows.relax_maker import OmniRelaxMaker, OmniStaticMaker
from .flows.surface_flow import SurfaceAdsorptionMaker
from .flows.validation import R2SCANValidationMaker, ValidationTarget

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
