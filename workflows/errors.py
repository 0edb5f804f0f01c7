"""Errors of the workflows: input errors, raised before any relaxation starts, and the
calculation errors of the family (an SCF or a DFT run that failed) re-exported for them."""

from omni_flows.model.errors import CalculationError, OmniFlowsError

__all__ = ["CalculationError", "FacetError", "FrameworkError", "UnknownAdsorbateError",
           "WorkflowInputError"]


class WorkflowInputError(OmniFlowsError, ValueError):
    """Input a workflow cannot run with: the message names it and what to do."""


class UnknownAdsorbateError(WorkflowInputError):
    """An adsorbate that is neither in the built-in set nor a readable structure file."""


class FacetError(WorkflowInputError):
    """A Miller index the bulk cannot make a slab of."""


class FrameworkError(WorkflowInputError):
    """A MOF CIF that cannot be used as it is (disorder, overlaps, unreadable)."""
