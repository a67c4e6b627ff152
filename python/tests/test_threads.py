"""Parallel regions of the engine (its persistent worker threads): results do not depend on
the thread count, concurrent Python threads get correct results, and a forked child process
(multiprocessing's default on Linux) can use the engine with several threads — the child
does not wait for the parent's worker threads, which do not exist in it."""

import os
import signal
import threading

import numpy as np
import pytest

import bgad


@pytest.fixture
def two_threads():
    old = bgad.get_num_threads()
    bgad.set_num_threads(2)
    yield
    bgad.set_num_threads(old)


def _flow_and_data(dim=24, n=3000, seed=0):
    rng = np.random.default_rng(seed)
    pe = bgad.positional_encoding(16, 16)
    idx = rng.integers(0, 256, size=n)
    x = rng.normal(size=(n, dim)).astype(np.float32)
    return bgad.Flow(dim, seed=seed), x, pe, idx


def test_log_prob_same_for_one_and_two_threads():
    flow, x, pe, idx = _flow_and_data()
    old = bgad.get_num_threads()
    try:
        bgad.set_num_threads(1)
        one = flow.log_prob(x, pe, cond_index=idx)
        bgad.set_num_threads(2)
        two = flow.log_prob(x, pe, cond_index=idx)
    finally:
        bgad.set_num_threads(old)
    np.testing.assert_allclose(two, one, rtol=0, atol=1e-5)


def test_concurrent_python_threads_get_their_own_results(two_threads):
    flows = [_flow_and_data(seed=s) for s in range(3)]
    expected = [f.log_prob(x, pe, cond_index=i) for f, x, pe, i in flows]
    results = [None] * len(flows)
    errors = []

    def work(k):
        try:
            f, x, pe, i = flows[k]
            for _ in range(20):
                results[k] = f.log_prob(x, pe, cond_index=i)
                np.testing.assert_allclose(results[k], expected[k], rtol=0, atol=1e-5)
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(flows))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert all(not t.is_alive() for t in threads)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_uses_worker_threads(two_threads):
    flow, x, pe, idx = _flow_and_data()
    before = flow.log_prob(x, pe, cond_index=idx)  # the parent's worker threads now exist
    pid = os.fork()
    if pid == 0:  # child: must not hang waiting for the parent's threads
        code = 1
        try:
            signal.alarm(60)
            again = flow.log_prob(x, pe, cond_index=idx)
            flow.train_step(x, pe, 1e-3, cond_index=idx)
            code = 0 if np.allclose(again, before, atol=1e-5) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status), f"child ended by signal {os.WTERMSIG(status) if os.WIFSIGNALED(status) else '?'}"
    assert os.WEXITSTATUS(status) == 0


def test_gemm_counters_count_the_engine_products():
    flow, x, pe, idx = _flow_and_data(n=600)
    bgad.gemm_counters(reset=True)
    assert bgad.gemm_counters() == (0, 0.0)
    flow.log_prob(x, pe, cond_index=idx)
    calls, seconds = bgad.gemm_counters(reset=True)
    # 8 blocks, each: condition share (cached per model), two subnet layers, the rotation.
    assert calls >= 8 * 3 and seconds > 0
    assert bgad.gemm_counters()[0] == 0
