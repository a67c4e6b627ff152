#if canImport(Glibc)
import Glibc
#endif

/// Inference (`docs/FLOW.md`, "The flow"): forward to `z`, `ℓ = log p / C`, and the inverse,
/// on vectors split over the workers in chunks, with the condition shares cached.
extension ConditionalFlow {
    /// Workspaces of one worker thread: `a`, `b` (chunk × C, the current and next vectors),
    /// `r`, `q` (the subnet's layers), `logdet`; training's backward pass adds its gradient
    /// sums (`grads`, `carry`) and the slice's `dl`, `dy`, `dx`, `dq`, `dr`.
    final class Worker {
        let a = FloatBuffer(), b = FloatBuffer(), r = FloatBuffer(), q = FloatBuffer(), logdet = FloatBuffer()
        let grads = FloatBuffer(), carry = FloatBuffer(), dl = FloatBuffer()
        let dy = FloatBuffer(), dx = FloatBuffer(), dq = FloatBuffer(), dr = FloatBuffer()
        /// Grid column and row of each vector of a chunk (packed inference on a separable grid).
        var colOf: [Int32] = [], rowOf: [Int32] = []
    }

    /// Number of worker threads for `n` vectors (the BLAS thread setting, fewer for small
    /// batches); makes the missing workers.
    func workerCount(_ n: Int) -> Int {
        let w = max(1, min(engineThreadCount, n / ConditionalFlow.minRowsPerWorker))
        while workers.count < w { workers.append(Worker()) }
        return w
    }

    // MARK: - Condition shares

    /// Fills `share` (blocks × rows × hidden) with every block's condition share, rows split over workers.
    func computeShares(condTable: UnsafePointer<Float>, rows: Int, share: UnsafeMutablePointer<Float>) {
        let hidden = blocks[0].hidden
        let parts = max(1, min(engineThreadCount, rows / 64))
        let params = self.params.pointer, blocks = self.blocks
        runParallel(parts) { w in
            let range = partRange(w, of: parts, total: rows)
            if range.isEmpty { return }
            for (k, b) in blocks.enumerated() {
                b.conditionShare(params: params, condTable: condTable + range.lowerBound * b.condDim, rows: range.count,
                                 share: share + (k * rows + range.lowerBound) * hidden)
            }
        }
    }

    /// Condition shares of every block for `condTable`, reused while table and parameters are unchanged.
    /// `grid`: the table is the flow's positional condition of that size (`+Packed`), a cache
    /// hit without comparing it.
    func inferenceShares(condTable: UnsafePointer<Float>, condRows: Int,
                         grid: (height: Int, width: Int)? = nil) throws(BGADError) -> UnsafeMutablePointer<Float> {
        let hidden = blocks[0].hidden
        if condRows.multipliedReportingOverflow(by: blockCount * hidden).overflow {
            throw BGADError(.outOfMemory, "condition shares for \(condRows) rows do not fit in memory")
        }
        if sharesKey.holds(condTable, rows: condRows, dim: condDim, version: version, grid: grid) {
            return shareCache.pointer
        }
        sharesKey.invalidate()
        let share = try shareCache.reserve(blockCount * condRows * hidden)
        computeShares(condTable: condTable, rows: condRows, share: share)
        try sharesKey.record(condTable, rows: condRows, dim: condDim, version: version, grid: grid)
        return share
    }

    // MARK: - Inference

    /// Maps `count` vectors `x` to `z` (count × dim) and their per-vector `logdet`.
    public func forward(x: UnsafePointer<Float>, count: Int, condTable: UnsafePointer<Float>, condRows: Int,
                        condIndex: UnsafePointer<Int32>, z: UnsafeMutablePointer<Float>,
                        logdet: UnsafeMutablePointer<Float>) throws(BGADError) {
        try validate(x: x, count: count, condTable: condTable, condRows: condRows, condIndex: condIndex)
        try run(x, count: count, condTable: condTable, condRows: condRows, condIndex: condIndex,
                emit: copying(to: z, logdet: logdet))
    }

    /// ℓ = log p(x) / C for each of `count` row vectors x (count × dim, row-major).
    /// The condition row of vector i is `condTable[condIndex[i]]` (condTable: condRows × condDim).
    /// Using a table + index lets the first-layer share of the condition be computed once per
    /// position (and cached across calls while the table and the parameters are unchanged).
    public func logLikelihood(x: UnsafePointer<Float>, count: Int, condTable: UnsafePointer<Float>, condRows: Int,
                              condIndex: UnsafePointer<Int32>, ell: UnsafeMutablePointer<Float>) throws(BGADError) {
        try validate(x: x, count: count, condTable: condTable, condRows: condRows, condIndex: condIndex)
        let dim = self.dim
        try run(x, count: count, condTable: condTable, condRows: condRows, condIndex: condIndex) { start, n, zc, ld in
            ConditionalFlow.writeEll(dim: dim, z: zc, logdet: ld, count: n, ell: ell + start)
        }
    }

    /// Maps `count` latent vectors `z` back to `x`; `logdet` receives the log-determinant of
    /// the inverse map (the negative of the forward one at `x`).
    public func inverse(z: UnsafePointer<Float>, count: Int, condTable: UnsafePointer<Float>, condRows: Int,
                        condIndex: UnsafePointer<Int32>, x: UnsafeMutablePointer<Float>,
                        logdet: UnsafeMutablePointer<Float>) throws(BGADError) {
        try validate(x: z, count: count, condTable: condTable, condRows: condRows, condIndex: condIndex, name: "z")
        try run(z, count: count, condTable: condTable, condRows: condRows, condIndex: condIndex, inverse: true,
                emit: copying(to: x, logdet: logdet))
    }

    /// An `emit` for `run` that copies each chunk's vectors and log-determinants to `out` and `logdet`.
    private func copying(to out: UnsafeMutablePointer<Float>, logdet: UnsafeMutablePointer<Float>)
        -> (Int, Int, UnsafePointer<Float>, UnsafePointer<Float>) -> Void {
        let dim = self.dim
        return { start, n, v, ld in
            (out + start * dim).update(from: v, count: n * dim)
            (logdet + start).update(from: ld, count: n)
        }
    }

    /// ℓ_i = (−(C/2)·log 2π − ½‖z_i‖² + logdet_i) / C.
    static func writeEll(dim: Int, z: UnsafePointer<Float>, logdet: UnsafePointer<Float>, count n: Int,
                         ell: UnsafeMutablePointer<Float>) {
        let c = Float(dim)
        let base = -0.5 * c * Float(log(2 * Double.pi))
        for i in 0..<n {
            let zi = z + i * dim
            var acc = SIMD8<Float>(repeating: 0)
            var j = 0
            while j + 8 <= dim {
                let v = load8(zi + j)
                acc += v * v
                j += 8
            }
            var sq = acc.sum()
            while j < dim { sq += zi[j] * zi[j]; j += 1 }
            ell[i] = (base - 0.5 * sq + logdet[i]) / c
        }
    }

    /// Splits `count` vectors over the workers and reserves each worker's inference buffers
    /// for chunks of `cap` vectors; returns the number of parts and `cap`.
    private func reserveInferenceWorkers(_ count: Int) throws(BGADError) -> (parts: Int, cap: Int) {
        let parts = workerCount(count)
        let b0 = blocks[0]
        let hidden = b0.hidden, outDim = b0.outDim
        let cap = min(ConditionalFlow.chunk, (count + parts - 1) / parts)
        for w in 0..<parts {
            let wk = workers[w]
            try wk.a.reserve(cap * dim); try wk.b.reserve(cap * dim); try wk.r.reserve(cap * hidden)
            try wk.q.reserve(cap * max(outDim, 1)); try wk.logdet.reserve(cap)
        }
        return (parts, cap)
    }

    /// The inference pass over `count` vectors of `input`, through the blocks in order (x to
    /// z) or, when `inverse`, backwards (z to x): vectors split over workers, each in chunks;
    /// `emit(start, n, output, logdet)` receives each chunk's result (called concurrently for
    /// disjoint ranges). Forward on AVX-512 CPUs runs the packed products (`+Packed`), with
    /// the separable condition shares when the table has that form; `positionalGrid` says the
    /// table is the flow's own positional condition of that size (cache hits without
    /// comparing tables).
    func run(_ input: UnsafePointer<Float>, count: Int, condTable: UnsafePointer<Float>, condRows: Int,
             condIndex: UnsafePointer<Int32>, inverse: Bool = false, positionalGrid: (height: Int, width: Int)? = nil,
             emit: @escaping (Int, Int, UnsafePointer<Float>, UnsafePointer<Float>) -> Void) throws(BGADError) {
        if count == 0 { return }
        prepareAffine()
        let (parts, cap) = try reserveInferenceWorkers(count)
        let packed = inverse ? nil : try preparePacked()
        let grid = packed != nil && separableConditions
            ? try inferenceGridShares(condTable: condTable, condRows: condRows, grid: positionalGrid) : nil
        let shares = grid == nil
            ? try inferenceShares(condTable: condTable, condRows: condRows, grid: positionalGrid) : nil
        if grid != nil {
            for w in 0..<parts where workers[w].colOf.count < cap {
                workers[w].colOf = [Int32](repeating: 0, count: cap)
                workers[w].rowOf = workers[w].colOf
            }
        }
        let perBlock = blocks[0].packedCount
        let hidden = blocks[0].hidden, dim = self.dim
        let params = self.params.pointer, blocks = self.blocks, workers = self.workers
        runParallel(parts) { w in
            let wk = workers[w]
            let range = partRange(w, of: parts, total: count)
            var cur = wk.a.pointer, nxt = wk.b.pointer
            let r = wk.r.pointer, q = wk.q.pointer, ld = wk.logdet.pointer
            var start = range.lowerBound
            while start < range.upperBound {
                let n = min(cap, range.upperBound - start)
                cur.update(from: input + start * dim, count: n * dim)
                ld.update(repeating: 0, count: n)
                let idx = condIndex + start
                if let grid {
                    for i in 0..<n {
                        let row = Int(idx[i])
                        wk.colOf[i] = Int32(row % grid.grid.width)
                        wk.rowOf[i] = Int32(row / grid.grid.width)
                    }
                }
                for step in 0..<blocks.count {
                    let k = inverse ? blocks.count - 1 - step : step
                    let b = blocks[k], affine = self.foldedAffine(k)
                    if inverse {
                        let share = shares! + k * condRows * hidden
                        b.invertAffine(affine, params: params, wp: self.rotation(k), y: cur, count: n, u: nxt, logdet: ld)
                        b.subnet(params: params, x: nxt, count: n, share: share, index: idx, r: r, q: q)
                        b.uncouple(v: nxt, q: q, count: n, logdet: ld)
                    } else {
                        let pk = packed.map { $0 + k * perBlock }
                        if let grid, let pk {
                            let colPart = grid.parts + k * (grid.grid.width + grid.grid.height) * hidden
                            wk.colOf.withUnsafeBufferPointer { col in
                                wk.rowOf.withUnsafeBufferPointer { row in
                                    b.packedSubnet(params: params, x: cur, count: n, packed: pk,
                                                   colPart: colPart, colOf: col.baseAddress!,
                                                   rowPart: colPart + grid.grid.width * hidden, rowOf: row.baseAddress!,
                                                   r: r, q: q)
                                }
                            }
                        } else {
                            b.subnet(params: params, x: cur, count: n, share: shares! + k * condRows * hidden, index: idx,
                                     r: r, q: q, packed: pk)
                        }
                        b.couple(x: cur, q: q, count: n, logdet: ld)
                        b.applyAffine(affine, u: cur, count: n, y: nxt, logdet: ld, packed: pk)
                    }
                    swap(&cur, &nxt)
                }
                emit(start, n, cur, ld)
                start += n
            }
        }
    }
}
