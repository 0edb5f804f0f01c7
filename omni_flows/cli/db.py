"""``omni-flows db start | stop | status | schema | migrate | publish``: the database and its
documents."""

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from omni_flows.output import print_table

app = typer.Typer(help="The database: local server, document schemas.", no_args_is_help=True)


def _info_table(info: dict) -> Table:
    table = Table(show_header=False)
    table.add_column("property", no_wrap=True)
    table.add_column("value", no_wrap=True)  # URIs and paths are copied: whole
    for key, value in info.items():
        table.add_row(key, str(value))
    return table


@app.command("start")
def start() -> None:
    """Start the local database server over <home>/db (nothing to do if it runs)."""
    from omni_flows.server import start_server
    from omni_flows.settings import load_settings, redact

    info = start_server(load_settings())
    Console().print(
        f"database server running at [bold]{redact(info.uri)}[/] (pid {info.pid}); "
        "`omni-flows db status --json` gives its URI with the credential"
    )


@app.command("stop")
def stop() -> None:
    """Stop the local database server cleanly, and any stray server over its data folder."""
    from omni_flows.server import stop_server, stray_servers
    from omni_flows.settings import load_settings

    settings = load_settings()
    strays = stray_servers(settings)
    info = stop_server(settings)
    for pid, command in strays:
        print(f"stopped stray database process {pid}: {command}")  # plain: a path, unwrapped
    if info or not strays:
        Console().print("database server stopped" if info else "no database server was running")


@app.command("status")
def status(
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Where the database is: the local server (pid, uri, data folder) or the configured URI.

    The URI carries the credentials of the local server: pymongo.MongoClient(uri) works
    from your own scripts. A server that does not answer is an error (exit code 2).
    """
    from omni_flows.server import server_status
    from omni_flows.settings import load_settings, redact
    from omni_flows.stores import check_connection

    settings = load_settings()
    if settings.uses_local_server:
        info = server_status(settings)
        if info is not None:
            check_connection(info.uri)
        data = (
            {"running": True, **info.as_dict()}
            if info
            else {"running": False, "uri": settings.uri, "pid": None}
        )
    else:  # a user's MongoDB: not ours to start or stop, but it must answer
        check_connection(settings.uri)
        data = {"running": True, "uri": settings.uri, "pid": None}
    data["database"] = settings.database
    if as_json:
        print(json.dumps(data))
        return
    print_table(Console(), _info_table({**data, "uri": redact(data["uri"])}))


@app.command("schema")
def schema(
    collection: str = typer.Argument(None, help="one collection; all when left out"),
    out: Path = typer.Option(None, "--out", "-o", help="write <collection>.schema.json here"),
) -> None:
    """JSON Schema of the stored documents, with natural keys and indexes."""
    from omni_flows.output import check_writable_dir
    from omni_flows.db_schemas.schema import json_schemas, write_json_schemas
    from omni_flows.errors import UnknownCollectionError

    schemas = json_schemas()
    if collection is not None and collection not in schemas:
        raise UnknownCollectionError(
            f"no result collection {collection!r}; known: {', '.join(schemas)}"
        )
    if out is not None:
        check_writable_dir(out, "--out")
        paths = write_json_schemas(out, [collection] if collection else None)
        print("\n".join(str(p) for p in paths))  # plain: paths must not be wrapped
        return
    print(json.dumps(schemas[collection] if collection else schemas, indent=2))


@app.command("migrate")
def migrate() -> None:
    """Give the documents of an earlier omni-flows their settings ids (keeps every one)."""
    from omni_flows.settings import load_settings
    from omni_flows.stores import migrate_database

    settings = load_settings()
    n = migrate_database(settings)
    Console().print(f"{n} documents given the settings id of what they stored; database "
                    f"{settings.database} is up to date")


@app.command("publish")
def publish() -> None:
    """File result documents of all job outputs into their collections (after jobflow-remote)."""
    from omni_flows.stores import job_store, publish_results

    store = job_store()
    store.connect()
    try:
        n = publish_results(store)
    finally:
        store.close()
    Console().print(f"{n} result documents filed")
