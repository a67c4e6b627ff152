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

@_transparent
private func load<V: PanelVector>(_ p: UnsafePointer<Float>, _: V.Type) -> V {
    UnsafeRawPointer(p).loadUnaligned(as: V.self)
}

@_transparent
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
    @_transparent
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
    @_transparent
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

    @_transparent
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

/// A panel width the kernel takes: `wide` vectors of 16 floats, then one of 8 when `narrow`
/// (48, 40, 32, 24, 16 or 8 columns). The tile code is generic over it; after
/// specialisation the vectors a width lacks are never loaded, computed nor stored.
protocol PanelWidth {
    static var wide: Int { get }
    static var narrow: Bool { get }
}

enum Width48: PanelWidth { static let wide = 3; static let narrow = false }
enum Width40: PanelWidth { static let wide = 2; static let narrow = true }
enum Width32: PanelWidth { static let wide = 2; static let narrow = false }
enum Width24: PanelWidth { static let wide = 1; static let narrow = true }
enum Width16: PanelWidth { static let wide = 1; static let narrow = false }
enum Width8: PanelWidth { static let wide = 0; static let narrow = true }

/// One row of a panel in registers: an accumulator row of C or a row of packed B.
struct Lanes {
    var z0 = SIMD16<Float>(), z1 = SIMD16<Float>(), z2 = SIMD16<Float>()
    var y = SIMD8<Float>()

    /// The `W` columns at `p`.
    @_transparent
    init<W: PanelWidth>(_ p: UnsafePointer<Float>, _: W.Type) {
        if W.wide > 0 { z0 = load(p, SIMD16<Float>.self) }
        if W.wide > 1 { z1 = load(p + 16, SIMD16<Float>.self) }
        if W.wide > 2 { z2 = load(p + 32, SIMD16<Float>.self) }
        if W.narrow { y = load(p + 16 * W.wide, SIMD8<Float>.self) }
    }

    /// Row `row`'s start values at columns `col ..< col + W` (`Start`).
    @_transparent
    init<W: PanelWidth>(start: Start, row: Int, col: Int, _: W.Type) {
        if W.wide > 0 { z0 = start.value(row: row, col: col, SIMD16<Float>.self) }
        if W.wide > 1 { z1 = start.value(row: row, col: col + 16, SIMD16<Float>.self) }
        if W.wide > 2 { z2 = start.value(row: row, col: col + 32, SIMD16<Float>.self) }
        if W.narrow { y = start.value(row: row, col: col + 16 * W.wide, SIMD8<Float>.self) }
    }

    /// `self += a · b`, one fused multiply-add per lane (the 8-float part too unless
    /// `narrow` is false: then the caller adds it).
    @_transparent
    mutating func add<W: PanelWidth>(_ a: Float, times b: Lanes, _: W.Type, narrow: Bool = true) {
        let s = SIMD16<Float>(repeating: a)
        if W.wide > 0 { z0 = z0.addingProduct(s, b.z0) }
        if W.wide > 1 { z1 = z1.addingProduct(s, b.z1) }
        if W.wide > 2 { z2 = z2.addingProduct(s, b.z2) }
        if W.narrow && narrow { y = y.addingProduct(SIMD8<Float>(repeating: a), b.y) }
    }

    /// `self + other`, lane by lane.
    @_transparent
    func plus<W: PanelWidth>(_ o: Lanes, _: W.Type) -> Lanes {
        var r = self
        if W.wide > 0 { r.z0 += o.z0 }
        if W.wide > 1 { r.z1 += o.z1 }
        if W.wide > 2 { r.z2 += o.z2 }
        if W.narrow { r.y += o.y }
        return r
    }

    /// Stores the clamped row at `p`.
    @_transparent
    func store<W: PanelWidth>(_ p: UnsafeMutablePointer<Float>, clampMode: Int, _: W.Type) {
        if W.wide > 0 { BGADKernelsAVX512.store(z0.clamped(clampMode), p) }
        if W.wide > 1 { BGADKernelsAVX512.store(z1.clamped(clampMode), p + 16) }
        if W.wide > 2 { BGADKernelsAVX512.store(z2.clamped(clampMode), p + 32) }
        if W.narrow { BGADKernelsAVX512.store(y.clamped(clampMode), p + 16 * W.wide) }
    }
}

/// Six rows × one panel of width `W`: 6 accumulator rows (up to 18 + 6 registers), one
/// packed B row loaded per k and used by all six.
@_transparent
private func tile6<W: PanelWidth>(
    _: W.Type, row i: Int, col j: Int, k: Int, a: UnsafePointer<Float>, lda: Int, panel b: UnsafePointer<Float>,
    start: Start, clampMode: Int, c: UnsafeMutablePointer<Float>, ldc: Int
) {
    var c0: Lanes, c1: Lanes, c2: Lanes, c3: Lanes, c4: Lanes, c5: Lanes
    if let table = start.table, let index = start.index, let table2 = start.table2, let index2 = start.index2,
       start.skip == nil {
        // A flow's condition shares: the second table's rows (the image row's part) repeat
        // along the tile (its six pixels lie on one or two image rows), so they are loaded
        // once each and added to each row's first-table row, as `Start.value` does.
        let first = index2[i], last = index2[i + 5], ldt = start.ldt
        let sharedFirst = Lanes(table2 + Int(first) * ldt + j, W.self)
        let sharedLast = Lanes(table2 + Int(last) * ldt + j, W.self)
        @_transparent
        func row(_ r: Int) -> Lanes {
            let own = Lanes(table + Int(index[r]) * ldt + j, W.self)
            let h = index2[r]
            if h == first { return own.plus(sharedFirst, W.self) }
            if h == last { return own.plus(sharedLast, W.self) }
            return own.plus(Lanes(table2 + Int(h) * ldt + j, W.self), W.self)
        }
        c0 = row(i); c1 = row(i + 1); c2 = row(i + 2); c3 = row(i + 3); c4 = row(i + 4); c5 = row(i + 5)
    } else {
        c0 = Lanes(start: start, row: i, col: j, W.self); c1 = Lanes(start: start, row: i + 1, col: j, W.self)
        c2 = Lanes(start: start, row: i + 2, col: j, W.self); c3 = Lanes(start: start, row: i + 3, col: j, W.self)
        c4 = Lanes(start: start, row: i + 4, col: j, W.self); c5 = Lanes(start: start, row: i + 5, col: j, W.self)
    }
    let a0 = a + i * lda, a1 = a0 + lda, a2 = a1 + lda, a3 = a2 + lda, a4 = a3 + lda, a5 = a4 + lda
    let width = 16 * W.wide + (W.narrow ? 8 : 0)
    // The 8-float parts of two rows share one 16-lane register (rows 0|1, 2|3, 4|5): one
    // multiply-add instead of two half-width ones, whose issue slots cost the same.
    var y01 = SIMD16<Float>(lowHalf: c0.y, highHalf: c1.y), y23 = SIMD16<Float>(lowHalf: c2.y, highHalf: c3.y)
    var y45 = SIMD16<Float>(lowHalf: c4.y, highHalf: c5.y)
    var p = b
    for kk in 0..<k {
        let bk = Lanes(p, W.self)
        let x0 = a0[kk], x1 = a1[kk], x2 = a2[kk], x3 = a3[kk], x4 = a4[kk], x5 = a5[kk]
        c0.add(x0, times: bk, W.self, narrow: false)
        c1.add(x1, times: bk, W.self, narrow: false)
        c2.add(x2, times: bk, W.self, narrow: false)
        c3.add(x3, times: bk, W.self, narrow: false)
        c4.add(x4, times: bk, W.self, narrow: false)
        c5.add(x5, times: bk, W.self, narrow: false)
        if W.narrow {
            let bb = SIMD16<Float>(lowHalf: bk.y, highHalf: bk.y)
            y01 = y01.addingProduct(SIMD16<Float>(lowHalf: SIMD8(repeating: x0), highHalf: SIMD8(repeating: x1)), bb)
            y23 = y23.addingProduct(SIMD16<Float>(lowHalf: SIMD8(repeating: x2), highHalf: SIMD8(repeating: x3)), bb)
            y45 = y45.addingProduct(SIMD16<Float>(lowHalf: SIMD8(repeating: x4), highHalf: SIMD8(repeating: x5)), bb)
        }
        p += width
    }
    if W.narrow {
        c0.y = y01.lowHalf; c1.y = y01.highHalf
        c2.y = y23.lowHalf; c3.y = y23.highHalf
        c4.y = y45.lowHalf; c5.y = y45.highHalf
    }
    let o = c + i * ldc + j
    c0.store(o, clampMode: clampMode, W.self)
    c1.store(o + ldc, clampMode: clampMode, W.self)
    c2.store(o + 2 * ldc, clampMode: clampMode, W.self)
    c3.store(o + 3 * ldc, clampMode: clampMode, W.self)
    c4.store(o + 4 * ldc, clampMode: clampMode, W.self)
    c5.store(o + 5 * ldc, clampMode: clampMode, W.self)
}

/// One row × one panel of width `W` (for calls of fewer than six rows): the same arithmetic
/// per element as `tile6`.
@_transparent
private func tile1<W: PanelWidth>(
    _: W.Type, row i: Int, col j: Int, k: Int, a: UnsafePointer<Float>, lda: Int, panel b: UnsafePointer<Float>,
    start: Start, clampMode: Int, c: UnsafeMutablePointer<Float>, ldc: Int
) {
    var acc = Lanes(start: start, row: i, col: j, W.self)
    let ai = a + i * lda
    let width = 16 * W.wide + (W.narrow ? 8 : 0)
    var p = b
    for kk in 0..<k {
        acc.add(ai[kk], times: Lanes(p, W.self), W.self)
        p += width
    }
    acc.store(c + i * ldc + j, clampMode: clampMode, W.self)
}

/// Rows `i0 ..< m` × the panel of width `W` at column `j`: tiles of six, the last one moved
/// back to end at row `m` (rows before `i0` are valid rows of the same call).
@_transparent
private func panelColumn<W: PanelWidth>(
    _: W.Type, rows m: Int, col j: Int, k: Int, a: UnsafePointer<Float>, lda: Int, packed: UnsafePointer<Float>,
    start: Start, clampMode: Int, c: UnsafeMutablePointer<Float>, ldc: Int, from i0: Int
) {
    var i = i0
    while i + 6 <= m {
        tile6(W.self, row: i, col: j, k: k, a: a, lda: lda, panel: packed + j * k, start: start, clampMode: clampMode,
              c: c, ldc: ldc)
        i += 6
    }
    if i < m && m >= 6 {
        // The last rows as one more tile of six that overlaps the previous one: the rows
        // computed twice get the same values (the arithmetic per element does not depend on
        // the tiling), and C overlaps no input, so rewriting them is harmless.
        tile6(W.self, row: m - 6, col: j, k: k, a: a, lda: lda, panel: packed + j * k, start: start,
              clampMode: clampMode, c: c, ldc: ldc)
        return
    }
    while i < m {
        tile1(W.self, row: i, col: j, k: k, a: a, lda: lda, panel: packed + j * k, start: start, clampMode: clampMode,
              c: c, ldc: ldc)
        i += 1
    }
}

/// The width of the panel that starts at column `j` of `n` (a multiple of 8): 48s, then
/// the rest as one panel, except that a last 56 or 64 columns go as 32 + 24 or 32 + 32 (a
/// panel of 8 or 16 uses each broadcast of A for too few columns). `PackedMatrix.pack`
/// lays B out by the same rule.
public func packedPanelWidth(columns n: Int, from j: Int) -> Int {
    let left = n - j
    if left == 56 || left == 64 { return 32 }
    return min(48, left)
}

/// `C[i, j] = clamp(start(i, j) + Σ_k A[i, k]·B[k, j])` for `m` rows and `n` columns
/// (`n` a multiple of 8), with B (`k × n`) in `PackedMatrix`'s panel layout: panels of the
/// widths `packedPanelWidth` gives, each stored as `k` rows of its width, the panel that
/// starts at column `j` at offset `j·k`.
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
    // Blocks of rows whose part of A (≤ 16 KB) stays in the L1 cache while the panels pass over it.
    let block = max(6, 4096 / max(k, 1) / 6 * 6)
    var i = 0
    while i < m {
        let rows = min(m, i + block)
        var j = 0
        while j < n {
            let w = packedPanelWidth(columns: n, from: j)
            switch w {
            case 48: panelColumn(Width48.self, rows: rows, col: j, k: k, a: a, lda: lda, packed: packed, start: start,
                                 clampMode: clampMode, c: c, ldc: ldc, from: i)
            case 40: panelColumn(Width40.self, rows: rows, col: j, k: k, a: a, lda: lda, packed: packed, start: start,
                                 clampMode: clampMode, c: c, ldc: ldc, from: i)
            case 32: panelColumn(Width32.self, rows: rows, col: j, k: k, a: a, lda: lda, packed: packed, start: start,
                                 clampMode: clampMode, c: c, ldc: ldc, from: i)
            case 24: panelColumn(Width24.self, rows: rows, col: j, k: k, a: a, lda: lda, packed: packed, start: start,
                                 clampMode: clampMode, c: c, ldc: ldc, from: i)
            case 16: panelColumn(Width16.self, rows: rows, col: j, k: k, a: a, lda: lda, packed: packed, start: start,
                                 clampMode: clampMode, c: c, ldc: ldc, from: i)
            default: panelColumn(Width8.self, rows: rows, col: j, k: k, a: a, lda: lda, packed: packed, start: start,
                                 clampMode: clampMode, c: c, ldc: ldc, from: i)
            }
            j += w
        }
        i = rows
    }
}
