"""Settings: defaults, environment, config file, and their order of precedence.

Reference: the documented order, keyword > OMNI_FLOWS_* environment > config
file > defaults, and the XDG base-directory rule for the data folder.
"""

import os
import sys
from pathlib import Path

import pytest

from omni_flows.errors import InvalidSettingsError
from omni_flows.model.errors import OmniFlowsError
from omni_flows.settings import load_settings


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No OMNI_FLOWS_* variable of the person running the tests."""
    for name in list(os.environ):
        if name.startswith("OMNI_FLOWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    return monkeypatch


@pytest.mark.skipif(sys.platform != "linux", reason="XDG data folder is the Linux rule")
def test_defaults(clean_env, tmp_path):
    settings = load_settings()
    assert settings.home == tmp_path / "xdg" / "omni-flows"
    assert settings.db_dir == tmp_path / "xdg" / "omni-flows" / "db"
    assert (settings.model, settings.task, settings.device) == ("7net-mf-0", "PBE", "auto")
    assert settings.uses_local_server and settings.uri == "mongodb://127.0.0.1:27018/"
    assert settings.cluster.host is None and settings.cluster.scheduler == "slurm"


def test_environment_overrides_config_file_overrides_defaults(clean_env, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.yaml").write_text(
        "mongodb_uri: mongodb://db.example.org:27017/\n"
        "task: r2SCAN\n"
        "model: from-file\n"
        "cluster:\n  host: login.example.org\n  resources: {partition: gpu}\n"
    )
    clean_env.setenv("OMNI_FLOWS_HOME", str(home))
    clean_env.setenv("OMNI_FLOWS_MODEL", "from-env")
    clean_env.setenv("OMNI_FLOWS_CLUSTER__USER", "alice")
    settings = load_settings()
    assert settings.home == home
    assert settings.model == "from-env"  # environment beats the file
    assert settings.task == "r2SCAN"  # the file beats the default
    assert not settings.uses_local_server and settings.uri == "mongodb://db.example.org:27017/"
    assert settings.cluster.user == "alice" and settings.cluster.resources == {"partition": "gpu"}
    assert load_settings(model="from-kwarg").model == "from-kwarg"  # keywords beat all

    other = tmp_path / "elsewhere.yaml"
    other.write_text("device: cuda:1\n")
    clean_env.setenv("OMNI_FLOWS_CONFIG", str(other))
    assert load_settings().device == "cuda:1" and load_settings().task == "PBE"


def test_bad_settings_are_a_user_error(clean_env, tmp_path):
    clean_env.setenv("OMNI_FLOWS_DEVICE", "gpu0")
    with pytest.raises(InvalidSettingsError, match="device") as err:
        load_settings()
    assert isinstance(err.value, OmniFlowsError)
    clean_env.delenv("OMNI_FLOWS_DEVICE")

    config = tmp_path / "typo.yaml"
    config.write_text("mongo_uri: mongodb://x/\n")  # misspelt key: refused, not ignored
    clean_env.setenv("OMNI_FLOWS_CONFIG", str(config))
    with pytest.raises(InvalidSettingsError, match="mongo_uri") as err:
        load_settings()
    assert str(Path(config)) in str(err.value)
