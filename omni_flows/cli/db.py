"""``omni-flows db start | stop | status | schema | migrate | publish``: the database."""

import json
from pathlib import Path

import typer
from rich.console import Console

from omni_flows.settings import load_settings, redact

app = typer.Typer(help="The database: local server, document schemas.", no_args_is_help=True)


@app.command("start")
def start() -> None:
    """Start the local database server over <home>/db (nothing to do if it runs)."""
    from omni_flows.server import start_server

    info = start_server(load_settings())
    Console().print(f"database server running at [bold]{redact(info.uri)}[/] (pid {info.pid}); "
                    "`omni-flows db status --json` gives its URI with the credential")


@app.command("stop")
def stop() -> None:
    """Stop the local database server cleanly, and any stray server over its data folder."""
    from omni_flows.server import stop_server, stray_servers

    settings = load_settings()
    strays = stray_servers(settings)
    info = stop_server(settings)
    for pid, command in strays:
        print(f"stopped stray database process {pid}: {command}")  # plain: a path, unwrapped
    if info or not strays:
        Console().print("database server stopped" if info else "no database server was running")


@app.command("status")
def status(as_json: bool = typer.Option(False, "--json", help="print one JSON object")) -> None:
    """Where the database is: the local server (pid, uri, data folder) or the configured URI
    (with the local server's credential: pymongo.MongoClient(uri) works from your scripts)."""
    from omni_flows.output import print_properties
    from omni_flows.stores import database_status

    data = database_status(load_settings())
    if as_json:
        print(json.dumps(data))
    else:
        print_properties(Console(), {**data, "uri": redact(data["uri"])})


@app.command("schema")
def schema(
    collection: str = typer.Argument(None, help="one collection; all when left out"),
    out: Path = typer.Option(None, "--out", "-o", help="write <collection>.schema.json here"),
) -> None:
    """JSON Schema of the stored documents, with natural keys and indexes."""
    from omni_flows.db_schemas.schema import json_schemas, write_json_schemas
    from omni_flows.output import check_writable_dir

    schemas = json_schemas([collection] if collection else None)  # an unknown one: refused
    if out is None:
        print(json.dumps(schemas[collection] if collection else schemas, indent=2))
    else:
        paths = write_json_schemas(check_writable_dir(out, "--out"), [*schemas])
        print("\n".join(str(p) for p in paths))  # plain: paths must not be wrapped


@app.command("migrate")
def migrate() -> None:
    """Give the documents of an earlier omni-flows their settings ids (keeps every one)."""
    from omni_flows.stores import migrate_database

    settings = load_settings()
    n = migrate_database(settings)
    Console().print(f"{n} documents given the settings id of what they stored; database "
                    f"{settings.database} is up to date")


@app.command("publish")
def publish() -> None:
    """File result documents of all job outputs into their collections (after jobflow-remote)."""
    from omni_flows.stores import publish_job_outputs

    Console().print(f"{publish_job_outputs(load_settings())} result documents filed")
