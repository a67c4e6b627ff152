/// Element-wise and row kernels on row-major `Float` matrices that complement `sgemm`.
///
/// All functions take raw pointers with explicit sizes and row strides; none allocates.

/// `dst[i, :] = table[index[i], :]` for `rows` rows of `cols` floats (a gather).
@inlinable
public func gatherRows(
    _ table: UnsafePointer<Float>, tableStride: Int, index: UnsafePointer<Int32>,
    rows: Int, cols: Int, _ dst: UnsafeMutablePointer<Float>, dstStride: Int
) {
    for i in 0..<rows {
        let src = table + Int(index[i]) * tableStride
        (dst + i * dstStride).update(from: src, count: cols)
    }
}

/// `table[index[i], :] += src[i, :]` for `rows` rows of `cols` floats (a scatter-add).
@inlinable
public func scatterAddRows(
    _ src: UnsafePointer<Float>, srcStride: Int, index: UnsafePointer<Int32>,
    rows: Int, cols: Int, _ table: UnsafeMutablePointer<Float>, tableStride: Int
) {
    for i in 0..<rows {
        let s = src + i * srcStride
        let d = table + Int(index[i]) * tableStride
        for j in 0..<cols { d[j] += s[j] }
    }
}

/// `out[j] (+)= Σ_i a[i, j]` over `rows` rows of `cols` floats; accumulates when `accumulate`.
@inlinable
public func columnSums(
    _ a: UnsafePointer<Float>, stride: Int, rows: Int, cols: Int,
    into out: UnsafeMutablePointer<Float>, accumulate: Bool = false
) {
    if !accumulate { out.update(repeating: 0, count: cols) }
    for i in 0..<rows {
        let r = a + i * stride
        for j in 0..<cols { out[j] += r[j] }
    }
}

/// `x[i] = max(x[i], 0)` for `count` floats.
@inlinable
public func reluInPlace(_ x: UnsafeMutablePointer<Float>, count: Int) {
    for i in 0..<count { x[i] = max(x[i], 0) }
}

/// Index of the first non-finite value among `count` floats, or nil when all are finite.
@inlinable
public func firstNonFinite(_ x: UnsafePointer<Float>, count: Int) -> Int? {
    // Summing x·0 is NaN exactly when some x is NaN or ±Inf; check blocks, then locate.
    var i = 0
    while i < count {
        let end = min(i + 1024, count)
        var acc: Float = 0
        for j in i..<end { acc += x[j] * 0 }
        if acc != 0 || acc.isNaN {
            for j in i..<end where !x[j].isFinite { return j }
        }
        i = end
    }
    return nil
}
