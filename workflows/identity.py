"""Deterministic job identities: the same input gets the same jobflow uuid.

The local engine skips jobs whose uuid already has an output in the store, so a
campaign that is built again from the same input reuses every stored result and
computes only what is new (another adsorbate, another facet).
"""

import uuid

from jobflow import Job, OutputReference
from omni_flows.db_schemas.fingerprint import content_hash

NAMESPACE = uuid.UUID("6f6d6e69-666c-6f77-732d-776f726b666c")  # "omniflows-workfl"


def keyed(job: Job, *key) -> Job:
    """Give ``job`` the uuid of ``key`` (call before its output is passed to other jobs)."""
    job_uuid = str(uuid.uuid5(NAMESPACE, content_hash(list(key))))
    job.uuid = job_uuid
    job.output = OutputReference(job_uuid, output_schema=job.output.output_schema)
    return job
