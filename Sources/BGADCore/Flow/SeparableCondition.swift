#if canImport(Glibc)
import Glibc
#endif

/// Separable condition tables: the positional encoding of a `H × W` grid (row `h·W + w`)
/// holds `w`'s encoding in its first half and `h`'s in its second (`docs/FLOW.md`), so the
/// condition's share of a first layer splits as
///
/// `c·W1cᵀ + b1 = (c[:D/2]·W1c[:, :D/2]ᵀ)[w] + (c[D/2:]·W1c[:, D/2:]ᵀ + b1)[h]`
///
/// — `W + H` rows to multiply instead of one per position — and its weight gradient as
/// `dW1c[:, :D/2] = Σ_w (Σ_h g[h, w])ᵀ·c_w`, `dW1c[:, D/2:] = Σ_h (Σ_w g[h, w])ᵀ·c_h`.
/// At 64 × 64 this removes most of a training step's condition work (40× fewer rows).
///
/// Any table is accepted by the flow; this structure is detected (exactly, bit for bit) on
/// the rows a batch uses, and the general per-row path is taken when it is absent.
struct SeparableGrid {
    /// Grid width `W` (row `r` is at `h = r / W`, `w = r % W`).
    let width: Int
    /// Grid height `H` = table rows / `W`.
    let height: Int

    /// The grid of `table` (`rows × dim`, row-major) if, for every row `r` in `used`, the
    /// first `dim/2` values of row `r` equal those of row `r % W` and the last `dim/2`
    /// those of row `(r / W)·W`; the smallest such `W` dividing `rows`, or nil.
    static func detect(table: UnsafePointer<Float>, rows: Int, dim: Int,
                       used: UnsafePointer<Int32>, usedCount: Int) -> SeparableGrid? {
        guard dim >= 2, dim % 2 == 0, rows >= 1, usedCount >= 1 else { return nil }
        let half = dim / 2, bytes = half * MemoryLayout<Float>.stride
        var w = 1
        while w <= rows {
            defer { w += 1 }
            if rows % w != 0 { continue }
            var ok = true
            for u in 0..<usedCount {
                let r = Int(used[u])
                let row = table + r * dim
                if memcmp(row, table + (r % w) * dim, bytes) != 0
                    || memcmp(row + half, table + (r / w) * w * dim + half, bytes) != 0 {
                    ok = false
                    break
                }
            }
            if ok { return SeparableGrid(width: w, height: rows / w) }
        }
        return nil
    }
}

extension CouplingBlock {
    /// The two parts of a separable grid's condition shares: `colPart = colHalves·W1c[:, :D/2]ᵀ`
    /// (W × hidden) and `rowPart = rowHalves·W1c[:, D/2:]ᵀ + b1` (H × hidden), so that
    /// position (h, w)'s share is `colPart[w] + rowPart[h]`. `colHalves`/`rowHalves` hold the
    /// grid's column and row halves of the table with row strides `colStride`/`rowStride`.
    func separableParts(
        params: UnsafePointer<Float>, grid: SeparableGrid,
        colHalves: UnsafePointer<Float>, colStride: Int, rowHalves: UnsafePointer<Float>, rowStride: Int,
        colPart: UnsafeMutablePointer<Float>, rowPart: UnsafeMutablePointer<Float>
    ) {
        let half = condDim / 2
        sgemm(transB: true, m: grid.width, n: hidden, k: half, colHalves, lda: colStride, params + w1 + len1, ldb: inDim,
              beta: 0, colPart, ldc: hidden)
        for h in 0..<grid.height { (rowPart + h * hidden).update(from: params + b1, count: hidden) }
        sgemm(transB: true, m: grid.height, n: hidden, k: half, rowHalves, lda: rowStride, params + w1 + len1 + half,
              ldb: inDim, beta: 1, rowPart, ldc: hidden)
    }

    /// Condition shares of the used rows from a separable grid (`separableParts`), then
    /// `share[u] = colPart[colOf[u]] + rowPart[rowOf[u]]` for `rows` used rows.
    func separableConditionShare(
        params: UnsafePointer<Float>, grid: SeparableGrid, colHalves: UnsafePointer<Float>, rowHalves: UnsafePointer<Float>,
        colOf: UnsafePointer<Int32>, rowOf: UnsafePointer<Int32>, rows: Int,
        scratch: UnsafeMutablePointer<Float>, share: UnsafeMutablePointer<Float>
    ) {
        let half = condDim / 2
        let colPart = scratch, rowPart = scratch + grid.width * hidden
        separableParts(params: params, grid: grid, colHalves: colHalves, colStride: half, rowHalves: rowHalves,
                       rowStride: half, colPart: colPart, rowPart: rowPart)
        for u in 0..<rows {
            let a = colPart + Int(colOf[u]) * hidden, b = rowPart + Int(rowOf[u]) * hidden, s = share + u * hidden
            var j = 0
            while j + 8 <= hidden {
                store8(load8(a + j) + load8(b + j), s + j)
                j += 8
            }
            while j < hidden {
                s[j] = a[j] + b[j]
                j += 1
            }
        }
    }

    /// `conditionGradient` for a separable grid: the per-row sums are summed per column and
    /// per row of the grid, then `dW1c[:, :D/2] = colSumᵀ·colHalves`,
    /// `dW1c[:, D/2:] = rowSumᵀ·rowHalves`; `db1 = Σ perRow`.
    func separableConditionGradient(
        perRow: UnsafePointer<Float>, grid: SeparableGrid, colHalves: UnsafePointer<Float>, rowHalves: UnsafePointer<Float>,
        colOf: UnsafePointer<Int32>, rowOf: UnsafePointer<Int32>, rows: Int,
        scratch: UnsafeMutablePointer<Float>, grads: UnsafeMutablePointer<Float>
    ) {
        let half = condDim / 2
        let colSum = scratch, rowSum = scratch + grid.width * hidden
        scratch.update(repeating: 0, count: (grid.width + grid.height) * hidden)
        for u in 0..<rows {
            let g = perRow + u * hidden
            addInPlace(colSum + Int(colOf[u]) * hidden, g, count: hidden)
            addInPlace(rowSum + Int(rowOf[u]) * hidden, g, count: hidden)
        }
        sgemm(transA: true, m: hidden, n: half, k: grid.width, colSum, lda: hidden, colHalves, ldb: half,
              beta: 0, grads + w1 + len1, ldc: inDim)
        sgemm(transA: true, m: hidden, n: half, k: grid.height, rowSum, lda: hidden, rowHalves, ldb: half,
              beta: 0, grads + w1 + len1 + half, ldc: inDim)
        columnSums(perRow, stride: hidden, rows: rows, cols: hidden, into: grads + b1)
    }
}
