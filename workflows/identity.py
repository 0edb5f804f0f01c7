"""Job identities: the same input gets the same jobflow uuid, from the result's identity.

The job key and the documents' settings id both come from
:func:`omni_flows.db_schemas.identity.result_identity` (one function), so the
local engine skips a job whose output is stored, and a job made with other
settings is another job whose documents sit beside the first ones.
"""

import uuid

from jobflow import Job, OutputReference
from omni_flows.db_schemas.identity import ResultIdentity

NAMESPACE = uuid.UUID("6f6d6e69-666c-6f77-732d-776f726b666c")  # "omniflows-workfl"


def keyed(job: Job, identity: ResultIdentity) -> Job:
    """Give ``job`` the uuid of its :class:`ResultIdentity`; call before its output is
    passed to other jobs."""
    job_uuid = str(uuid.uuid5(NAMESPACE, identity.key))
    job.uuid = job_uuid
    job.output = OutputReference(job_uuid, output_schema=job.output.output_schema)
    return job
