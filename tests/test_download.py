"""Finding and downloading datasets: the cache, Debian's package, mirrors, and the fallback.

No test here touches an outside address. Downloads go to an HTTP server that the test starts on
127.0.0.1 (port 0: the system picks a free one) and that serves small but real IDX files, each
mirror a path on it that behaves in one way (``/ok/`` serves, ``/404/`` answers 404, ``/bad/``
serves other bytes, ``/cut/`` closes the connection mid-file, ``/hang/`` accepts and never
answers, ``/pause/`` sends half and waits). The source table is passed in: a
:class:`DatasetSource` whose mirrors point at that server and whose digests are those of the
files it serves.
"""

from __future__ import annotations

import collections
import gzip
import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import warnings
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli

from digitnet import cli
from digitnet.data import download, idx, sources
from digitnet.data.datasets import ENV_DATA, DataFallbackWarning, load_dataset
from digitnet.data.sources import ROLES, DatasetSource, FileSource
from digitnet.errors import ConfigError, DataError

FILENAMES = {
    "train-images": "train-images-idx3-ubyte.gz",
    "train-labels": "train-labels-idx1-ubyte.gz",
    "test-images": "t10k-images-idx3-ubyte.gz",
    "test-labels": "t10k-labels-idx1-ubyte.gz",
}
M_TRAIN, M_TEST = 50, 20
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


# -- scaffolding: small real IDX files and a local HTTP server ---------------------------------
def _arrays(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "train-images": rng.integers(0, 256, (M_TRAIN, 28, 28), dtype=np.uint8),
        "train-labels": rng.integers(0, 10, M_TRAIN).astype(np.uint8),
        "test-images": rng.integers(0, 256, (M_TEST, 28, 28), dtype=np.uint8),
        "test-labels": rng.integers(0, 10, M_TEST).astype(np.uint8),
    }


def _gz(data: bytes, **header) -> bytes:
    """gzip bytes; with ``mtime``/``filename`` the header differs, as in Debian's files."""
    buf = io.BytesIO()
    with gzip.GzipFile(
        filename=header.get("filename", ""), mode="wb", fileobj=buf, mtime=header.get("mtime", 0)
    ) as fh:
        fh.write(data)
    return buf.getvalue()


@pytest.fixture(scope="module")
def arrays() -> dict[str, np.ndarray]:
    return _arrays()


@pytest.fixture(scope="module")
def served(arrays) -> dict[str, bytes]:
    """filename -> the .gz bytes the server publishes (and the table's digests describe)."""
    return {FILENAMES[role]: _gz(idx.to_bytes(a)) for role, a in arrays.items()}


@pytest.fixture(scope="module")
def corrupt(arrays) -> dict[str, bytes]:
    """Valid IDX files of the same shapes but other values: they must fail the digest check."""
    other = _arrays(seed=1)
    return {FILENAMES[role]: _gz(idx.to_bytes(a)) for role, a in other.items()}


def make_source(
    served: dict[str, bytes],
    mirrors: list[str],
    name: str = "mnist",
    fallback: str | None = "embedded",
    system_dirs: tuple[str, ...] = (),
) -> DatasetSource:
    """A source table for the files ``served``: their published (.gz) and decompressed digests."""
    files = []
    for role in ROLES:
        gz = served[FILENAMES[role]]
        raw = gzip.decompress(gz)
        files.append(
            FileSource(
                role,
                FILENAMES[role],
                gz_sha256=hashlib.sha256(gz).hexdigest(),
                sha256=hashlib.sha256(raw).hexdigest(),
                size=len(gz),
                shape=idx.parse(raw).shape,
            )
        )
    return DatasetSource(
        name=name,
        title=f"test {name}",
        mirrors=tuple(mirrors),
        files=tuple(files),
        system_dirs=system_dirs,
        system_package="dataset-test" if system_dirs else None,
        fallback=fallback,
    )


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format, *args):  # keep the test output clean
        pass

    def do_GET(self):
        _, mode, filename = self.path.split("/", 2)
        server = self.server
        with server.lock:
            server.requests[mode] += 1
        files = server.corrupt if mode == "bad" else server.files
        if mode == "404" or filename not in files:
            self.send_error(404)
            return
        if mode == "hang":  # accept, read the request, never answer
            server.release.wait(30)
            return
        body = files[filename]
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if mode in ("cut", "pause"):
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            if mode == "pause":
                server.paused.set()
                server.release.wait(30)
            self.close_connection = True
            return  # the server closes the connection: the client gets half the file
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, files: dict[str, bytes], corrupt: dict[str, bytes]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files, self.corrupt = files, corrupt
        self.lock = threading.Lock()
        self.requests: collections.Counter[str] = collections.Counter()
        self.connections = 0
        self.release = threading.Event()  # lets hanging handlers go, so shutdown never waits
        self.paused = threading.Event()

    def verify_request(self, request, client_address):
        with self.lock:
            self.connections += 1
        return True

    def url(self, mode: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{mode}/"

    @property
    def total(self) -> int:
        return sum(self.requests.values())


@pytest.fixture
def server(served, corrupt):
    srv = _Server(served, corrupt)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield srv
    finally:
        srv.release.set()
        srv.shutdown()
        srv.server_close()
        thread.join(5)


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens: connections are refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch) -> Path:
    """Every test gets its own cache, no data folder, no proxy and a 1 s network time-out."""
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.delenv(ENV_DATA, raising=False)
    monkeypatch.setenv(download.ENV_TIMEOUT, "1")
    cache = tmp_path / "cache"
    monkeypatch.setenv(download.ENV_CACHE, str(cache))
    return cache


def _files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


# -- downloads -----------------------------------------------------------------------------------
def test_download_lands_in_cache_verified_and_is_not_fetched_twice(server, served, isolated):
    source = make_source(served, [server.url("ok")])
    d = load_dataset(source, progress=False)
    assert d.name == "mnist" and "(downloaded)" in d.source
    assert d.X_train.shape == (784, M_TRAIN) and d.X_test.shape == (784, M_TEST)
    expected = _arrays()["train-images"][7].reshape(-1) / 255.0
    np.testing.assert_allclose(d.X_train[:, 7], expected, rtol=1e-6)
    assert _files_in(isolated / "mnist") == sorted(FILENAMES.values())  # no temporary left
    for name, body in served.items():
        assert (isolated / "mnist" / name).read_bytes() == body
    assert server.requests["ok"] == 4

    again = load_dataset(source, progress=False)
    assert "(cache)" in again.source and server.total == 4  # the cache answered
    np.testing.assert_array_equal(again.X_train, d.X_train)
    np.testing.assert_array_equal(again.y_test, d.y_test)


def test_cache_dir_argument_and_env(server, served, tmp_path, monkeypatch):
    source = make_source(served, [server.url("ok")])
    elsewhere = tmp_path / "elsewhere"
    monkeypatch.setenv(download.ENV_CACHE, str(elsewhere))
    assert download.cache_dir() == elsewhere
    load_dataset(source, progress=False)
    assert _files_in(elsewhere / "mnist") == sorted(FILENAMES.values())
    explicit = tmp_path / "explicit"
    load_dataset(source, cache_dir=explicit, progress=False)
    assert _files_in(explicit / "mnist") == sorted(FILENAMES.values())
    monkeypatch.delenv(download.ENV_CACHE)
    assert download.cache_dir().name == "digitnet"  # the platform's user cache folder


def test_first_mirror_404_then_second_serves(server, served, isolated):
    source = make_source(served, [server.url("404"), server.url("ok")])
    news: list[str] = []
    found = download.fetch(source, progress=False, report=news.append)
    assert found.how == "download" and set(found.data) == set(ROLES)
    assert server.requests["404"] == 4 and server.requests["ok"] == 4
    assert any("HTTP 404" in line for line in news)
    assert _files_in(isolated / "mnist") == sorted(FILENAMES.values())


def test_digest_mismatch_is_refused_deleted_and_named(server, served, isolated):
    source = make_source(served, [server.url("bad")])
    with pytest.raises(DataError) as info:
        download.fetch(source, progress=False)
    message = info.value.message
    assert "train-images-idx3-ubyte.gz" in message
    assert "does not match the published one" in message and "deleted" in message
    assert _files_in(isolated / "mnist") == []  # nothing kept, not even a temporary file

    # as the training path sees it: one warning naming the file, then the embedded digits
    lines: list[str] = []
    d = load_dataset(source, progress=False, on_warning=lines.append)
    assert d.name == "embedded" and len(lines) == 1
    assert "train-images-idx3-ubyte.gz" in lines[0] and "embedded" in lines[0]


def test_bad_mirror_then_good_one(server, served, isolated):
    source = make_source(served, [server.url("bad"), server.url("ok")])
    found = download.fetch(source, progress=False)
    assert found.how == "download"
    assert server.requests["bad"] == 4 and server.requests["ok"] == 4
    for name, body in served.items():
        assert (isolated / "mnist" / name).read_bytes() == body


def test_connection_closed_mid_file(server, served, isolated):
    only_cut = make_source(served, [server.url("cut")])
    with pytest.raises(DataError, match="closed before the whole file arrived"):
        download.fetch(only_cut, progress=False)
    assert _files_in(isolated / "mnist") == []  # no partial file, under any name

    source = make_source(served, [server.url("cut"), server.url("ok")])
    found = download.fetch(source, progress=False)
    assert found.how == "download" and server.requests["ok"] == 4
    assert _files_in(isolated / "mnist") == sorted(FILENAMES.values())


def test_half_downloaded_file_never_looks_complete(server, served, isolated):
    """While half a file has arrived, it sits under a temporary name; when the connection
    drops, that goes too."""
    # big enough (800 kB) that the half sent spans several of the 64 KiB chunks written to disk
    rng = np.random.default_rng(2)
    big = dict(served)
    big["train-images-idx3-ubyte.gz"] = _gz(
        idx.to_bytes(rng.integers(0, 256, (1000, 28, 28), dtype=np.uint8))
    )
    server.files = big
    source = make_source(big, [server.url("pause")])
    folder = isolated / "mnist"
    errors: list[BaseException] = []

    def run() -> None:
        try:
            download.fetch(source, timeout=10, progress=False)
        except DataError as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        assert server.paused.wait(10), "the server never sent the first half"
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # wait until the first half is on disk
            partial = [p for p in folder.iterdir() if p.stat().st_size > 0]
            if partial:
                break
            time.sleep(0.02)
        assert partial, "no partial download appeared"
        names = _files_in(folder)
        assert "train-images-idx3-ubyte.gz" not in names  # the final name is not there yet
        assert all(not n.endswith(".gz") for n in names)
        size = len(big["train-images-idx3-ubyte.gz"])
        assert 0 < partial[0].stat().st_size <= size // 2
    finally:
        server.release.set()
        thread.join(15)
    assert not thread.is_alive()
    assert len(errors) == 1 and "closed before the whole file arrived" in errors[0].message
    assert _files_in(folder) == []


def test_server_that_never_answers_times_out_then_next_mirror(server, served, isolated):
    source = make_source(served, [server.url("hang"), server.url("ok")])
    news: list[str] = []
    start = time.monotonic()
    found = download.fetch(source, timeout=1, progress=False, report=news.append)
    elapsed = time.monotonic() - start
    assert found.how == "download" and server.requests["ok"] == 4
    # one time-out, after which the silent mirror is not asked again
    assert server.requests["hang"] == 1
    assert any("no answer within 1 s" in line for line in news)
    assert 0.9 < elapsed < 4, elapsed


def test_no_network_falls_back_to_embedded_fast(served, closed_port):
    dead = f"http://127.0.0.1:{closed_port}/"
    source = make_source(served, [dead + "a/", dead + "b/", dead + "c/"])
    lines: list[str] = []
    start = time.monotonic()
    d = load_dataset(source, on_warning=lines.append)
    elapsed = time.monotonic() - start
    assert elapsed < 3, elapsed
    assert d.name == "embedded" and d.n_train == 10000
    assert len(lines) == 1 and "\n" not in lines[0]
    assert "embedded" in lines[0] and "connection refused" in lines[0]


def test_fallback_goes_through_warnings_without_a_callback(served, closed_port):
    source = make_source(served, [f"http://127.0.0.1:{closed_port}/"])
    with pytest.warns(DataFallbackWarning, match="embedded"):
        d = load_dataset(source)
    assert d.name == "embedded"


def test_other_datasets_do_not_fall_back(served, closed_port):
    source = make_source(served, [f"http://127.0.0.1:{closed_port}/"], "kmnist", fallback=None)
    with pytest.raises(DataError, match="none of its mirrors can be reached") as info:
        load_dataset(source)
    assert "--data-dir" in info.value.hint


def test_offline_never_touches_the_network(server, served, isolated):
    source = make_source(served, [server.url("ok")])
    lines: list[str] = []
    d = load_dataset(source, offline=True, on_warning=lines.append)
    assert d.name == "embedded" and len(lines) == 1 and "offline" in lines[0]
    with pytest.raises(DataError, match="offline"):
        download.locate(source, offline=True)
    assert server.connections == 0 and server.total == 0
    # once fetched, offline is fine
    download.fetch(source, progress=False)
    assert load_dataset(source, offline=True).name == "mnist"


def test_damaged_cache_file_is_deleted_and_fetched_again(server, served, isolated):
    source = make_source(served, [server.url("ok")])
    download.fetch(source, progress=False)
    target = isolated / "mnist" / "t10k-labels-idx1-ubyte.gz"
    target.write_bytes(target.read_bytes()[:-5])
    assert download.status(source).state == "failed"
    found = download.locate(source, progress=False)
    assert found.how == "download" and server.requests["ok"] == 5  # only that file again
    assert target.read_bytes() == served[target.name]
    assert download.status(source).state == "verified"


def test_progress_bar_on_request(server, served, capsys):
    source = make_source(served, [server.url("ok")])
    download.fetch(source, progress=True)
    err = capsys.readouterr().err
    assert "train-images-idx3-ubyte.gz" in err and "100%" in err


def test_probe_is_bounded_even_when_name_lookups_hang(monkeypatch):
    """requests' time-outs do not cover name look-ups; the parallel probe bounds them."""

    def hang(*args, **kwargs):
        time.sleep(5)
        raise OSError("never")

    monkeypatch.setattr(download.socket, "create_connection", hang)
    start = time.monotonic()
    result = download.probe(["http://a.invalid/", "http://b.invalid/"], timeout=0.3)
    assert time.monotonic() - start < 1.5
    assert all("no answer within 0.3 s" in why for why in result.values())


def test_timeout_from_environment(monkeypatch):
    monkeypatch.setenv(download.ENV_TIMEOUT, "2.5")
    assert download.resolve_timeout() == 2.5
    assert download.resolve_timeout(0.5) == 0.5
    monkeypatch.delenv(download.ENV_TIMEOUT)
    assert download.resolve_timeout() == download.DEFAULT_TIMEOUT
    monkeypatch.setenv(download.ENV_TIMEOUT, "soon")
    with pytest.raises(ConfigError, match="DIGITNET_TIMEOUT"):
        download.resolve_timeout()


def test_pooch_is_imported_only_for_a_download(server, served, tmp_path):
    source = make_source(served, [server.url("ok")])
    download.fetch(source, cache=tmp_path / "c", progress=False)
    code = f"""
import sys
from digitnet.data.datasets import load_dataset
from tests_source import source
d = load_dataset(source, cache_dir={str(tmp_path / "c")!r})
assert d.name == "mnist", d.name
d = load_dataset(source, cache_dir={str(tmp_path / "empty")!r}, offline=True,
                 on_warning=lambda text: None)
assert d.name == "embedded"
print(sorted(m for m in ("pooch", "requests", "tqdm") if m in sys.modules))
"""
    (tmp_path / "tests_source.py").write_text(
        f"from digitnet.data.sources import DatasetSource, FileSource\nsource = {source!r}\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# -- folders: --data-dir and DIGITNET_DATA -----------------------------------------------------
def _write_folder(folder: Path, served: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, body in served.items():
        (folder / name).write_bytes(body)
    return folder


def test_data_env_is_read_without_network(server, served, tmp_path, monkeypatch):
    folder = _write_folder(tmp_path / "mine", served)
    monkeypatch.setenv(ENV_DATA, str(folder))
    source = make_source(served, [server.url("ok")])
    d = load_dataset(source)
    assert d.name == str(folder) and d.n_train == M_TRAIN
    assert load_dataset().name == str(folder)  # the default too
    assert load_dataset("embedded").name == "embedded"  # asked for by name: the package's
    assert server.connections == 0
    # --data-dir comes first, even before the environment
    other = _write_folder(tmp_path / "other", served)
    assert load_dataset(source, data_dir=other).name == str(other)


def test_mnist10k_read_in_place(mnist10k_dir, monkeypatch):
    monkeypatch.setenv(ENV_DATA, str(mnist10k_dir))
    start = time.perf_counter()
    d = load_dataset("mnist")
    assert time.perf_counter() - start < 5
    assert d.name == str(mnist10k_dir) and d.n_train == 10000 and d.n_test == 10000


# -- Debian's dataset-fashion-mnist ---------------------------------------------------------------
def test_system_package_with_other_gzip_headers_is_used(server, served, arrays, tmp_path):
    """Debian re-gzipped Fashion-MNIST: other .gz bytes, same IDX bytes. Found, checked, used."""
    system = tmp_path / "usr-share-datasets-fashion-mnist"
    system.mkdir()
    for role, a in arrays.items():
        body = _gz(idx.to_bytes(a), mtime=1591315200, filename=FILENAMES[role][:-3])
        assert body != served[FILENAMES[role]]  # the published .gz digest cannot match
        (system / FILENAMES[role]).write_bytes(body)
    source = make_source(
        served, [server.url("ok")], "fashion-mnist", fallback=None, system_dirs=(str(system),)
    )
    d = load_dataset(source)
    assert d.name == "fashion-mnist" and str(system) in d.source and "dataset-test" in d.source
    np.testing.assert_array_equal(d.y_train, arrays["train-labels"])
    assert server.connections == 0  # no download
    assert download.status(source).state == "verified"


def test_tampered_system_package_is_refused(server, served, arrays, tmp_path):
    system = tmp_path / "fashion"
    system.mkdir()
    for role, a in arrays.items():
        a = a.copy()
        if role == "test-labels":
            a[0] = (a[0] + 1) % 10  # one label changed: still a valid IDX file
        body = _gz(idx.to_bytes(a), mtime=1591315200, filename=FILENAMES[role][:-3])
        (system / FILENAMES[role]).write_bytes(body)
    source = make_source(
        served, [server.url("ok")], "fashion-mnist", fallback=None, system_dirs=(str(system),)
    )
    st = download.status(source)
    assert st.state == "failed" and "t10k-labels-idx1-ubyte.gz" in st.detail
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz fails its check"):
        load_dataset(source, offline=True)
    # online, the checked download replaces it (into the cache; the system folder is left alone)
    d = load_dataset(source, progress=False)
    assert "(downloaded)" in d.source and server.requests["ok"] == 4


@pytest.mark.skipif(
    not (DEBIAN_FASHION / "train-images-idx3-ubyte.gz").is_file(),
    reason=f"Debian's dataset-fashion-mnist is not installed ({DEBIAN_FASHION} is absent; "
    "apt-get install dataset-fashion-mnist)",
)
def test_debian_fashion_mnist_for_real(tmp_path):
    for fs in sources.FASHION_MNIST.files:
        path = DEBIAN_FASHION / fs.filename
        assert hashlib.sha256(path.read_bytes()).hexdigest() != fs.gz_sha256  # rewritten header
        download.verify_file(path, fs)  # ... and the same data
    start = time.perf_counter()
    d = load_dataset("fashion-mnist", offline=True)
    seconds = time.perf_counter() - start
    assert d.name == "fashion-mnist" and str(DEBIAN_FASHION) in d.source
    assert d.X_train.shape == (784, 60000) and d.X_test.shape == (784, 10000)
    assert d.classes[0] == "T-shirt/top" and seconds < 10

    # and a small network trains on it end to end, from the command line
    out = tmp_path / "run"
    r = run_cli(
        *["train", "--dataset", "fashion-mnist", "--offline", "--layers", "784-32-10"],
        *["--epochs", "1", "--seed", "0", "--out", str(out)],
    )
    assert r.returncode == 0, r.stderr
    m = json.loads((out / "metrics.json").read_text())
    assert m["dataset"] == "fashion-mnist" and m["n_test"] == 10000
    assert m["test_accuracy"] > 0.6


# -- the command line --------------------------------------------------------------------------
def test_cli_offline_mnist_one_warning_line_and_metrics_say_embedded(tmp_path, monkeypatch):
    out = tmp_path / "run"
    monkeypatch.setenv(download.ENV_CACHE, str(tmp_path / "empty-cache"))
    monkeypatch.delenv(ENV_DATA, raising=False)
    start = time.monotonic()
    r = run_cli(
        *["train", "--dataset", "mnist", "--offline", "--layers", "784-16-10", "--epochs", "1"],
        *["--out", str(out)],
    )
    assert r.returncode == 0, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: ") and "embedded" in lines[0]
    assert json.loads((out / "metrics.json").read_text())["dataset"] == "embedded"
    assert time.monotonic() - start < 60


def test_cli_train_mnist_without_network_falls_back(served, closed_port, tmp_path, capsys):
    dead = make_source(served, [f"http://127.0.0.1:{closed_port}/"])
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(sources.DOWNLOADABLE, "mnist", dead)
        start = time.monotonic()
        status = cli.main(
            [
                "train",
                "--dataset",
                "mnist",
                "--layers",
                "784-8-10",
                "--epochs",
                "1",
                "--out",
                str(tmp_path),
            ]
        )
        elapsed = time.monotonic() - start
    captured = capsys.readouterr()
    assert status == 0
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: ") and "embedded" in lines[0]
    assert "data: embedded" in captured.out
    assert json.loads((tmp_path / "metrics.json").read_text())["dataset"] == "embedded"
    assert elapsed < 30


def test_cli_data_fetch_and_list(server, served, closed_port, capsys, monkeypatch):
    monkeypatch.setitem(sources.DOWNLOADABLE, "mnist", make_source(served, [server.url("ok")]))
    assert cli.main(["data", "list"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("mnist "))
    assert "not present" in row and "127.0.0.1" in row
    assert "embedded" in out and "kmnist" in out and "fashion-mnist" in out

    assert cli.main(["data", "fetch", "mnist"]) == 0
    out = capsys.readouterr().out
    assert "downloading" in out and "mnist: downloaded and verified" in out
    assert cli.main(["data", "fetch", "mnist"]) == 0
    assert "already in the cache" in capsys.readouterr().out
    assert cli.main(["data", "list"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("mnist "))
    assert "present, verified" in row

    assert cli.main(["data", "fetch", "embedded"]) == 0
    assert "nothing to fetch" in capsys.readouterr().out

    dead = make_source(served, [f"http://127.0.0.1:{closed_port}/"], "kmnist", fallback=None)
    monkeypatch.setitem(sources.DOWNLOADABLE, "kmnist", dead)
    assert cli.main(["data", "fetch", "kmnist"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and err[0].startswith("error: ") and err[1].startswith("hint: ")
    assert "connection refused" in err[0]


def test_cli_stays_light_with_data_options():
    code = (
        "import sys, digitnet.cli as c; c.build_parser().parse_args(['data', 'list']); "
        "print(sorted(m for m in ('numpy', 'pooch', 'requests', 'platformdirs') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_warnings_module_untouched_by_successful_loads(server, served):
    source = make_source(served, [server.url("ok")])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_dataset(source, progress=False)
        load_dataset(replace(source), progress=False)
