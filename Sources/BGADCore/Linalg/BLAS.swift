import CBLAS

/// Thin, typed wrappers over OpenBLAS. All matrices are row-major `Float` buffers.

/// `C = alpha · op(A) · op(B) + beta · C` with row-major operands (`cblas_sgemm`).
///
/// - Parameters:
///   - transA, transB: use `Aᵀ` / `Bᵀ` instead of `A` / `B`.
///   - m, n, k: `op(A)` is `m × k`, `op(B)` is `k × n`, `C` is `m × n`.
///   - lda, ldb, ldc: row strides (elements) of the stored `A`, `B`, `C`.
@inlinable
public func sgemm(
    transA: Bool = false, transB: Bool = false,
    m: Int, n: Int, k: Int,
    alpha: Float = 1,
    _ a: UnsafePointer<Float>, lda: Int,
    _ b: UnsafePointer<Float>, ldb: Int,
    beta: Float = 0,
    _ c: UnsafeMutablePointer<Float>, ldc: Int
) {
    cblas_sgemm(
        CblasRowMajor,
        transA ? CblasTrans : CblasNoTrans,
        transB ? CblasTrans : CblasNoTrans,
        Int32(m), Int32(n), Int32(k),
        alpha, a, Int32(lda), b, Int32(ldb),
        beta, c, Int32(ldc))
}

/// Number of threads OpenBLAS uses.
public var blasThreadCount: Int {
    get { Int(openblas_get_num_threads()) }
    set { openblas_set_num_threads(Int32(max(1, newValue))) }
}
