import os
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("MWEIGHT_NO_PROGRESS", "1")
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


# Tiny models: one intra-op thread avoids oversubscription when tests run beside other work.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    np.random.seed(0)
    yield
