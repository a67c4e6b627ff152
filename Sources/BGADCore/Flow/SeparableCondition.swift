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

/// A training batch's view of a separable condition table (`ConditionalFlow.separableBatch`):
/// the grid, copies of the table's column and row halves (the caller's table may change
/// before `backward`), and the grid column and row of each of the batch's used rows.
struct SeparableBatch {
    /// The table's grid.
    let grid: SeparableGrid
    /// `W × D/2` column halves (`c[:D/2]` of row `w`) and `H × D/2` row halves (`c[D/2:]` of row `h·W`).
    let colHalves: UnsafePointer<Float>, rowHalves: UnsafePointer<Float>
    /// Grid column and grid row of each used row.
    let colOf: UnsafePointer<Int32>, rowOf: UnsafePointer<Int32>
    /// Number of used rows.
    let rows: Int

    /// Scratch floats one block's `separableConditionShare` or `…Gradient` needs: `(W + H) × hidden`.
    func scratchSize(hidden: Int) -> Int { (grid.width + grid.height) * hidden }
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

    /// Condition shares of the used rows from a separable batch (`separableParts`), then `colPart = colHalves·W1c[:, :D/2]ᵀ`
    /// (W × hidden), `rowPart = rowHalves·W1c[:, D/2:]ᵀ + b1` (H × hidden), then
    /// `share[u] = colPart[colOf[u]] + rowPart[rowOf[u]]` for every used row `u`.
    func separableConditionShare(
        params: UnsafePointer<Float>, batch: SeparableBatch,
        scratch: UnsafeMutablePointer<Float>, share: UnsafeMutablePointer<Float>
    ) {
        let half = condDim / 2, grid = batch.grid
        let colPart = scratch, rowPart = scratch + grid.width * hidden
        separableParts(params: params, grid: grid, colHalves: batch.colHalves, colStride: half,
                       rowHalves: batch.rowHalves, rowStride: half, colPart: colPart, rowPart: rowPart)
        for u in 0..<batch.rows {
            let a = colPart + Int(batch.colOf[u]) * hidden, b = rowPart + Int(batch.rowOf[u]) * hidden
            let s = share + u * hidden
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

    /// `conditionGradient` for a separable batch: the per-row sums are summed per column and
    /// per row of the grid, then `dW1c[:, :D/2] = colSumᵀ·colHalves`,
    /// `dW1c[:, D/2:] = rowSumᵀ·rowHalves`; `db1 = Σ perRow`.
    func separableConditionGradient(
        perRow: UnsafePointer<Float>, batch: SeparableBatch,
        scratch: UnsafeMutablePointer<Float>, grads: UnsafeMutablePointer<Float>
    ) {
        let half = condDim / 2, grid = batch.grid
        let colSum = scratch, rowSum = scratch + grid.width * hidden
        scratch.update(repeating: 0, count: batch.scratchSize(hidden: hidden))
        for u in 0..<batch.rows {
            let g = perRow + u * hidden
            addInPlace(colSum + Int(batch.colOf[u]) * hidden, g, count: hidden)
            addInPlace(rowSum + Int(batch.rowOf[u]) * hidden, g, count: hidden)
        }
        sgemm(transA: true, m: hidden, n: half, k: grid.width, colSum, lda: hidden, batch.colHalves, ldb: half,
              beta: 0, grads + w1 + len1, ldc: inDim)
        sgemm(transA: true, m: hidden, n: half, k: grid.height, rowSum, lda: hidden, batch.rowHalves, ldb: half,
              beta: 0, grads + w1 + len1 + half, ldc: inDim)
        columnSums(perRow, stride: hidden, rows: batch.rows, cols: hidden, into: grads + b1)
    }
}

extension ConditionalFlow {
    /// Keeps what the separable path needs for the batch's `rows` used rows: the grid's
    /// column and row halves of the table (copied: the caller's table may change before
    /// `backward`) and each used row's grid column and row.
    func prepareGrid(_ grid: SeparableGrid, condTable: UnsafePointer<Float>, rows: Int) throws(BGADError) {
        let half = condDim / 2, hidden = blocks[0].hidden
        let halves = try tape.gridTable.reserve((grid.width + grid.height) * half)
        for w in 0..<grid.width { (halves + w * half).update(from: condTable + w * condDim, count: half) }
        let rowHalves = halves + grid.width * half
        for h in 0..<grid.height {
            (rowHalves + h * half).update(from: condTable + h * grid.width * condDim + half, count: half)
        }
        if tape.colOf.count < rows { tape.colOf = [Int32](repeating: 0, count: rows); tape.rowOf = tape.colOf }
        for u in 0..<rows {
            let r = Int(tape.usedRow[u])
            tape.colOf[u] = Int32(r % grid.width)
            tape.rowOf[u] = Int32(r / grid.width)
        }
        // One slice per block at most: the forward and backward passes split the blocks
        // over at most that many workers, whatever the thread setting is by then.
        try tape.gridScratch.reserve(blockCount * (grid.width + grid.height) * hidden)
        tape.grid = grid
    }

    /// The separable view of the taped batch's `rows` used rows, when `prepareGrid` made one.
    func separableBatch(rows: Int) -> SeparableBatch? {
        guard let grid = tape.grid else { return nil }
        let halves = tape.gridTable.pointer
        return SeparableBatch(grid: grid, colHalves: halves, rowHalves: halves + grid.width * (condDim / 2),
                              colOf: tape.colOf.withUnsafeBufferPointer { $0.baseAddress! },
                              rowOf: tape.rowOf.withUnsafeBufferPointer { $0.baseAddress! }, rows: rows)
    }

    /// `computeShares` on a separable batch, blocks split over workers.
    func computeSeparableShares(_ batch: SeparableBatch, share: UnsafeMutablePointer<Float>) {
        let hidden = blocks[0].hidden
        let parts = max(1, min(engineThreadCount, blockCount))
        let params = self.params.pointer, blocks = self.blocks, blockCount = self.blockCount
        let scratch = tape.gridScratch.pointer
        runParallel(parts) { w in
            var k = w
            while k < blockCount {
                blocks[k].separableConditionShare(params: params, batch: batch,
                                                  scratch: scratch + w * batch.scratchSize(hidden: hidden),
                                                  share: share + k * batch.rows * hidden)
                k += parts
            }
        }
    }
}
