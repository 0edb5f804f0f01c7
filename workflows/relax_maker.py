"""Old home of :mod:`.flows.relax_maker`: jobflow outputs stored before the move name
``omni_flows.workflows.relax_maker`` as ``@module`` (tests/data/legacy_db/outputs.json),
and a monty without its missing-module fallback raises on a name it cannot import."""
from .flows.relax_maker import OmniRelaxMaker, OmniStaticMaker  # noqa: F401
