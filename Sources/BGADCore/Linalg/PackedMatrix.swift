import BGADKernelsAVX512

/// A constant right-hand matrix B (`k × n`) stored for the direct product `packedGemm`:
/// column panels of the widths `packedPanelWidth` gives (48 columns at most; `n` must be a
/// multiple of 8), each panel stored as `k` rows of its width, the panel that starts at
/// column `j` at offset `j·k`. The panels are what the AVX-512 kernel streams through its
/// registers; packing once per weight change replaces OpenBLAS's packing on every call.
public enum PackedMatrix {
    /// Whether a `k × n` matrix can be packed (and so multiplied by `packedGemm`).
    @inline(__always)
    public static func canPack(rows k: Int, columns n: Int) -> Bool { k > 0 && n > 0 && n % 8 == 0 }

    /// `count` rounded up to a multiple of 16 floats (64 bytes): where to start the next
    /// packed matrix in a 64-byte-aligned buffer so that its vector loads stay aligned.
    @inline(__always)
    public static func alignedCount(_ count: Int) -> Int { (count + 15) & ~15 }

    /// Packs B into `out` (`k·n` floats). B's element (kk, j) is `b[kk·ld + j]`, or
    /// `b[j·ld + kk]` when `transposed` (B given as its transpose, `n × k`, e.g. a layer's
    /// `out × in` weight).
    public static func pack(_ b: UnsafePointer<Float>, rows k: Int, columns n: Int, ld: Int, transposed: Bool,
                            into out: UnsafeMutablePointer<Float>) {
        precondition(canPack(rows: k, columns: n))
        var j0 = 0
        while j0 < n {
            let w = packedPanelWidth(columns: n, from: j0)
            let panel = out + j0 * k
            for kk in 0..<k {
                let row = panel + kk * w
                if transposed {
                    for t in 0..<w { row[t] = b[(j0 + t) * ld + kk] }
                } else {
                    (row).update(from: b + kk * ld + j0, count: w)
                }
            }
            j0 += w
        }
    }
}

/// How a `packedGemm` row starts before the products are added: the bias, or a gathered
/// row of a table, plus an optional skip row; and the clamp applied at the end.
public struct PackedGemmEpilogue {
    /// Per-column start value (`n` floats), used when `table` is nil.
    public var bias: UnsafePointer<Float>? = nil
    /// Row `i` starts at `table[index[i]·tableStride ..]` (`n` floats) when both are given.
    public var table: UnsafePointer<Float>? = nil
    /// See `table`.
    public var index: UnsafePointer<Int32>? = nil
    /// Row stride of `table` (and `table2`).
    public var tableStride = 0
    /// With `table`: row `i` also adds `table2[index2[i]·tableStride ..]` (a separable start,
    /// e.g. a grid column's part plus a grid row's part).
    public var table2: UnsafePointer<Float>? = nil
    /// See `table2`.
    public var index2: UnsafePointer<Int32>? = nil
    /// Added to row `i`'s start: `skip[i·skipStride ..]` (`n` floats).
    public var skip: UnsafePointer<Float>? = nil
    /// Row stride of `skip`.
    public var skipStride = 0
    /// 0 none, 1 ReLU (`max(x, 0)`), 2 ReLU6 (`min(max(x, 0), 6)`); NaN becomes 0 under both.
    public var clamp = 0

    /// No start value (zero) and no clamp.
    public init() {}
}

/// `C = clamp(start + A·B)` (`m × n`, row stride `ldc`) with A `m × k` (row stride `lda`)
/// and B packed by `PackedMatrix.pack`; see `PackedGemmEpilogue` for the start and clamp.
/// Runs the AVX-512 kernel: call it only when `VectorISA.useAVX512` is true (the caller
/// keeps an OpenBLAS path for other CPUs). Counted in `GEMMCounters` like `sgemm`.
/// Each element's value does not depend on `m` nor on its row's position.
public func packedGemm(m: Int, n: Int, k: Int, _ a: UnsafePointer<Float>, lda: Int, packed: UnsafePointer<Float>,
                       _ epilogue: PackedGemmEpilogue, _ c: UnsafeMutablePointer<Float>, ldc: Int) {
    let start = monotonicNanoseconds()
    defer { GEMMCounters.record(since: start) }
    packedGemmAVX512(m: m, n: n, k: k, a: a, lda: lda, packed: packed,
                     bias: epilogue.bias, table: epilogue.table, index: epilogue.index, ldt: epilogue.tableStride,
                     table2: epilogue.table2, index2: epilogue.index2, skip: epilogue.skip, ldskip: epilogue.skipStride, clampMode: epilogue.clamp, c: c, ldc: ldc)
}
