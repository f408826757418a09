import os
import sys
import tempfile
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
# the tests mirror the package's folders; their shared helpers (helpers.py, trl_harness.py) live here
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# one Trackio store for the session and the processes it starts (trackio reads the variable when it
# is first imported); tests keep their runs apart by project
os.environ["TRACKIO_DIR"] = tempfile.mkdtemp(prefix="stepdpo-tests-trackio-")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


@pytest.fixture(scope="session")
def default_model() -> str:
    from stepdpo.default_model import default_model_path

    return str(default_model_path())


@pytest.fixture(scope="session")
def tokenizer(default_model):
    from stepdpo.models import load_tokenizer

    return load_tokenizer(default_model)


@pytest.fixture(scope="session")
def model(default_model):
    from stepdpo.models import load_model

    return load_model(default_model, dtype="fp32", device="cpu")


@pytest.fixture
def stepdpo_log():
    """The messages the ``stepdpo`` logger emits during a test (whatever display is set up)."""
    import logging

    messages: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record):
            messages.append(record.getMessage())

    logger = logging.getLogger("stepdpo")
    handler, level = Collect(logging.DEBUG), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield messages
    logger.removeHandler(handler)
    logger.setLevel(level)
