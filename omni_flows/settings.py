"""The one place settings come from.

Precedence, highest first: keyword arguments, environment variables
``OMNI_FLOWS_*`` (nested with ``__``, e.g. ``OMNI_FLOWS_CLUSTER__HOST``), the
YAML config file, the defaults below. The config file is ``$OMNI_FLOWS_CONFIG``
or ``<home>/config.yaml``.
"""

import json
import os
import re
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict, YamlConfigSettingsSource

from omni_flows.errors import InvalidSettingsError
from omni_flows.model.device import DEVICE_PATTERN

ENV_PREFIX = "OMNI_FLOWS_"


# in <home>/db (mode 0700): {"username", "password", "auth_source"}, mode 0600
CREDENTIALS_FILE = "credentials.json"


def local_uri(host: str, port: int, credentials_file: Path) -> str:
    """The URI of the local server at host:port, with its credential once there is one."""
    try:
        cred = json.loads(Path(credentials_file).read_text())
    except (OSError, ValueError):  # not started yet: no credential to give
        return f"mongodb://{host}:{port}/"
    user, password = quote(cred["username"], safe=""), quote(cred["password"], safe="")
    return f"mongodb://{user}:{password}@{host}:{port}/?authSource={cred['auth_source']}"


def redact(uri: str) -> str:
    """``uri`` with its password hidden, for messages and logs."""
    return re.sub(r"^(mongodb(?:\+srv)?://[^:/@]+):[^@/]*@", r"\1:***@", uri)


def redact_config(config):
    """``config`` (dicts, lists, strings) with every password and MongoDB URI password hidden."""
    if isinstance(config, dict):
        return {k: "***" if "password" in str(k).lower() and v else redact_config(v)
                for k, v in config.items()}
    if isinstance(config, list):
        return [redact_config(v) for v in config]
    return redact(config) if isinstance(config, str) else config


def user_data_dir() -> Path:
    """The per-user data folder of the platform, e.g. ~/.local/share/omni-flows on Linux."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "omni-flows"


def config_file(home: str | Path | None = None) -> Path:
    """Where the YAML config file is looked for."""
    if os.environ.get(f"{ENV_PREFIX}CONFIG"):
        return Path(os.environ[f"{ENV_PREFIX}CONFIG"]).expanduser()
    home = home or os.environ.get(f"{ENV_PREFIX}HOME") or user_data_dir()
    return Path(home).expanduser() / "config.yaml"


class ClusterSettings(BaseModel):
    """A user's cluster for jobflow-remote: a login node reached by SSH and its scheduler."""

    host: str | None = Field(None, description="login node; None runs the worker locally")
    user: str | None = None
    scheduler: str = Field("slurm", description="qtoolkit scheduler: slurm, pbs, shell")
    work_dir: str = Field("omni-flows-runs", description="run folder on the cluster")
    resources: dict[str, Any] = Field(
        default_factory=dict, description="scheduler resources, e.g. {partition: gpu, nodes: 1}"
    )
    pre_run: str | None = Field(None, description="shell lines before each job, e.g. module load")
    max_jobs: int | None = Field(None, description="jobs queued at once on the cluster")


class Settings(BaseSettings):
    """Database, data folder, default model/task/device, cluster."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid"
    )

    home: Path = Field(default_factory=user_data_dir, description="data folder")
    mongodb_uri: str | None = Field(
        None, description="a MongoDB to use; None runs the local SecantusDB server in <home>/db"
    )
    # MongoDB allows 63 characters; FireWorks and jobflow-remote add suffixes (<= 16)
    database: str = Field(
        "omni_flows",
        pattern=r"^[A-Za-z0-9_-]{1,47}$",
        description="database of job outputs and results",
    )
    db_host: str = Field("127.0.0.1", description="address the local server listens on")
    # not mongod's 27017, so that a local MongoDB and this server can both run
    db_port: int = Field(27018, description="port of the local server")
    model: str = "7net-mf-0"
    task: str = "PBE"
    device: str = Field("auto", pattern=DEVICE_PATTERN)
    cluster: ClusterSettings = Field(default_factory=ClusterSettings)

    @classmethod
    def settings_customise_sources(
        cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
    ):
        home = init_settings.init_kwargs.get("home")
        yaml_file = config_file(home)
        return (init_settings, env_settings, YamlConfigSettingsSource(settings_cls, yaml_file))

    @property
    def uses_local_server(self) -> bool:
        return self.mongodb_uri is None

    @property
    def db_dir(self) -> Path:
        """Folder of the local server: data, log, state file."""
        return Path(self.home).expanduser() / "db"

    @property
    def credentials_file(self) -> Path:
        """The local server's credential (user, password), written on its first start."""
        return self.db_dir / CREDENTIALS_FILE

    @property
    def uri(self) -> str:
        """The MongoDB URI every client of the platform connects to (with the credential)."""
        return self.mongodb_uri or local_uri(self.db_host, self.db_port, self.credentials_file)


def load_settings(**overrides: Any) -> Settings:
    """``Settings(**overrides)``, with a bad value reported as a user error, not a traceback."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(_problem(err) for err in exc.errors())
        raise InvalidSettingsError(
            f"invalid settings: {problems}; config file: {config_file(overrides.get('home'))}"
        ) from None


def _problem(err: dict) -> str:
    """One setting that does not validate: its name, its value, the rule and where it is set."""
    loc = [str(part) for part in err["loc"]]
    name, env = ".".join(loc), ENV_PREFIX + "__".join(loc).upper()
    value = f" = {err['input']!r}" if err["type"] != "missing" else ""
    if err["type"] == "extra_forbidden":
        return f"{name}{value}: no such setting"
    return f"{name}{value}: {err['msg']} (set by {env} or {name!r} in the config file)"


def given(**options) -> dict:
    """The options a user gave (not None): left out, the settings object's own default
    decides, so the command line never restates a default."""
    return {name: value for name, value in options.items() if value is not None}
