/// Element-wise and row kernels on row-major `Float` matrices that complement `sgemm`.
///
/// All functions take raw pointers with explicit sizes and row strides; none allocates.

/// `out[j] (+)= Σ_i a[i, j]` over `rows` rows of `cols` floats; accumulates when `accumulate`.
@inlinable
public func columnSums(
    _ a: UnsafePointer<Float>, stride: Int, rows: Int, cols: Int,
    into out: UnsafeMutablePointer<Float>, accumulate: Bool = false
) {
    if !accumulate { out.update(repeating: 0, count: cols) }
    for i in 0..<rows { addInPlace(out, a + i * stride, count: cols) }
}

/// Eight floats loaded from / stored to unaligned memory (SIMD code the compiler can keep
/// in vector registers; plain loops over pointers that may alias stay scalar).
@inline(__always)
@usableFromInline
func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

@inline(__always)
@usableFromInline
func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
}

/// `x[i, :] = max(x[i, :] + table[index[i], :], 0)` for `rows` rows of `cols` floats (stride `cols`):
/// a gather-add fused with a ReLU.
@inlinable
public func addRowsRelu(
    _ x: UnsafeMutablePointer<Float>, table: UnsafePointer<Float>, index: UnsafePointer<Int32>,
    rows: Int, cols: Int
) {
    let zero = SIMD8<Float>(repeating: 0)
    for i in 0..<rows {
        let xi = x + i * cols, t = table + Int(index[i]) * cols
        var j = 0
        while j + 8 <= cols {
            let v = load8(xi + j) + load8(t + j)
            store8(v.replacing(with: zero, where: v .< zero), xi + j)
            j += 8
        }
        while j < cols {
            let v = xi[j] + t[j]
            xi[j] = v < 0 ? 0 : v
            j += 1
        }
    }
}

/// Backward of a ReLU fused with per-group sums over rows sorted by group:
/// `g[i, :] = r[i, :] > 0 ? g[i, :] : 0`, and `table[index[i], :]` = the sum of the masked rows
/// with that index. `index` must be non-decreasing with each group's rows consecutive; each
/// group's row of `table` is WRITTEN (not accumulated), so it needs no zeroing. When `carry`
/// is given, the first group (a continuation of a group begun by another slice) goes there instead.
@inlinable
public func reluMaskGroupSum(
    _ g: UnsafeMutablePointer<Float>, r: UnsafePointer<Float>, index: UnsafePointer<Int32>,
    rows: Int, cols: Int, _ table: UnsafeMutablePointer<Float>, carry: UnsafeMutablePointer<Float>?
) {
    let zero = SIMD8<Float>(repeating: 0)
    var dest = table
    var prev: Int32 = -1
    for i in 0..<rows {
        let gi = g + i * cols, ri = r + i * cols
        let idx = index[i]
        let first = idx != prev
        if first { dest = (i == 0 && carry != nil) ? carry! : table + Int(idx) * cols }
        prev = idx
        var j = 0
        if first {
            while j + 8 <= cols {
                let v = load8(gi + j).replacing(with: zero, where: load8(ri + j) .<= zero)
                store8(v, gi + j)
                store8(v, dest + j)
                j += 8
            }
            while j < cols {
                let v = ri[j] > 0 ? gi[j] : 0
                gi[j] = v
                dest[j] = v
                j += 1
            }
        } else {
            while j + 8 <= cols {
                let v = load8(gi + j).replacing(with: zero, where: load8(ri + j) .<= zero)
                store8(v, gi + j)
                store8(load8(dest + j) + v, dest + j)
                j += 8
            }
            while j < cols {
                let v = ri[j] > 0 ? gi[j] : 0
                gi[j] = v
                dest[j] += v
                j += 1
            }
        }
    }
}

/// `dst[j] += src[j]` for `count` floats.
@inlinable
public func addInPlace(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, count: Int) {
    var j = 0
    while j + 8 <= count {
        store8(load8(dst + j) + load8(src + j), dst + j)
        j += 8
    }
    while j < count {
        dst[j] += src[j]
        j += 1
    }
}
