/// The direct matrix product of the engine's small-K layers, built for AVX-512 (x86-64-v4:
/// AVX-512 F/BW/DQ/VL, see Package.swift). Nothing in this module may run unless the CPU and
/// the OS support them; `BGADCore` checks that once (`VectorISA.useAVX512`) and otherwise
/// never calls in here. No function of the module is `@inlinable`.
///
/// `C = clamp(start + A·B)` for the 1×1 convolutions of the backbone and the three products
/// of each flow block, where the layers are narrow (K from 16 to ~700, N from 8 to ~700) and
/// OpenBLAS spends much of its time packing: here B comes packed once (its panel layout is
/// `PackedMatrix`'s in BGADCore), A is read in place, and the start value (bias, a gathered
/// row of a table, a skip connection) and the clamp (ReLU, ReLU6) are applied in registers,
/// so the product makes one pass over C.
///
/// Each element of C is computed the same way whatever the tiling: its accumulator starts
/// at the start value and takes one fused multiply-add per k in increasing k. So a row's
/// result does not depend on how many rows the call has or where the row sits in it.

@inline(__always)
private func load<V: PanelVector>(_ p: UnsafePointer<Float>, _: V.Type) -> V {
    UnsafeRawPointer(p).loadUnaligned(as: V.self)
}

@inline(__always)
private func store<V: PanelVector>(_ v: V, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self)
}

/// The two vector widths of the kernel (a panel's 32 or 16 columns in 16-float vectors, its
/// last 8 in one 8-float vector), with the epilogue's clamp written for each concrete type
/// (generic mask operations are not vectorised).
protocol PanelVector: SIMD where Scalar == Float {
    /// 0: `self`; 1: `max(self, 0)`; 2: `min(max(self, 0), 6)`; NaN becomes 0 under both
    /// clamps (as the engine's other ReLU passes).
    func clamped(_ mode: Int) -> Self
}

extension SIMD16: PanelVector where Scalar == Float {
    @inline(__always)
    func clamped(_ mode: Int) -> SIMD16<Float> {
        if mode == 0 { return self }
        let zero = SIMD16<Float>(repeating: 0)
        let p = zero.replacing(with: self, where: zero .< self)
        if mode == 1 { return p }
        let six = SIMD16<Float>(repeating: 6)
        return six.replacing(with: p, where: p .< six)
    }
}

extension SIMD8: PanelVector where Scalar == Float {
    @inline(__always)
    func clamped(_ mode: Int) -> SIMD8<Float> {
        if mode == 0 { return self }
        let zero = SIMD8<Float>(repeating: 0)
        let p = zero.replacing(with: self, where: zero .< self)
        if mode == 1 { return p }
        let six = SIMD8<Float>(repeating: 6)
        return six.replacing(with: p, where: p .< six)
    }
}

/// Where a row's start values come from: a gathered table row (plus a gathered row of a
/// second table), else the bias, else zero; plus the skip row when there is one.
struct Start {
    let bias: UnsafePointer<Float>?
    let table: UnsafePointer<Float>?
    let index: UnsafePointer<Int32>?
    let ldt: Int
    let table2: UnsafePointer<Float>?
    let index2: UnsafePointer<Int32>?
    let skip: UnsafePointer<Float>?
    let ldskip: Int

    @inline(__always)
    func value<V: PanelVector>(row: Int, col: Int, _: V.Type) -> V {
        var v: V
        if let table, let index {
            v = load(table + Int(index[row]) * ldt + col, V.self)
            if let table2, let index2 { v += load(table2 + Int(index2[row]) * ldt + col, V.self) }
        } else if let bias {
            v = load(bias + col, V.self)
        } else {
            v = V(repeating: 0)
        }
        if let skip { v += load(skip + row * ldskip + col, V.self) }
        return v
    }
}

/// Six rows × two vectors of one panel (width 2·V.scalarCount).
@inline(__always)
private func tile6x2<V: PanelVector>(
    _: V.Type, row i: Int, col j: Int, k: Int, a: UnsafePointer<Float>, lda: Int, panel b: UnsafePointer<Float>,
    start: Start, clampMode: Int, c: UnsafeMutablePointer<Float>, ldc: Int
) {
    let w = V.scalarCount, w2 = 2 * w
    var c00: V = start.value(row: i, col: j, V.self), c01: V = start.value(row: i, col: j + w, V.self)
    var c10: V = start.value(row: i + 1, col: j, V.self), c11: V = start.value(row: i + 1, col: j + w, V.self)
    var c20: V = start.value(row: i + 2, col: j, V.self), c21: V = start.value(row: i + 2, col: j + w, V.self)
    var c30: V = start.value(row: i + 3, col: j, V.self), c31: V = start.value(row: i + 3, col: j + w, V.self)
    var c40: V = start.value(row: i + 4, col: j, V.self), c41: V = start.value(row: i + 4, col: j + w, V.self)
    var c50: V = start.value(row: i + 5, col: j, V.self), c51: V = start.value(row: i + 5, col: j + w, V.self)
    let a0 = a + i * lda, a1 = a0 + lda, a2 = a1 + lda, a3 = a2 + lda, a4 = a3 + lda, a5 = a4 + lda
    var p = b
    for kk in 0..<k {
        let b0 = load(p, V.self), b1 = load(p + w, V.self)
        var s = V(repeating: a0[kk]); c00 = c00.addingProduct(s, b0); c01 = c01.addingProduct(s, b1)
        s = V(repeating: a1[kk]); c10 = c10.addingProduct(s, b0); c11 = c11.addingProduct(s, b1)
        s = V(repeating: a2[kk]); c20 = c20.addingProduct(s, b0); c21 = c21.addingProduct(s, b1)
        s = V(repeating: a3[kk]); c30 = c30.addingProduct(s, b0); c31 = c31.addingProduct(s, b1)
        s = V(repeating: a4[kk]); c40 = c40.addingProduct(s, b0); c41 = c41.addingProduct(s, b1)
        s = V(repeating: a5[kk]); c50 = c50.addingProduct(s, b0); c51 = c51.addingProduct(s, b1)
        p += w2
    }
    let o = c + i * ldc + j
    store(c00.clamped(clampMode), o); store(c01.clamped(clampMode), o + w)
    store(c10.clamped(clampMode), o + ldc); store(c11.clamped(clampMode), o + ldc + w)
    store(c20.clamped(clampMode), o + 2 * ldc); store(c21.clamped(clampMode), o + 2 * ldc + w)
    store(c30.clamped(clampMode), o + 3 * ldc); store(c31.clamped(clampMode), o + 3 * ldc + w)
    store(c40.clamped(clampMode), o + 4 * ldc); store(c41.clamped(clampMode), o + 4 * ldc + w)
    store(c50.clamped(clampMode), o + 5 * ldc); store(c51.clamped(clampMode), o + 5 * ldc + w)
}

/// Six rows × one vector of one panel (width V.scalarCount).
@inline(__always)
private func tile6x1<V: PanelVector>(
    _: V.Type, row i: Int, col j: Int, k: Int, a: UnsafePointer<Float>, lda: Int, panel b: UnsafePointer<Float>,
    start: Start, clampMode: Int, c: UnsafeMutablePointer<Float>, ldc: Int
) {
    let w = V.scalarCount
    var c0: V = start.value(row: i, col: j, V.self), c1: V = start.value(row: i + 1, col: j, V.self)
    var c2: V = start.value(row: i + 2, col: j, V.self), c3: V = start.value(row: i + 3, col: j, V.self)
    var c4: V = start.value(row: i + 4, col: j, V.self), c5: V = start.value(row: i + 5, col: j, V.self)
    let a0 = a + i * lda, a1 = a0 + lda, a2 = a1 + lda, a3 = a2 + lda, a4 = a3 + lda, a5 = a4 + lda
    var p = b
    for kk in 0..<k {
        let b0 = load(p, V.self)
        c0 = c0.addingProduct(V(repeating: a0[kk]), b0)
        c1 = c1.addingProduct(V(repeating: a1[kk]), b0)
        c2 = c2.addingProduct(V(repeating: a2[kk]), b0)
        c3 = c3.addingProduct(V(repeating: a3[kk]), b0)
        c4 = c4.addingProduct(V(repeating: a4[kk]), b0)
        c5 = c5.addingProduct(V(repeating: a5[kk]), b0)
        p += w
    }
    let o = c + i * ldc + j
    store(c0.clamped(clampMode), o); store(c1.clamped(clampMode), o + ldc)
    store(c2.clamped(clampMode), o + 2 * ldc); store(c3.clamped(clampMode), o + 3 * ldc)
    store(c4.clamped(clampMode), o + 4 * ldc); store(c5.clamped(clampMode), o + 5 * ldc)
}

/// One row × one panel of `vectors` vectors (1 or 2): the rows left over after the tiles of six.
@inline(__always)
private func tile1<V: PanelVector>(
    _: V.Type, vectors: Int, row i: Int, col j: Int, k: Int, a: UnsafePointer<Float>, panel b: UnsafePointer<Float>,
    start: Start, clampMode: Int, c: UnsafeMutablePointer<Float>
) {
    let w = V.scalarCount, pw = vectors * w
    for v in 0..<vectors {
        var acc: V = start.value(row: i, col: j + v * w, V.self)
        var p = b + v * w
        for kk in 0..<k {
            acc = acc.addingProduct(V(repeating: a[kk]), load(p, V.self))
            p += pw
        }
        store(acc.clamped(clampMode), c + j + v * w)
    }
}

/// `C[i, j] = clamp(start(i, j) + Σ_k A[i, k]·B[k, j])` for `m` rows and `n` columns
/// (`n` a multiple of 8), with B (`k × n`) in `PackedMatrix`'s panel layout: panels of 32
/// columns, then one of 16 and one of 8 as `n` requires, each stored as `k` rows of its width,
/// the panel that starts at column `j` at offset `j·k`.
///
/// `start(i, j)` is `table[index[i]·ldt + j]` (plus `table2[index2[i]·ldt + j]` when those
/// are given too) when `table` and `index` are given, else `bias[j]` when `bias` is given,
/// else 0; plus `skip[i·ldskip + j]` when `skip` is given.
/// `clampMode`: 0 none, 1 ReLU, 2 ReLU6. `C` may not overlap `A`, `skip` or the table.
public func packedGemmAVX512(
    m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, packed: UnsafePointer<Float>,
    bias: UnsafePointer<Float>?, table: UnsafePointer<Float>?, index: UnsafePointer<Int32>?, ldt: Int,
    table2: UnsafePointer<Float>?, index2: UnsafePointer<Int32>?,
    skip: UnsafePointer<Float>?, ldskip: Int, clampMode: Int, c: UnsafeMutablePointer<Float>, ldc: Int
) {
    let start = Start(bias: bias, table: table, index: index, ldt: ldt, table2: table2, index2: index2,
                      skip: skip, ldskip: ldskip)
    var i = 0
    while i + 6 <= m {
        var j = 0
        while j + 32 <= n {
            tile6x2(SIMD16<Float>.self, row: i, col: j, k: k, a: a, lda: lda, panel: packed + j * k,
                    start: start, clampMode: clampMode, c: c, ldc: ldc)
            j += 32
        }
        if j + 16 <= n {
            tile6x1(SIMD16<Float>.self, row: i, col: j, k: k, a: a, lda: lda, panel: packed + j * k,
                    start: start, clampMode: clampMode, c: c, ldc: ldc)
            j += 16
        }
        if j + 8 <= n {
            tile6x1(SIMD8<Float>.self, row: i, col: j, k: k, a: a, lda: lda, panel: packed + j * k,
                    start: start, clampMode: clampMode, c: c, ldc: ldc)
        }
        i += 6
    }
    while i < m {
        let ai = a + i * lda, ci = c + i * ldc
        var j = 0
        while j + 32 <= n {
            tile1(SIMD16<Float>.self, vectors: 2, row: i, col: j, k: k, a: ai, panel: packed + j * k,
                  start: start, clampMode: clampMode, c: ci)
            j += 32
        }
        if j + 16 <= n {
            tile1(SIMD16<Float>.self, vectors: 1, row: i, col: j, k: k, a: ai, panel: packed + j * k,
                  start: start, clampMode: clampMode, c: ci)
            j += 16
        }
        if j + 8 <= n {
            tile1(SIMD8<Float>.self, vectors: 1, row: i, col: j, k: k, a: ai, panel: packed + j * k,
                  start: start, clampMode: clampMode, c: ci)
        }
        i += 1
    }
}
