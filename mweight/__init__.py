"""mweight: interpretable multimodal sentiment analysis.

How much does each modality (text, audio, video) and each interaction between
modalities contribute to a prediction? mweight trains per-modality encoders
whose outputs are combined by ONE final linear layer split into *blocks*; each
block carries a relevance weight beta under an lp-norm constraint (MNL, lp-norm
multiple kernel learning for neural nets). Interaction blocks are tensor-fusion
products with iterative batch normalisation (vBN / IterBN) so high-order blocks
cannot soak up relevance (degree inflation). See docs/method.md.
"""
__version__ = "0.1.0"

from .errors import MWeightError  # noqa: E402

__all__ = ["MWeightError", "MWeight", "load_dataset", "Config", "__version__"]


def __getattr__(name):  # lazy: importing mweight must not import torch for --help
    if name == "MWeight":
        from .estimator import MWeight

        return MWeight
    if name == "load_dataset":
        from .data import load_dataset

        return load_dataset
    if name == "Config":
        from .config import Config

        return Config
    raise AttributeError(name)
