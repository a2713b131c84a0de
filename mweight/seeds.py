"""Seeds: the one ``--seeds`` syntax of ``train``, ``sweep`` and ``repro``.

``--seeds N`` is a count (seeds ``0 .. N-1``), ``--seeds 1,3,7`` a list, ``--seeds 5,``
(trailing comma) the one seed 5.
"""
from __future__ import annotations

from .errors import MWeightError

SEEDS_HELP = ("N = N seeds (0..N-1), or a list S1,S2,... (one chosen seed: 5, with a trailing comma); "
              "one sub-run OUT/seed_<s>/ per seed, then mean ± std")


def parse_seeds(text: str | int | None) -> list[int] | None:
    """``"5"`` -> ``[0, 1, 2, 3, 4]``; ``"4,1"`` -> ``[4, 1]``; ``"5,"`` -> ``[5]``; ``None``/``""`` -> ``None``.

    A bare number is a count in every command (``train`` and ``sweep`` used to read
    ``--seeds 5`` as the one seed 5, ``repro`` as five seeds; the count is what the
    documented reproduction commands mean, and ``5,`` still selects the one seed).
    """
    if text is None or str(text).strip() == "":
        return None
    s = str(text).replace(" ", "")
    try:
        if "," in s:
            seeds = [int(x) for x in s.split(",") if x]
        else:
            seeds = list(range(int(s)))
    except ValueError:
        seeds = []
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise MWeightError(f"--seeds {text!r}: expected a positive count (5 = seeds 0..4) or distinct "
                           "non-negative seeds (1,2,3; one seed: 5,)")
    return seeds
