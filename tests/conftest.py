import os

import pytest
import torch

# Tests run two at a time (pytest -n 2) on two cores: one thread each keeps them from fighting.
torch.set_num_threads(int(os.environ.get("VITKIT_TEST_THREADS", "1")))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
