#if canImport(Glibc)
import Glibc
#endif

/// The monotonic clock (`CLOCK_MONOTONIC`) in nanoseconds: for timing inside the engine
/// (GEMM counters, the worker pool's spin period, the backbone's band balancing).
@inline(__always)
func monotonicNanoseconds() -> Int {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

/// `monotonicNanoseconds()` in seconds.
@inline(__always)
func monotonicSeconds() -> Double {
    Double(monotonicNanoseconds()) * 1e-9
}
