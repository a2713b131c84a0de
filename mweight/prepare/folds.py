"""Standard folds (speaker-independent, by video id): CMU-MOSI here, CMU-MOSEI in
``folds_mosei.json`` (package data), and user folds files for ``prepare sdk``.

CMU-MOSI:
Copied verbatim, order preserved, from github.com/A2Zadeh/CMU-MultimodalSDK@fd18d71
``mmsdk/mmdatasdk/dataset/standard_datasets/CMU_MOSI/cmu_mosi_std_folds.py`` (variables standard_train_fold / standard_valid_fold /
standard_test_fold; MIT license). 52 / 10 / 31 videos = 1284 / 229 / 686 segments
(1283 train after the SDK drops the zero-length segment 2WGyTLYerpo_44).
"""
from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

from ..data import video_of  # noqa: F401  (re-exported: prepare modules import it from here)
from ..errors import MWeightError

SPLIT_NAMES = ("train", "valid", "test")

MOSI_TRAIN_VIDEOS: tuple[str, ...] = (
    '2iD-tVS8NPw',
    '8d-gEyoeBzc',
    'Qr1Ca94K55A',
    'Ci-AH39fi3Y',
    '8qrpnFRGt2A',
    'Bfr499ggo-0',
    'QN9ZIUWUXsY',
    '9T9Hf74oK10',
    '7JsX8y1ysxY',
    '1iG0909rllw',
    'Oz06ZWiO20M',
    'BioHAh1qJAQ',
    '9c67fiY0wGQ',
    'Iu2PFX3z_1s',
    'Nzq88NnDkEk',
    'Clx4VXItLTE',
    '9J25DZhivz8',
    'Af8D0E4ZXaw',
    'TvyZBvOMOTc',
    'W8NXH0Djyww',
    '8OtFthrtaJM',
    '0h-zjBukYpk',
    'Vj1wYRQjB-o',
    'GWuJjcEuzt8',
    'BI97DNYfe5I',
    'PZ-lDQFboO8',
    '1DmNV9C1hbY',
    'OQvJTdtJ2H4',
    'I5y0__X72p0',
    '9qR7uwkblbs',
    'G6GlGvlkxAQ',
    '6_0THN4chvY',
    'Njd1F0vZSm4',
    'BvYR0L6f2Ig',
    '03bSnISJMiM',
    'Dg_0XKD0Mf4',
    '5W7Z1C_fDaE',
    'VbQk4H8hgr0',
    'G-xst2euQUc',
    'MLal-t_vJPM',
    'BXuRRbG0Ugk',
    'LSi-o-IrDMs',
    'Jkswaaud0hk',
    '2WGyTLYerpo',
    '6Egk_28TtTM',
    'Sqr0AcuoNnk',
    'POKffnXeBds',
    '73jzhE8R1TQ',
    'OtBXNcAL_lE',
    'HEsqda8_d0Q',
    'VCslbP0mgZI',
    'IumbAb8q2dM',
)

MOSI_VALID_VIDEOS: tuple[str, ...] = (
    'WKA5OygbEKI',
    'c5xsKMxpXnc',
    'atnd_PF-Lbs',
    'bvLlb-M3UXU',
    'bOL9jKpeJRs',
    '_dI--eQ6qVU',
    'ZAIRrfG22O0',
    'X3j2zQgwYgE',
    'aiEXnCPZubE',
    'ZUXBRvtny7o',
)

MOSI_TEST_VIDEOS: tuple[str, ...] = (
    'tmZoasNr4rU',
    'zhpQhgha_KU',
    'lXPQBPVc5Cw',
    'iiK8YX8oH1E',
    'tStelxIAHjw',
    'nzpVDcQ0ywM',
    'etzxEpPuc6I',
    'cW1FSBF59ik',
    'd6hH302o4v8',
    'k5Y_838nuGo',
    'pLTX3ipuDJI',
    'jUzDDGyPkXU',
    'f_pcplsH_V0',
    'yvsjCA6Y5Fc',
    'nbWiPyCm4g0',
    'rnaNMUZpvvg',
    'wMbj6ajWbic',
    'cM3Yna7AavY',
    'yDtzw_Y-7RU',
    'vyB00TXsimI',
    'dq3Nf_lMPnE',
    'phBUpBr1hSo',
    'd3_k5Xpfmik',
    'v0zCBqDeKcE',
    'tIrG4oNLFzE',
    'fvVhgmXxadc',
    'ob23OKe5a9Q',
    'cXypl4FnoZo',
    'vvZ4IcEtiZc',
    'f9O3YtZ2VfI',
    'c7UH_rxdZv4',
)

MOSI_FOLDS: dict[str, tuple[str, ...]] = {
    "train": MOSI_TRAIN_VIDEOS,
    "valid": MOSI_VALID_VIDEOS,
    "test": MOSI_TEST_VIDEOS,
}


def mosi_split_of_video() -> dict[str, str]:
    """Map each MOSI video id to its standard split name."""
    return split_of_video(MOSI_FOLDS)


def split_of_video(folds, source: str = "folds") -> dict[str, str]:
    """``{split: [video, ...]}`` -> ``{video: split}``; a video in two splits is an error."""
    out: dict[str, str] = {}
    for split, vids in folds.items():
        for vid in vids:
            if out.get(vid, split) != split:
                raise MWeightError(f"{source}: video '{vid}' is in both '{out[vid]}' and '{split}' (expected disjoint folds)")
            out[vid] = split
    return out


def load_folds(path: str | os.PathLike) -> dict[str, str]:
    """A folds file ``{"train": [video ids], "valid": [...], "test": [...]}`` (JSON) -> ``{video: split}``.

    ``valid`` may be absent (training then carves one from train by whole videos);
    keys starting with ``_`` are comments.
    """
    path = Path(path)
    if not path.is_file():
        raise MWeightError(f"{path}: file not found (expected a folds JSON {{\"train\": [video ids], \"valid\": [...], \"test\": [...]}})")
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise MWeightError(f"{path}: not valid JSON ({str(exc)[:80]}; expected {{\"train\": [video ids], ...}})") from None
    if not isinstance(obj, dict):
        raise MWeightError(f"{path}: top level is {type(obj).__name__} (expected an object with keys train/valid/test)")
    folds = {k: v for k, v in obj.items() if not str(k).startswith("_")}
    for key, vids in folds.items():
        if key not in SPLIT_NAMES:
            raise MWeightError(f"{path}: field '{key}' (expected only train, valid, test)")
        if not isinstance(vids, list) or not all(isinstance(v, str) for v in vids):
            raise MWeightError(f"{path}: field '{key}' is not a list of video id strings")
    for key in ("train", "test"):
        if not folds.get(key):
            raise MWeightError(f"{path}: field '{key}' missing or empty (expected a list of video ids)")
    return split_of_video(folds, str(path))


@lru_cache(maxsize=None)
def mosei_split_of_video() -> dict[str, str]:
    """The standard CMU-MOSEI folds (2249 / 300 / 678 videos), ``{video: split}``."""
    return load_folds(Path(__file__).with_name("folds_mosei.json"))
