"""The project's exception family.

Every error a user can cause derives from :class:`OmniFlowsError`, so callers
(CLI, workflows) can catch one type. It lives in ``model/`` because that is the
part every other part may import; it imports nothing itself.

As in ASE (``InputError`` vs ``CalculationFailed``), the family has two kinds:

- input errors (every ``OmniFlowsError`` that is not a ``CalculationError``): bad
  input, raised before any compute; the CLI exits 2;
- :class:`CalculationError`: a calculation that started and failed (an SCF that did
  not converge, a DFT code that crashed or ran past its time); the CLI exits 3.
"""


class OmniFlowsError(Exception):
    """Base of all user-facing errors of omni-flows; the message says what to do."""


class CalculationError(OmniFlowsError, RuntimeError):
    """A calculation that started and failed; the message names it and what to try."""


class ModelNotFoundError(OmniFlowsError, FileNotFoundError):
    """A model name or checkpoint path that does not resolve."""


class UnknownElementError(OmniFlowsError, ValueError):
    """A structure holds an element the model was not trained on."""


class UnknownTaskError(OmniFlowsError, ValueError):
    """A task (functional / data domain) the model does not have, or none given."""


class InvalidStructureError(OmniFlowsError, ValueError):
    """NaN/inf positions, overlapping atoms, a degenerate cell, ..."""


class CheckpointError(OmniFlowsError, ValueError):
    """A checkpoint that cannot be read or fails its integrity check."""


class DeviceUnavailableError(OmniFlowsError, RuntimeError):
    """A device (``cuda``, ``cuda:1``, ``mps``) that this machine does not have."""
