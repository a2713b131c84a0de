"""Atomic file writes (a file is either the old complete version or the new one), and file hashes.

Every file mweight writes (datasets, checkpoints, run files) goes through here,
so an interrupted run never leaves a half-written file behind. :func:`sha256` is
the one file hash of the package; :class:`HashingReader` computes it while
another reader (h5py) reads the file, so a source file is not read twice.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import socket
import tempfile
from pathlib import Path
from typing import Any, Iterator

# Temporary files are named ".<target>.mweight-tmp-<host>-<pid>-<random><suffix>" next to
# their target: recognisable, hidden from globs like *.npz, and removable once <pid> on
# <host> is gone (kill -9 cannot be caught, so the next write in the folder cleans up).
TMP_TAG = ".mweight-tmp-"
_TMP_RE = re.compile(r"^\..+\.mweight-tmp-(?P<host>[^/]*)-(?P<pid>\d+)-[^-/]*$")
# mweight before 0.x named them ".<target>.<8 random chars>.tmp<suffix>"
_OLD_TMP_RE = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp(\.[A-Za-z0-9]+)?$")


HASH_CHUNK = 1 << 22  # 4 MB: large enough to amortise the calls, small enough to stay in cache
HASH_GAP = 1 << 16  # skips up to 64 KB (HDF5 object headers between datasets) are hashed on the way


def sha256(path: str | os.PathLike, chunk: int = HASH_CHUNK) -> str:
    """SHA-256 (hex) of a file, read in ``chunk``-byte blocks."""
    digest = hashlib.sha256()
    with open(path, "rb", buffering=0) as fh:
        buf = bytearray(chunk)
        view = memoryview(buf)
        while n := fh.readinto(buf):
            digest.update(view[:n])
    return digest.hexdigest()


class HashingReader(io.RawIOBase):
    """A read-only binary file that computes the file's SHA-256 from the bytes its reader reads.

    Meant for readers that seek (h5py's ``fileobj`` driver reads an HDF5 file
    through ``seek`` + ``readinto``). The digest covers the prefix ``[0, hashed)``
    of the file. A read reaching past ``hashed`` extends it: the bytes are hashed
    from the reader's own buffer (no copy; hashlib releases the GIL), after the
    few bytes the reader skipped before it (object headers between datasets, at
    most ``gap``), which are read for the hash. Reads before ``hashed`` add
    nothing; reads further ahead (HDF5 metadata at the end of the file, or
    videos read out of file order) are hashed later, when the prefix reaches
    them, by reading them again. So a file read in file order is hashed in the
    same pass. :meth:`hexdigest` hashes the rest of the file and returns the
    digest of the whole file, equal to :func:`sha256`. Memory: one ``chunk``
    besides the reader's buffers. Counters: ``read_bytes`` (asked for by the
    reader), ``extra_bytes`` (read only to be hashed).
    """

    def __init__(self, path: str | os.PathLike, chunk: int = HASH_CHUNK, gap: int = HASH_GAP):
        super().__init__()
        self.path = Path(path)
        self._fh = open(self.path, "rb", buffering=0)
        self._fd = self._fh.fileno()
        self._size = os.fstat(self._fd).st_size
        self._pos = 0
        self.hashed = 0  # bytes [0, hashed) are in the digest
        self._digest = hashlib.sha256()
        self._chunk, self._gap = chunk, gap
        self.read_bytes = 0
        self.extra_bytes = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            self._pos = offset
        elif whence == io.SEEK_CUR:
            self._pos += offset
        else:
            self._pos = self._size + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def _pread(self, view: memoryview, offset: int) -> int:
        """Fill ``view`` from ``offset`` (several calls if the OS returns less); fewer bytes only at the end of the file."""
        done = 0
        while done < len(view):
            n = os.preadv(self._fd, [view[done:]], offset + done)
            if n <= 0:
                break
            done += n
        return done

    def _hash_file(self, end: int) -> None:
        """Read ``[hashed, end)`` from the file, ``chunk`` bytes at a time, and hash it."""
        start = self.hashed
        buf = memoryview(bytearray(max(min(self._chunk, end - start), 1)))
        while self.hashed < end:
            n = self._pread(buf[: min(len(buf), end - self.hashed)], self.hashed)
            if n <= 0:
                break
            self._digest.update(buf[:n])
            self.hashed += n
        self.extra_bytes += self.hashed - start

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        start = self._pos
        n = self._pread(view, start)
        end = start + n
        self._pos = end
        self.read_bytes += n
        if self.hashed < end and start <= self.hashed + self._gap:
            if start > self.hashed:
                self._hash_file(start)  # a small skip (headers): hashed now rather than read again at the end
            self._digest.update(view[self.hashed - start: n])  # the part past the prefix (usually all of it)
            self.hashed = end
        return n

    def hexdigest(self) -> str:
        """The SHA-256 of the whole file (hashes the rest of the file first)."""
        self._hash_file(self._size)
        return self._digest.hexdigest()

    def close(self) -> None:
        if not self.closed:
            self._fh.close()
        super().close()


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname())[:40] or "host"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temporaries(folder: str | os.PathLike, target: str | None = None) -> list[Path]:
    """Remove temporary files left in ``folder`` by mweight processes of this host that died.

    Old-style leftovers (``.<target>.xxxxxxxx.tmp``) are removed only for ``target``.
    Returns the removed paths.
    """
    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    host, me = _host(), os.getpid()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for e in entries:
        if not e.name.startswith(".") or not e.is_file(follow_symlinks=False):
            continue
        m = _TMP_RE.match(e.name)
        stale = False
        if m and TMP_TAG in e.name:
            pid = int(m.group("pid"))
            stale = m.group("host") == host and pid != me and not _alive(pid)
        elif target is not None and e.name.startswith(f".{target}.") and _OLD_TMP_RE.match(e.name):
            stale = True
        if stale:
            with contextlib.suppress(OSError):
                os.unlink(e.path)
                removed.append(Path(e.path))
    return removed


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path in the same folder; rename it onto ``path`` on success.

    On an exception (including Ctrl-C and, via the CLI's handler, SIGTERM) the
    temporary file is removed and ``path`` is untouched; leftovers of killed runs in
    the folder are removed first. ``suffix`` lets writers that append or need an
    extension (``np.savez``, ``savefig``) see it at the end of the name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path.parent, path.name)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}{TMP_TAG}{_host()}-{os.getpid()}-", suffix=suffix,
                               dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600; give the file the usual permissions (umask applies).
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


# -- output paths, checked before any work starts ---------------------------
def _nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _check_writable_folder(path: Path, flag: str) -> None:
    from .errors import ConfigError

    base = _nearest_existing(path.parent if path.parent != path else path)
    if not base.is_dir():
        raise ConfigError(f"{flag} {path}: {base} is a file, not a folder; expected a path in a writable folder")
    if not _can_create_in(base):
        raise ConfigError(f"{flag} {path}: folder {base} is not writable (permission denied or read-only)")


def _can_create_in(folder: Path) -> bool:
    """Can a file be created in ``folder``? os.access is not enough (root, sysfs, some mounts):
    create and remove a probe file."""
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    try:
        fd, probe = tempfile.mkstemp(prefix=".mweight-write-test-", dir=folder)
    except OSError:
        return False
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)
    return True


def check_output_file(path: str | os.PathLike, flag: str = "--out", overwrite: bool = False,
                      suffix: str | None = None) -> Path:
    """Refuse an output file path before any work: a folder, an existing file (unless
    ``overwrite``), a wrong extension, or an unwritable folder. One-line :class:`ConfigError`."""
    from .errors import ConfigError

    path = Path(path)
    if str(path) == "" or path.name in ("", ".", ".."):
        raise ConfigError(f"{flag} {str(path)!r}: expected a file name")
    if suffix and path.suffix != suffix:
        raise ConfigError(f"{flag} {path}: expected a file name ending in {suffix}")
    if path.is_dir():
        raise ConfigError(f"{flag} {path}: is a folder; expected a file name")
    if path.exists() or path.is_symlink():
        if not overwrite:
            raise ConfigError(f"{flag} {path}: file exists; use --overwrite to replace it")
        if not path.is_file():
            raise ConfigError(f"{flag} {path}: exists and is not a regular file")
        if not os.access(path, os.W_OK):
            raise ConfigError(f"{flag} {path}: file is not writable")
    _check_writable_folder(path, flag)
    return path


def check_output_dir(path: str | os.PathLike, flag: str = "--out") -> Path:
    """Refuse an output folder that is a file or cannot be created/written (one line)."""
    from .errors import ConfigError

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{flag} {path}: is a file; expected a folder")
    if path.is_dir():
        if not _can_create_in(path):
            raise ConfigError(f"{flag} {path}: folder is not writable (permission denied or read-only)")
        return path
    _check_writable_folder(path, flag)
    return path


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_yaml(path: str | os.PathLike, obj: Any) -> None:
    import yaml

    write_text(path, yaml.safe_dump(obj, sort_keys=False, default_flow_style=None))


def save_torch(path: str | os.PathLike, obj: Any) -> None:
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def load_torch(path: str | os.PathLike) -> Any:
    """Load a checkpoint safely (``weights_only=True``: tensors and plain containers only).

    A file holding anything else is refused in one line. torch's own message for that
    case recommends ``weights_only=False``; that advice (unpickling code from a file)
    is never shown.
    """
    import pickle

    import torch

    from .errors import MWeightError

    path = Path(path)
    if path.is_dir():
        raise MWeightError(f"{path}: is a folder; expected a mweight checkpoint file")
    if not path.is_file():
        raise MWeightError(f"{path}: file not found (expected a mweight checkpoint)")
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic != b"PK":  # torch.save writes a zip archive
        raise MWeightError(f"{path}: not a mweight checkpoint (expected a file written by torch.save)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise MWeightError(f"{path}: refused: it holds Python objects other than tensors and plain containers "
                           "(mweight loads only its own checkpoints, never arbitrary pickled code)") from None
    except Exception as exc:  # noqa: BLE001 - corrupt or foreign file
        text = str(exc).strip()
        first = text.splitlines()[0] if text else type(exc).__name__
        if "weights_only" in text or "Weights only" in text:
            first = "not a checkpoint written by mweight"
        raise MWeightError(f"{path}: not a readable mweight checkpoint ({first[:200]})") from None
