"""The built wheel: the package without the repository's claims (experiments/ is a repository tool), and an
installed `vitkit reproduce --list` that says in one line where the claims live, as README.md describes."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built offline from a copy of the sources (no build files land in the checkout)."""
    tmp = tmp_path_factory.mktemp("wheel")
    project = tmp / "project"
    project.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, project / name)
    shutil.copytree(ROOT / "src", project / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
                    "-w", str(tmp / "dist"), str(project)], check=True, capture_output=True)
    (built,) = (tmp / "dist").glob("vitkit-*.whl")
    return built


def test_the_wheel_ships_the_package_not_the_claims(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "vitkit/tools/reproduce.py" in names and ("vitkit/cli.py" in names or "vitkit/cli/__init__.py" in names)
    assert not [n for n in names if n.split("/")[0] in ("experiments", "reports", "tests")]


def test_installed_reproduce_says_where_the_claims_live(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)  # what `pip install` puts in site-packages
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VITKIT_EXPERIMENTS")}
    env["PYTHONPATH"] = str(site)
    where = subprocess.run([sys.executable, "-c", "import vitkit; print(vitkit.__file__)"], cwd=elsewhere, env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert Path(where).is_relative_to(site)  # the wheel's copy runs, not the checkout's
    proc = subprocess.run([sys.executable, "-m", "vitkit", "reproduce", "--list"], cwd=elsewhere, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stdout == ""
    err = proc.stderr.strip()
    assert "\n" not in err and err.startswith("error: ")
    assert "repository tool" in err and "make reproduce" in err
