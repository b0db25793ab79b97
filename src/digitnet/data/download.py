"""Getting a dataset's four files onto this machine: the cache, system packages, the mirrors.

:func:`locate` finds a dataset's files, in this order, and returns their verified IDX bytes:

1. **The cache**: ``<cache>/<name>/``, where ``<cache>`` is ``$DIGITNET_CACHE`` or the platform's
   user cache folder (``~/.cache/digitnet`` on Linux). It holds files downloaded earlier. They are
   checked again on every load (hashing 10 MB takes a few hundredths of a second); a cached file
   that fails is deleted and fetched again.
2. **System folders**: Debian's ``dataset-fashion-mnist`` package puts Fashion-MNIST in
   ``/usr/share/datasets/fashion-mnist/``. Debian re-gzipped those files, so their ``.gz``
   digests differ from the published ones: they are checked by the digests of their decompressed
   bytes instead, never skipped.
3. **Download** with `pooch <https://www.fatiando.org/pooch/>`_ into the cache, trying the
   mirrors in turn. pooch streams each file into a temporary file beside its final name, checks
   its SHA-256 against the published digest, and only then renames it, so an interrupted or
   corrupt download never looks complete; a file that fails its check is deleted. pooch (and
   requests under it) is imported only when a download actually happens.

(``--data-dir`` / ``$DIGITNET_DATA`` come before all of these; :func:`digitnet.data.datasets.
load_dataset` handles them, and the fallback to the embedded digits.)

A machine without a network must not wait long. Before downloading, every mirror's host is
probed at once (a TCP connection, in parallel threads, for at most ``timeout`` seconds in all:
that bounds name look-ups too, which requests' own time-outs do not cover). Mirrors that cannot be
reached are skipped, so with no network the answer comes at once, and with a network that drops
packets after at most one time-out. Each request then has a connect and a read time-out of
``timeout`` seconds (``$DIGITNET_TIMEOUT``, default 10), so a server that accepts a connection
and never answers costs one time-out and the next mirror is tried.

The library never prints: progress bars (tqdm, when stderr is a terminal) aside, news goes to the
``report`` callback that the command line passes.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import socket
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from digitnet.data.sources import DOWNLOADABLE, ROLES, DatasetSource, FileSource
from digitnet.errors import ConfigError, DataError
from digitnet.files import RefusedFileError, read_regular

#: Environment variables: the cache folder and the network time-out in seconds. (The data folder,
#: ``DIGITNET_DATA``, is :data:`digitnet.data.datasets.ENV_DATA`.)
ENV_CACHE = "DIGITNET_CACHE"
ENV_TIMEOUT = "DIGITNET_TIMEOUT"
DEFAULT_TIMEOUT = 10.0
_CHUNK = 64 * 1024
_GZIP_MAGIC = b"\x1f\x8b"

Report = Callable[[str], None]


# -- where files live ----------------------------------------------------------------------------
def cache_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The cache folder: ``override``, else ``$DIGITNET_CACHE``, else the user cache folder.

    Each dataset gets a subfolder named after it (``<cache>/mnist/``).
    """
    if override:
        return Path(override).expanduser()
    env = os.environ.get(ENV_CACHE)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("digitnet", appauthor=False))


def resolve_timeout(timeout: float | None = None) -> float:
    """Seconds to wait for a connection or for the next bytes: the argument, else
    ``$DIGITNET_TIMEOUT``, else 10."""
    if timeout is None:
        text = os.environ.get(ENV_TIMEOUT)
        if not text:
            return DEFAULT_TIMEOUT
        try:
            timeout = float(text)
        except ValueError:
            timeout = -1.0
        if not 0 < timeout < float("inf"):
            raise ConfigError(
                f"{ENV_TIMEOUT} must be a positive number of seconds; got {text!r}.",
                f"unset {ENV_TIMEOUT} to use {DEFAULT_TIMEOUT:g} s",
            )
    if not 0 < timeout < float("inf"):
        raise ConfigError(f"The network time-out must be a positive number; got {timeout!r}.")
    return float(timeout)


def get_source(name: str | DatasetSource) -> DatasetSource:
    """The table entry of a downloadable dataset (a :class:`DatasetSource` passes through)."""
    if isinstance(name, DatasetSource):
        return name
    try:
        return DOWNLOADABLE[name]
    except KeyError:
        known = ", ".join(DOWNLOADABLE)
        raise DataError(
            f"Unknown dataset {name!r}; digitnet can fetch {known}, and knows 'embedded'.",
        ) from None


# -- checking a file -----------------------------------------------------------------------------
@dataclass
class Found:
    """A dataset whose four files were found and verified.

    ``data`` maps each role to its decompressed IDX bytes; ``folder`` is where the files are;
    ``how`` says which source it was (``cache``, ``system``, ``download``) and ``where`` says it
    in words, for ``Dataset.source`` and the command line.
    """

    source: DatasetSource
    folder: Path
    how: str
    where: str
    data: dict[str, bytes] = field(repr=False)


def published_size(fs: FileSource) -> int | None:
    """The IDX bytes of a known file once decompressed (its header and its values, one byte
    each), where the table knows its shape."""
    if fs.shape is None:
        return None
    return 4 + 4 * len(fs.shape) + math.prod(fs.shape)


def _decompress(raw: bytes, path: Path, fs: FileSource | None = None) -> bytes:
    """The IDX bytes of ``raw``, gunzipped in memory bounded by the IDX header and, for a
    known file, its published size (:func:`digitnet.data.idx.gunzip`)."""
    if raw[:2] != _GZIP_MAGIC:
        return raw
    from digitnet.data.idx import gunzip

    return bytes(gunzip(raw, str(path), None if fs is None else published_size(fs)))


def verify_file(path: Path, fs: FileSource) -> bytes:
    """The decompressed IDX bytes of ``path``, once they are proved to be ``fs``.

    A file passes when its bytes have the published ``.gz`` digest, or, where the table knows it,
    when its decompressed bytes have the published IDX digest (a re-gzipped or gunzipped copy).
    Otherwise a :class:`DataError` names the file and both digests.
    """
    try:
        raw = read_regular(path, "a data file")
    except RefusedFileError as exc:
        raise DataError(f"{path}: {exc.message}.", exc.hint) from None
    data = _decompress(raw, path, fs)  # bounded: before any digest is computed on it
    gz_ok = hashlib.sha256(raw).hexdigest() == fs.gz_sha256
    if gz_ok:
        return data
    if fs.sha256 is not None:
        got = hashlib.sha256(data).hexdigest()
        if got == fs.sha256:
            return data
        raise DataError(
            f"{path}: its decompressed contents do not match the published SHA-256 digest of "
            f"{fs.filename} ({got[:16]}... instead of {fs.sha256[:16]}...).",
            "the file is corrupt or not the expected one: reinstall or fetch it again",
        )
    raise DataError(
        f"{path}: does not match the published SHA-256 digest of {fs.filename} "
        f"({hashlib.sha256(raw).hexdigest()[:16]}... instead of {fs.gz_sha256[:16]}...).",
        "the file is corrupt or not the expected one: fetch it again",
    )


def _find_file(folder: Path, fs: FileSource) -> Path | None:
    """The copy of ``fs`` in ``folder``: its published name, or that name without ``.gz``."""
    names = [fs.filename]
    if fs.filename.endswith(".gz"):
        names.append(fs.filename[:-3])
    for name in names:
        if (folder / name).is_file():
            return folder / name
    return None


@dataclass
class _FolderCheck:
    verified: dict[str, bytes]
    missing: list[FileSource]
    failed: dict[str, tuple[Path, DataError]]  # role -> (path, why)

    @property
    def complete(self) -> bool:
        return not self.missing and not self.failed


def _check_folder(folder: Path, source: DatasetSource) -> _FolderCheck:
    result = _FolderCheck({}, [], {})
    for fs in source.files:
        path = _find_file(folder, fs)
        if path is None:
            result.missing.append(fs)
            continue
        try:
            result.verified[fs.role] = verify_file(path, fs)
        except DataError as exc:
            result.failed[fs.role] = (path, exc)
    return result


# -- what `digitnet data list` shows ---------------------------------------------------------
@dataclass
class Status:
    """Where a dataset would come from now, and whether it is there and verified.

    ``state`` is ``verified`` (all four files present and checked), ``partial`` (some files
    present; ``detail`` says how many), ``failed`` (a file present but failing its check;
    ``detail`` names the files), or ``absent`` (``where`` then says where it would download from).
    """

    name: str
    state: str
    where: str
    detail: str = ""


def _human(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


def _download_where(source: DatasetSource) -> str:
    if not source.mirrors:
        return "no mirror known"
    host = urlsplit(source.mirrors[0]).hostname or source.mirrors[0]
    more = len(source.mirrors) - 1
    extra = f" (+{more} mirror{'s' if more > 1 else ''})" if more else ""
    size = f", {_human(source.download_size)}" if source.download_size else ""
    return f"download from {host}{extra}{size}"


def status(name: str | DatasetSource, cache: str | os.PathLike[str] | None = None) -> Status:
    """Check, without touching the network or deleting anything, where ``name`` stands.

    The first place holding all four files verified wins, as in :func:`locate`; otherwise a
    failing file is reported before a partial copy, and with nothing at all, the download.
    """
    source = get_source(name)
    places = [(f"cache: {cache_dir(cache) / source.name}", cache_dir(cache) / source.name)]
    package = f"{source.system_package} package" if source.system_package else "system folder"
    places += [(f"{package}: {d}", Path(d)) for d in source.system_dirs]
    worst: Status | None = None
    for label, path in places:
        if not path.is_dir():
            continue
        check = _check_folder(path, source)
        if check.complete:
            return Status(source.name, "verified", label)
        if check.failed and (worst is None or worst.state != "failed"):
            bad = ", ".join(p.name for p, _ in check.failed.values())
            worst = Status(source.name, "failed", label, bad)
        elif check.verified and worst is None:
            n = len(check.verified)
            worst = Status(source.name, "partial", label, f"{n} of {len(ROLES)} files")
    if worst is not None:
        return worst
    return Status(source.name, "absent", _download_where(source))


# -- finding a dataset -----------------------------------------------------------------------------
def locate(
    name: str | DatasetSource,
    *,
    cache: str | os.PathLike[str] | None = None,
    offline: bool = False,
    timeout: float | None = None,
    progress: bool | None = None,
    report: Report | None = None,
) -> Found:
    """The verified files of a dataset: from the cache, a system folder, or a download.

    ``offline`` forbids the download. ``timeout`` (seconds) bounds each network wait;
    ``progress`` shows a progress bar per file (default: when stderr is a terminal); ``report``
    receives a line of news per download attempt. Raises :class:`DataError` saying what was
    tried and why each failed.
    """
    source = get_source(name)
    folder = cache_dir(cache) / source.name
    notes: list[str] = []

    # 1. the cache
    cached = _check_folder(folder, source) if folder.is_dir() else None
    if cached is not None and cached.complete:
        return Found(source, folder, "cache", f"{folder} (cache)", cached.verified)
    if cached is not None:
        for path, _exc in cached.failed.values():
            path.unlink(missing_ok=True)  # our own copy: fetch it again
            notes.append(f"deleted {path} from the cache: it failed its check")

    # 2. system folders (Debian's dataset-fashion-mnist)
    for d in source.system_dirs:
        system = Path(d)
        if not system.is_dir():
            continue
        check = _check_folder(system, source)
        if check.complete:
            package = f"{source.system_package} package" if source.system_package else "system"
            return Found(source, system, "system", f"{system} ({package})", check.verified)
        for path, _exc in check.failed.values():
            notes.append(f"{path} fails its check (its data differ from the published digest)")
        for fs in check.missing:
            notes.append(f"{system / fs.filename} is missing")

    # 3. download into the cache what the cache lacks
    have = cached.verified if cached is not None else {}
    wanted = [fs for fs in source.files if fs.role not in have]
    if offline:
        raise DataError(
            f"{source.title} is not in the cache ({folder}) and offline mode forbids a download"
            + (f"; {'; '.join(notes)}" if notes else "")
            + ".",
            _hint(source, offline=True),
        )
    data = dict(have)
    got = _download(source, folder, wanted, resolve_timeout(timeout), progress, report, notes)
    data.update(got)
    return Found(source, folder, "download", f"{folder} (downloaded)", data)


def fetch(
    name: str | DatasetSource,
    *,
    cache: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
    progress: bool | None = None,
    report: Report | None = None,
) -> Found:
    """Make sure a dataset is on this machine, downloading it into the cache if need be."""
    return locate(name, cache=cache, timeout=timeout, progress=progress, report=report)


def _hint(source: DatasetSource, offline: bool = False) -> str:
    if offline:
        first = f"run 'digitnet data fetch {source.name}' once while online"
    else:
        first = f"check the network connection (or raise {ENV_TIMEOUT} for a slow one)"
    package = f", (re)install Debian's {source.system_package}" if source.system_package else ""
    return f"{first}{package}, or pass --data-dir DIR with the four IDX files"


# -- the network -----------------------------------------------------------------------------------
def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.hostname or "", port


def _uses_proxy(url: str) -> bool:
    scheme = urlsplit(url).scheme
    proxies = urllib.request.getproxies()
    host, _ = _host_port(url)
    return scheme in proxies and not urllib.request.proxy_bypass(host)


def probe(mirrors: tuple[str, ...] | list[str], timeout: float) -> dict[str, str | None]:
    """Try a TCP connection to every mirror's host at once: mirror -> None, or why it failed.

    All of it, name look-ups included, ends within ``timeout`` seconds, whatever the network
    does: a look-up still hanging then counts as a failure (its daemon thread is left to finish
    on its own). Mirrors reached through a proxy are not probed.
    """
    results: dict[str, str | None] = {}

    def attempt(mirror: str) -> None:
        host, port = _host_port(mirror)
        try:
            socket.create_connection((host, port), timeout=timeout).close()
        except socket.gaierror:
            results[mirror] = "the host name does not resolve"
        except TimeoutError:
            results[mirror] = f"no connection within {timeout:g} s"
        except OSError as exc:
            results[mirror] = f"cannot connect ({(exc.strerror or str(exc)).lower()})"
        else:
            results[mirror] = None

    threads = []
    for mirror in mirrors:
        if _uses_proxy(mirror):
            results[mirror] = None
            continue
        thread = threading.Thread(target=attempt, args=(mirror,), daemon=True)
        thread.start()
        threads.append((mirror, thread))
    deadline = time.monotonic() + timeout
    for mirror, thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
        if mirror not in results:
            results[mirror] = f"no answer within {timeout:g} s (name look-up or connection)"
    return {m: results[m] for m in mirrors}


class _MirrorError(Exception):
    """One file from one mirror failed; ``dead`` when the mirror should not be tried again."""

    def __init__(self, reason: str, dead: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.dead = dead


def _short(exc: BaseException) -> str:
    """A readable reason out of requests' long exception texts."""
    text = str(exc)
    match = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    if match:
        return match.group(1).strip().rstrip(".").lower()
    if "timed out" in text.lower():
        return "timed out"
    return text.split(" (Caused by")[0][:120] or type(exc).__name__


@contextmanager
def _quiet_pooch() -> Iterator[Any]:
    """pooch logs each download at INFO level to stderr; the library must not print."""
    import pooch

    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield pooch
    finally:
        logger.setLevel(level)


def _progress_bar(fs: FileSource, progress: bool | None) -> Any:
    if progress is None:
        progress = bool(getattr(sys.stderr, "isatty", lambda: False)())
    if not progress:
        return False
    from tqdm import tqdm

    return tqdm(
        desc=fs.filename,
        total=fs.size,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        ncols=79,
        leave=True,
        file=sys.stderr,
    )


def _retrieve(url: str, fs: FileSource, folder: Path, timeout: float, progress: Any) -> None:
    """Download one file with pooch, checked against its published digest; or _MirrorError."""
    import requests

    with _quiet_pooch() as pooch:
        downloader = pooch.HTTPDownloader(
            progressbar=progress, chunk_size=_CHUNK, timeout=(timeout, timeout)
        )
        try:
            pooch.retrieve(
                url,
                known_hash=f"sha256:{fs.gz_sha256}",
                fname=fs.filename,
                path=folder,
                downloader=downloader,
            )
        except requests.exceptions.HTTPError as exc:
            response = exc.response
            code = f"HTTP {response.status_code} {response.reason}" if response is not None else ""
            raise _MirrorError(code or _short(exc), dead=False) from None
        except requests.exceptions.ConnectTimeout:
            raise _MirrorError(f"no connection within {timeout:g} s", dead=True) from None
        except requests.exceptions.ReadTimeout:
            raise _MirrorError(f"no answer within {timeout:g} s", dead=True) from None
        except requests.exceptions.ChunkedEncodingError:
            raise _MirrorError(
                "the connection closed before the whole file arrived (the partial download "
                "was deleted)",
                dead=False,
            ) from None
        except requests.exceptions.ConnectionError as exc:
            raise _MirrorError(_short(exc), dead=True) from None
        except requests.exceptions.RequestException as exc:
            raise _MirrorError(_short(exc), dead=False) from None
        except ValueError as exc:
            if "hash" not in str(exc).lower():
                raise
            got = re.search(r"but got ([0-9a-f]{64})", str(exc))
            got_text = f"{got.group(1)[:16]}..." if got else "another digest"
            raise _MirrorError(
                f"its SHA-256 digest ({got_text}) does not match the published one "
                f"({fs.gz_sha256[:16]}...): the download was refused and deleted",
                dead=False,
            ) from None
        except OSError as exc:
            raise DataError(
                f"{folder}: cannot write the download there ({exc.strerror or exc}).",
                f"set {ENV_CACHE} to a folder you can write to",
            ) from None
        finally:
            if progress:
                progress.close()


def _download(
    source: DatasetSource,
    folder: Path,
    wanted: list[FileSource],
    timeout: float,
    progress: bool | None,
    report: Report | None,
    notes: list[str],
) -> dict[str, bytes]:
    say = report or (lambda _line: None)
    if not wanted:
        return {}
    reachable = probe(source.mirrors, timeout)
    down = {m: why for m, why in reachable.items() if why is not None}
    if len(down) == len(source.mirrors):
        by_reason: dict[str, list[str]] = {}
        for mirror, why in down.items():
            by_reason.setdefault(why, []).append(_host_port(mirror)[0])
        reasons = "; ".join(f"{', '.join(hosts)}: {why}" for why, hosts in by_reason.items())
        raise DataError(
            f"{source.title} is not in the cache ({folder}) and none of its mirrors can be "
            f"reached ({reasons})" + (f"; {'; '.join(notes)}" if notes else "") + ".",
            _hint(source),
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(
            f"{folder}: cannot create the cache folder ({exc.strerror or exc}).",
            f"set {ENV_CACHE} to a folder you can write to",
        ) from None
    dead = dict(down)  # mirror -> why it is not tried again
    data: dict[str, bytes] = {}
    for fs in wanted:
        failures: list[str] = []
        for mirror in source.mirrors:
            if mirror in dead:
                failures.append(f"{_host_port(mirror)[0]}: {dead[mirror]}")
                continue
            url = mirror + fs.filename
            size = f" ({_human(fs.size)})" if fs.size else ""
            say(f"downloading {url}{size}")
            try:
                _retrieve(url, fs, folder, timeout, _progress_bar(fs, progress))
            except _MirrorError as exc:
                say(f"{url}: {exc.reason}")
                failures.append(f"{url}: {exc.reason}")
                if exc.dead:
                    dead[mirror] = exc.reason
                continue
            data[fs.role] = verify_file(folder / fs.filename, fs)
            break
        else:
            why = "; ".join(failures + notes)
            raise DataError(
                f"{source.title}: could not download {fs.filename} ({why}).", _hint(source)
            )
    return data
