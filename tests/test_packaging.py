"""A plain (non-editable) install must carry the profiles: build the wheel and look inside."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.integration
def test_wheel_ships_profiles_inside_the_package(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(REPO)],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("hes_sim-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for xsd in sorted((REPO / "profiles" / "xsd").glob("*.xsd")):
        assert f"simulator/profiles/xsd/{xsd.name}" in names
    for wsdl in sorted((REPO / "profiles" / "wsdl").glob("*.wsdl")):
        assert f"simulator/profiles/wsdl/{wsdl.name}" in names
    assert "simulator/cli.py" in names
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "hes-sim = simulator.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()
