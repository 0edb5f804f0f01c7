"""The wheel holds every module of the tree under the one import root ``omni_flows``."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARTS = {"omni_flows": "omni_flows", "model": "omni_flows/model",
         "workflows": "omni_flows/workflows", "db_schemas": "omni_flows/db_schemas"}


def test_wheel_contains_every_module(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
         "-w", str(tmp_path), "-q"],
        check=True,
    )
    (wheel,) = tmp_path.glob("omni_flows-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        f"{target}/{path.relative_to(ROOT / folder).as_posix()}"
        for folder, target in PARTS.items()
        for path in (ROOT / folder).rglob("*.py")
        if "__pycache__" not in path.parts
    }
    assert len(expected) > 15
    missing = sorted(expected - names)
    assert not missing, f"modules missing from the wheel (add their package to pyproject): {missing}"
    assert any(n.endswith("entry_points.txt") for n in names)
