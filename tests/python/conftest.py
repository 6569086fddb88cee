# pytest set-up for the bindings' tests: where the module, the CLI and the scenarios are.
import os
import pathlib
import sys

import pytest

BUILD = pathlib.Path(os.environ.get("HEADROOM_BINARY_DIR", pathlib.Path(__file__).resolve().parents[2] / "build"))
SOURCE = pathlib.Path(os.environ.get("HEADROOM_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(BUILD / "bindings"))


@pytest.fixture
def cli():
    return str(BUILD / "cli" / "headroom")


@pytest.fixture
def scenarios():
    return SOURCE / "model" / "scenarios"
