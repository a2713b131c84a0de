"""``--download``: fetch the standard MOSI ``.csd`` files through the CMU SDK, when possible.

Needs the optional SDK (``pip install 'mweight[sdk]'``, i.e. cmu-multimodal-sdk)
and a reachable CMU server (often down). Files already present are kept; each
download goes to a temporary name first, so an interrupted one leaves nothing.
Never used by the tests.
"""
from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

from ..errors import MWeightError

# role -> key in mmsdk's cmu_mosi tables (0.0.6 and upstream use the same URLs)
WANTED = {"words": ("raw", "words"), "text": ("highlevel", "glove_vectors"), "audio": ("highlevel", "COVAREP"),
          "video": ("highlevel", "FACET 4.1"), "labels": ("labels", "Opinion Segment Labels")}


def download_mosi(directory: str | os.PathLike, roles=("words", "text", "audio", "video", "labels")) -> list[Path]:
    """Download the standard MOSI computational sequences into ``directory``; returns the files."""
    try:
        from mmsdk.mmdatasdk import cmu_mosi
        from mmsdk.mmdatasdk.computational_sequence.download_ops import readURL
    except ImportError:
        raise MWeightError("--download needs the CMU SDK (expected `pip install 'mweight[sdk]'`); "
                           "or download the .csd files yourself and pass --csd-dir") from None
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for role in roles:
        table, key = WANTED[role]
        url = getattr(cmu_mosi, table).get(key)
        if url is None:
            continue
        dest = directory / url.rsplit("/", 1)[-1]
        if not dest.is_file():
            tmp = dest.with_name(f".{dest.name}.part")
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    readURL(url, str(tmp))
                os.replace(tmp, dest)
            except BaseException as exc:  # network down, server gone, interrupted
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
                if isinstance(exc, KeyboardInterrupt):
                    raise
                first = (str(exc).splitlines() or [type(exc).__name__])[0][:120]
                raise MWeightError(f"{url}: download failed ({first}); the CMU server is often unreachable; "
                                   "get the .csd files another way and pass --csd-dir") from None
        out.append(dest)
    return out
