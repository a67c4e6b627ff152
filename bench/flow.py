"""Benchmark of the conditional flow: engine vs FrEIA 0.2 + PyTorch, same run.

For each level of the built-in backbone — C = 24 on a 64×64 grid, C = 40 on 32×32,
C = 112 on 16×16 — and C = 200 on 16×16, with 8 blocks and the 128-d positional condition:

* training: ms per step (forward, phase-1 loss, backward, Adam) on 4096 vectors drawn from
  random positions of the grid;
* inference: vectors/s of log p over whole images (all H·W positions, 32768 vectors);
* the machine's cblas_sgemm GFLOP/s (OpenBLAS, the library libbgad links), measured in this
  run, and the GEMM FLOPs the engine executes per training step as a fraction of it — over
  the step's time, and over the time of its sgemm calls alone (``bgad.gemm_counters``: the
  most any step could reach with these products).

When ``torch`` and ``FrEIA`` (0.2) are importable, the same figures are measured for
FrEIA's ``AllInOneBlock`` × 8 in PyTorch and printed as ratios. Both sides use 2 threads,
run the same model (the FrEIA parameters are loaded into the engine; ``Δlog p`` is the
largest difference of their log p), and are timed alternately; each figure is the best of
the repeats (see ``interleaved``). A training timing covers 4 consecutive steps (steady
state, as in a training loop), and so does the sgemm reference (4 calls): a lone call
after a pause runs both OpenBLAS and PyTorch below their steady rate.

Run:  PYTHONPATH=python python3 bench/flow.py  [--quick]
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import time

import numpy as np

import bgad

LEVELS = [(24, 64, 64), (40, 32, 32), (112, 16, 16), (200, 16, 16)]
CHUNK = 4096
INFER = 32768
THREADS = 2


def best_time(fn, repeats, warmup=2):
    """Best seconds of `fn` over `repeats` calls after `warmup` calls."""
    return interleaved([fn], repeats, warmup)[0]


def sgemm_call():
    """(call, flops): one cblas_sgemm 1024³ (row-major) of the system OpenBLAS — the library
    libbgad links — with THREADS threads."""
    lib = ctypes.CDLL(ctypes.util.find_library("openblas") or "libopenblas.so.0")
    n = 1024
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    b = np.random.default_rng(1).random((n, n), dtype=np.float32)
    c = np.zeros((n, n), np.float32)
    fp = ctypes.POINTER(ctypes.c_float)
    lib.cblas_sgemm.argtypes = [ctypes.c_int] * 6 + [ctypes.c_float, fp, ctypes.c_int, fp, ctypes.c_int,
                                                     ctypes.c_float, fp, ctypes.c_int]
    args = (101, 111, 111, n, n, n, 1.0, a.ctypes.data_as(fp), n, b.ctypes.data_as(fp), n, 0.0,
            c.ctypes.data_as(fp), n)

    def call():
        lib.cblas_sgemm(*args)
        return c  # keeps the operands alive

    return call, 2 * n ** 3


def corename():
    lib = ctypes.CDLL(ctypes.util.find_library("openblas") or "libopenblas.so.0")
    lib.openblas_get_corename.restype = ctypes.c_char_p
    return lib.openblas_get_corename().decode()


def engine_flops_per_step(dim, grid, n=CHUNK, blocks=8, cond=128):
    """GEMM FLOPs the engine executes in one training step (forward + backward) on n vectors.

    The positional encoding is separable (first half: column, second half: row), which the
    engine detects, so the condition's share of each first layer and its weight gradient
    are products over the grid's H + W rows and columns of half the condition each."""
    l1, l2 = dim - dim // 2, dim // 2
    inn, hid, out = l1 + cond, 2 * (l1 + cond), 2 * l2
    cond_rows = (grid[0] + grid[1]) * (cond // 2)
    fwd = cond_rows * hid + n * l1 * hid + n * hid * out + n * dim * dim
    bwd = (n * dim * dim                 # dv = dy·Wp
           + 2 * n * out * hid           # dW2, dr
           + 2 * n * l1 * hid            # dW1x, dx1
           + cond_rows * hid)            # dW1c from per-column and per-row sums
    return 2 * blocks * (fwd + bwd)


def freia_flow(dim):
    import torch
    import FrEIA.framework as Ff
    import FrEIA.modules as Fm

    def subnet_fc(dims_in, dims_out):
        return torch.nn.Sequential(torch.nn.Linear(dims_in, 2 * dims_in), torch.nn.ReLU(),
                                   torch.nn.Linear(2 * dims_in, dims_out))

    coder = Ff.SequenceINN(dim)
    for _ in range(8):
        coder.append(Fm.AllInOneBlock, cond=0, cond_shape=(128,), subnet_constructor=subnet_fc,
                     affine_clamping=1.9, global_affine_type="SOFTPLUS", permute_soft=True)
    return coder


PAUSE = 0.2


def interleaved(fns, repeats, warmup=2, inner=1):
    """Best (minimum) seconds of each function over `repeats` calls, timed in alternation so
    that both sides of a ratio see the same machine load. The minimum, not the median: on a
    shared machine a load spike stalls a 2-thread PyTorch much longer than it lasts, and the
    best time is the figure each side reaches when it gets the cores.

    Each timing covers `inner` consecutive calls (steady state, as in a training loop) and
    comes after a pause of PAUSE seconds: OpenBLAS's and PyTorch's (OpenMP) worker threads
    keep spinning for a while after a call returns, and without the pause they would take
    cores from whichever side runs next."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    times = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            time.sleep(PAUSE)
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            times[i].append((time.perf_counter() - t0) / inner)
    return [min(t) for t in times]


def bench_level(dim, height, width, repeats, peer):
    rng = np.random.default_rng(dim)
    pe = bgad.positional_encoding(height, width)
    hw = height * width
    index = rng.integers(0, hw, size=CHUNK)
    x = rng.normal(size=(CHUNK, dim)).astype(np.float32)
    images = max(1, INFER // hw)
    index_inf = np.tile(np.arange(hw), images)
    x_inf = rng.normal(size=(images * hw, dim)).astype(np.float32)

    flow = bgad.Flow(dim, seed=0)
    gemm_seconds = []  # thread-seconds in the engine's sgemm calls, per training step

    def engine_step():
        before = bgad.gemm_counters()[1]
        flow.train_step(x, pe, 2e-4, cond_index=index)
        gemm_seconds.append(bgad.gemm_counters()[1] - before)

    train = [engine_step]
    res = {}
    infer = [lambda: flow.log_prob(x_inf, pe, cond_index=index_inf)]
    if peer:
        import torch
        coder = freia_flow(dim)
        flow.set_parameters(coder.state_dict())  # same model on both sides
        opt = torch.optim.Adam(coder.parameters(), lr=2e-4)
        xt, ct = torch.from_numpy(x), torch.from_numpy(pe[index])

        def step():
            z, ld = coder(xt, c=[ct])
            ell = (-0.5 * dim * np.log(2 * np.pi) - 0.5 * (z ** 2).sum(1) + ld) / dim
            loss = -torch.nn.functional.logsigmoid(ell).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()

        xi, ci = torch.from_numpy(x_inf), torch.from_numpy(pe[index_inf])

        def infer_t():
            with torch.no_grad():
                z, ld = coder(xi, c=[ci])
                return -0.5 * dim * np.log(2 * np.pi) - 0.5 * (z ** 2).sum(1) + ld

        # Same values on both sides (sanity): log p within float tolerance.
        lp = flow.log_prob(x_inf[:1000], pe, cond_index=index_inf[:1000])
        with torch.no_grad():
            z, ld = coder(xi[:1000], c=[ci[:1000]])
            lp_t = (-0.5 * dim * np.log(2 * np.pi) - 0.5 * (z ** 2).sum(1) + ld).numpy()
        res["max_logp_diff"] = float(np.abs(lp - lp_t).max())
        train.append(step)
        infer.append(infer_t)
    gemm, gemm_flops = sgemm_call()
    train.append(gemm)
    t_train = interleaved(train, repeats, inner=4)
    res["sgemm_gflops"] = gemm_flops / t_train[-1] / 1e9
    # The GEMM calls alone: their thread-time per step (best timed group of 4 steps), as if
    # the THREADS workers overlapped perfectly and nothing else took time — an upper bound
    # of the share any step could reach with these products.
    timed = gemm_seconds[2:]
    gemm_only = min(sum(timed[i:i + 4]) / 4 for i in range(0, len(timed) - 3, 4)) / THREADS
    t_infer = interleaved(infer, max(3, repeats // 2))
    res.update({"train_ms": t_train[0] * 1e3, "infer_vps": len(x_inf) / t_infer[0],
                "gflops": engine_flops_per_step(dim, (height, width)) / t_train[0] / 1e9,
                "gemm_only_gflops": engine_flops_per_step(dim, (height, width)) / gemm_only / 1e9})
    if peer:
        res["peer_train_ms"] = t_train[1] * 1e3
        res["peer_infer_vps"] = len(x_inf) / t_infer[1]
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    ap.add_argument("--dims", type=str, default="", help="comma-separated subset of C (24,40,112,200)")
    args = ap.parse_args()
    wanted = {int(d) for d in args.dims.split(",") if d}
    repeats = 5 if args.quick else 11
    bgad.set_num_threads(THREADS)
    peer = True
    try:
        import torch
        import FrEIA  # noqa: F401
        torch.set_num_threads(THREADS)
        peer_name = f"FrEIA {getattr(FrEIA, '__version__', '0.2')} + torch {torch.__version__}"
    except Exception as exc:  # pragma: no cover - optional peer
        peer, peer_name = False, f"none ({exc.__class__.__name__}: {exc})"
    print(f"bgad {bgad.__version__}, {THREADS} threads, OpenBLAS core {corename()}; peer: {peer_name}")
    print(f"times: best of {repeats} (training) / {max(3, repeats // 2)} (inference), engine, peer and "
          f"a cblas_sgemm 1024³ alternated; GEMM GF/s = GEMM FLOPs of an engine training step / its time; "
          f"% = GEMM GF/s / sgemm GF/s; GEMM-only % = the same FLOPs over the time of the step's sgemm calls "
          f"alone (thread-time / {THREADS})")
    header = (f"{'C':>4} {'grid':>6} | {'train ms':>9} {'infer vec/s':>12} {'GEMM GF/s':>9} "
              f"{'sgemm GF/s':>10} {'%':>4} {'GEMM-only %':>11}")
    if peer:
        header += f" | {'torch ms':>9} {'torch vec/s':>12} | {'train ×':>7} {'infer ×':>7} {'Δlog p':>8}"
    print(header)
    for dim, h, w in LEVELS:
        if wanted and dim not in wanted:
            continue
        r = bench_level(dim, h, w, repeats, peer)
        line = (f"{dim:>4} {h:>2}×{w:<3} | {r['train_ms']:>9.1f} {r['infer_vps']:>12,.0f} "
                f"{r['gflops']:>9.1f} {r['sgemm_gflops']:>10.1f} {100 * r['gflops'] / r['sgemm_gflops']:>3.0f}% "
                f"{100 * r['gemm_only_gflops'] / r['sgemm_gflops']:>10.0f}%")
        if peer:
            line += (f" | {r['peer_train_ms']:>9.1f} {r['peer_infer_vps']:>12,.0f} | "
                     f"{r['peer_train_ms'] / r['train_ms']:>6.2f}× {r['infer_vps'] / r['peer_infer_vps']:>6.2f}× "
                     f"{r['max_logp_diff']:>8.1e}")
        print(line, flush=True)


if __name__ == "__main__":
    main()
