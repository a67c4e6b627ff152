import CBLAS
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Thin, typed wrappers over OpenBLAS. All matrices are row-major `Float` buffers.

/// `C = alpha · op(A) · op(B) + beta · C` with row-major operands (`cblas_sgemm`).
/// Every call is counted, with the time spent in it (`GEMMCounters`).
///
/// - Parameters:
///   - transA, transB: use `Aᵀ` / `Bᵀ` instead of `A` / `B`.
///   - m, n, k: `op(A)` is `m × k`, `op(B)` is `k × n`, `C` is `m × n`.
///   - lda, ldb, ldc: row strides (elements) of the stored `A`, `B`, `C`.
public func sgemm(
    transA: Bool = false, transB: Bool = false,
    m: Int, n: Int, k: Int,
    alpha: Float = 1,
    _ a: UnsafePointer<Float>, lda: Int,
    _ b: UnsafePointer<Float>, ldb: Int,
    beta: Float = 0,
    _ c: UnsafeMutablePointer<Float>, ldc: Int
) {
    let start = monotonicNanoseconds()
    defer { GEMMCounters.record(since: start) }
    cblas_sgemm(
        CblasRowMajor,
        transA ? CblasTrans : CblasNoTrans,
        transB ? CblasTrans : CblasNoTrans,
        Int32(m), Int32(n), Int32(k),
        alpha, a, Int32(lda), b, Int32(ldb),
        beta, c, Int32(ldc))
}

/// Process-wide count of the engine's `sgemm` calls and the thread-time spent in them, so
/// that a benchmark can tell how much of a run is matrix products (`bgad_gemm_counters`).
/// Costs two clock reads per call (tens of nanoseconds).
public enum GEMMCounters {
    static let calls = Atomic<Int>(0)
    static let nanoseconds = Atomic<Int>(0)

    @inline(__always)
    static func record(since start: Int) {
        nanoseconds.wrappingAdd(monotonicNanoseconds() - start, ordering: .relaxed)
        calls.wrappingAdd(1, ordering: .relaxed)
    }

    /// (calls, nanoseconds summed over threads) since the last reset.
    public static func read() -> (calls: Int, nanoseconds: Int) {
        (calls.load(ordering: .relaxed), nanoseconds.load(ordering: .relaxed))
    }

    /// Sets both counters to zero.
    public static func reset() {
        calls.store(0, ordering: .relaxed)
        nanoseconds.store(0, ordering: .relaxed)
    }
}
