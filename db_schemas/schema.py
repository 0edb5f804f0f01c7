"""JSON Schema export of every result document (``omni-flows db schema``)."""

import json
from pathlib import Path
from typing import Any

from .errors import UnknownCollectionError
from .indexes import COLLECTIONS


def json_schemas(collections: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Collection name -> JSON Schema of its stored document, with its key and indexes, of
    ``collections`` (None: all); a name that is no result collection is refused."""
    schemas = {}
    for spec in COLLECTIONS:
        if spec.document is None:
            continue
        # serialization mode: the stored form, computed fields (valid, error) included
        schema = spec.document.model_json_schema(mode="serialization")
        schema["x-collection"] = spec.name
        schema["x-natural-key"] = list(spec.natural_key)
        schema["x-indexes"] = [
            {"fields": list(ix.fields), "unique": ix.unique} for ix in spec.indexes
        ]
        schemas[spec.name] = schema
    unknown = [name for name in collections or [] if name not in schemas]
    if unknown:
        raise UnknownCollectionError(f"no result collection {unknown[0]!r}; known: "
                                     f"{', '.join(schemas)}")
    return {name: schemas[name] for name in collections} if collections else schemas


def write_json_schemas(folder: str | Path, collections: list[str] | None = None) -> list[Path]:
    """Write ``<collection>.schema.json`` into ``folder``, for ``collections`` or all."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, schema in json_schemas(collections).items():
        path = folder / f"{name}.schema.json"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        paths.append(path)
    return paths
