import json
import os
import pathlib
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
# Tests run against the sources in this checkout, installed or not.
sys.path.insert(0, str(HERE.parent / "src"))

DATA = pathlib.Path(os.environ.get("LLAVANEXT_TEST_DATA", HERE.parents[2] / "tests" / "data"))


@pytest.fixture(scope="session")
def data_dir():
    return DATA


@pytest.fixture(scope="session")
def model_dir():
    return DATA / "tiny-a"


@pytest.fixture(scope="session")
def video_path():
    return DATA / "media" / "clip_h264_160x120_97f.mp4"


@pytest.fixture(scope="session")
def reference():
    with open(DATA / "reference" / "tiny-a" / "video8_h264" / "case.json", encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="session")
def model(model_dir):
    import llavanext

    with llavanext.Model(model_dir) as m:
        yield m
