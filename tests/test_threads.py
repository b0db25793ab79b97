"""train/threads.py: BLAS threads by the size of the products and the CPUs free."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from digitnet import Network
from digitnet.train import threads
from digitnet.train.threads import SMALL_PRODUCT, BlasThreads, choose, largest_product


def _blas_threads() -> list[int]:
    return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]


@pytest.mark.parametrize(
    "n_cpus, others, most, expected",
    [
        (2, 0.0, 2, 2),  # a quiet machine: both
        (2, 0.25, 2, 2),  # a little background work takes no CPU
        (2, 0.5, 2, 1),  # a neighbour on half a CPU or more takes it
        (2, 1.0, 2, 1),  # the busy neighbour of issue 15
        (2, 2.0, 2, 1),  # everything taken: still one thread
        (8, 3.0, 8, 5),
        (8, 0.0, 4, 4),  # never more than BLAS was allowed
    ],
)
def test_one_thread_per_free_cpu(n_cpus, others, most, expected):
    assert choose(n_cpus, others, most) == expected


def test_largest_product_is_a_step_s_biggest_matmul():
    net = Network.from_spec("784-16-16-10", seed=0)
    assert largest_product(net, 32) == 16 * 784 * 32 < SMALL_PRODUCT  # seed-16-16: one thread
    assert largest_product(Network.from_spec("784-512-256-10"), 128) >= SMALL_PRODUCT


class FakeBlas:
    """A BLAS library as threadpoolctl controls it, that records the thread counts set."""

    filepath = "fake"

    def __init__(self, threads: int = 2) -> None:
        self.threads, self.set_to = threads, []

    def get_num_threads(self) -> int:
        return self.threads

    def set_num_threads(self, n: int) -> None:
        self.set_to.append(n)
        self.threads = n


def test_busy_cpus_move_training_to_one_thread(monkeypatch):
    """With the CPU accounts of /proc/stat faked: quiet -> most threads, busy -> one."""
    clock = {"t": 100.0, "busy": 0.0, "own": 0.0}
    monkeypatch.setattr(threads.time, "perf_counter", lambda: clock["t"])
    monkeypatch.setattr(threads, "_cpu_busy", lambda cpus: clock["busy"])
    monkeypatch.setattr(threads, "_own_cpu", lambda: clock["own"])
    blas = FakeBlas(2)
    monkeypatch.setattr(threads, "numpy_blas", lambda: [blas])
    bt = BlasThreads(SMALL_PRODUCT)
    bt.cpus = {0, 1}
    with bt:
        assert bt.threads == 2  # large products start on every thread BLAS allows
        clock["t"] += 0.25
        clock["busy"] += 1.0  # 0.25 s: we used 0.5 CPU-s, others 0.5 (2 CPUs' worth)
        clock["own"] += 0.5
        bt.check()
        assert bt.threads == 1  # a busy neighbour: one thread from the first look on
        clock["t"] += 0.5
        bt.check()  # under CHECK_S since the last look: no look
        assert bt.threads == 1
        clock["t"] += 1.5
        clock["busy"] += 1.5  # 1.5 s: we used 1.5 CPU-s, others nothing
        clock["own"] += 1.5
        bt.check()
        assert bt.threads == 2  # quiet again
    assert blas.set_to == [1, 2, 2]  # and back to what BLAS had before


def test_small_products_stay_on_one_thread(monkeypatch):
    monkeypatch.setattr(threads, "_cpu_busy", lambda cpus: pytest.fail("no look needed"))
    blas = FakeBlas(2)
    monkeypatch.setattr(threads, "numpy_blas", lambda: [blas])
    with BlasThreads(SMALL_PRODUCT - 1) as bt:
        bt.check()
        assert bt.threads == blas.threads == 1
    assert blas.threads == 2


def test_training_keeps_the_user_s_limit_and_restores_it(rng):
    """The tests run with OPENBLAS_NUM_THREADS=1 (conftest): training never goes above it."""
    before = _blas_threads()
    seen: list[list[int]] = []
    X = rng.random((784, 512), dtype=np.float32)
    y = rng.integers(0, 10, 512)
    net = Network.from_spec("784-512-10", seed=0)
    net.fit(X, y, epochs=1, batch_size=128, on_batch=[lambda *_: seen.append(_blas_threads())])
    assert seen and all(n <= before for n in seen)
    assert _blas_threads() == before
