#if canImport(Glibc)
import Glibc
#endif

/// Training (`docs/FLOW.md`, "The flow"): the forward pass with a tape, the hand-written
/// backward pass into every trainable tensor and the input, and the optimiser step.
extension ConditionalFlow {
    /// The training tape: what `forwardForTraining` keeps for `backward`, valid until the
    /// parameters change (`version`). Its buffers are reused from step to step.
    final class Tape {
        /// Per block x (n·C), r (n·hid), tanh (n·len2), exp (n·len2), u (n·C), then z (n·C) (`tapeStride`).
        let values = FloatBuffer()
        /// The batch's used condition rows (renumbered in order of first use), copied.
        let table = FloatBuffer()
        /// Renumbered condition row of each sorted vector (non-decreasing).
        var index: [Int32] = []
        /// Original position of each sorted vector.
        var perm: [Int32] = []
        /// Counting sort's scratch: table row → renumbered row (−1 between calls), rows' starts.
        var rowMap: [Int32] = [], rowStart: [Int] = []
        /// Original table row of each used (renumbered) row.
        var usedRow: [Int32] = []
        /// Every block's condition share of the used rows (blocks × rows × hidden).
        let share = FloatBuffer()
        /// Per block and used row, the sum of dL/d(first-layer pre-activation) (`backward`).
        let perRow = FloatBuffer()
        /// Per-vector log-determinants of the forward pass.
        let logdet = FloatBuffer()
        /// Vectors, used rows and worker slices of the taped batch; the parameter version it
        /// was taken at (−1: none).
        var count = 0, rows = 0, workers = 1, version = -1
        /// The separable grid of the batch's rows, when that path is taken (`prepareGrid`):
        /// the table's column halves (W × D/2) then row halves (H × D/2), each used row's grid
        /// column and row, and the per-block scratch.
        var grid: SeparableGrid?
        let gridTable = FloatBuffer()
        var colOf: [Int32] = [], rowOf: [Int32] = []
        let gridScratch = FloatBuffer()
    }

    /// Per-block tape layout for `n` vectors: x (n·C), r (n·hid), tanh (n·len2), exp (n·len2), u (n·C).
    func tapeStride(_ n: Int) -> Int {
        let b = blocks[0]
        return n * (2 * dim + b.hidden + 2 * b.len2)
    }

    /// Same as `logLikelihood`, but keeps what `backward` needs (training). The inputs are
    /// copied, so the caller's buffers may change before `backward`.
    public func forwardForTraining(x: UnsafePointer<Float>, count: Int, condTable: UnsafePointer<Float>, condRows: Int,
                                   condIndex: UnsafePointer<Int32>, ell: UnsafeMutablePointer<Float>) throws(BGADError) {
        try validate(x: x, count: count, condTable: condTable, condRows: condRows, condIndex: condIndex)
        guard count >= 1 else { throw .invalid("training needs at least one vector, got 0") }
        let n = count
        let perVector = tapeStride(1) * blockCount + dim
        if n.multipliedReportingOverflow(by: perVector).overflow {
            throw BGADError(.outOfMemory, "a training tape for \(n) vectors does not fit in memory")
        }
        prepareAffine()
        tape.version = -1
        let b0 = blocks[0]
        let hidden = b0.hidden, len2 = b0.len2, dim = self.dim
        let step = tapeStride(n)
        let t = try tape.values.reserve(blockCount * step + n * dim)
        let rows = try sortByConditionRow(condIndex: condIndex, count: n, condTable: condTable, condRows: condRows)
        let table = tape.table.pointer
        let index = tape.index.withUnsafeBufferPointer { $0.baseAddress! }
        let perm = tape.perm.withUnsafeBufferPointer { $0.baseAddress! }
        let share = try tape.share.reserve(blockCount * rows * hidden)
        tape.grid = nil
        if separableConditions {
            let grid = tape.usedRow.withUnsafeBufferPointer {
                SeparableGrid.detect(table: condTable, rows: condRows, dim: condDim, used: $0.baseAddress!, usedCount: rows)
            }
            // Worth it when the grid has fewer rows and columns than the batch has positions.
            if let grid, grid.width + grid.height < rows {
                try prepareGrid(grid, condTable: condTable, rows: rows)
            }
        }
        if let separable = separableBatch(rows: rows) {
            computeSeparableShares(separable, share: share)
        } else {
            computeShares(condTable: table, rows: rows, share: share)
        }
        let parts = workerCount(n)
        for w in 0..<parts { try workers[w].q.reserve((n / parts + 1) * max(b0.outDim, 1)) }
        let ld = try tape.logdet.reserve(n)
        let params = self.params.pointer, blocks = self.blocks, workers = self.workers
        let blockCount = self.blockCount
        runParallel(parts) { w in
            let range = partRange(w, of: parts, total: n)
            let m = range.count, o = range.lowerBound
            if m == 0 { return }
            let q = workers[w].q.pointer, ldw = ld + o
            ldw.update(repeating: 0, count: m)
            for p in o..<(o + m) { (t + p * dim).update(from: x + Int(perm[p]) * dim, count: dim) }
            for (k, b) in blocks.enumerated() {
                let xb = t + k * step
                let r = xb + n * dim, th = r + n * hidden, ex = th + n * len2, u = ex + n * len2
                let next = t + (k + 1) * step   // the next block's x (or z after the last block)
                b.subnet(params: params, x: xb + o * dim, count: m, share: share + k * rows * hidden,
                         index: index + o, r: r + o * hidden, q: q)
                (u + o * dim).update(from: xb + o * dim, count: m * dim)
                b.couple(x: u + o * dim, q: q, count: m, logdet: ldw, tanhOut: th + o * len2, expOut: ex + o * len2)
                b.applyAffine(self.foldedAffine(k), u: u + o * dim, count: m, y: next + o * dim, logdet: ldw)
            }
            let ellw = workers[w].q.pointer   // q is free now
            ConditionalFlow.writeEll(dim: dim, z: t + blockCount * step + o * dim, logdet: ldw, count: m, ell: ellw)
            for i in 0..<m { ell[Int(perm[o + i])] = ellw[i] }
        }
        tape.count = n
        tape.rows = rows
        tape.workers = parts
        tape.version = version
    }

    /// Keeps only the condition rows the batch's `n` vectors use (renumbered in order of first
    /// use; copied to `tape.table`, their table rows in `tape.usedRow`) and orders the vectors by
    /// condition row with a counting sort (`tape.perm`: original position of each sorted vector,
    /// `tape.index`: its renumbered row, non-decreasing): the condition's first-layer work and
    /// weight gradient then scale with the number of rows, and the per-row gradient sums are
    /// written row after row, with no scatter. Returns the number of used rows.
    private func sortByConditionRow(condIndex: UnsafePointer<Int32>, count n: Int, condTable: UnsafePointer<Float>,
                                    condRows: Int) throws(BGADError) -> Int {
        let condDim = self.condDim
        if tape.index.count < n { tape.index = [Int32](repeating: 0, count: n); tape.perm = tape.index }
        if tape.rowMap.count < condRows { tape.rowMap = [Int32](repeating: -1, count: condRows) }
        if tape.rowStart.count < min(condRows, n) + 1 { tape.rowStart = [Int](repeating: 0, count: min(condRows, n) + 1) }
        if tape.usedRow.count < min(condRows, n) { tape.usedRow = [Int32](repeating: 0, count: min(condRows, n)) }
        var used = 0
        let table = try tape.table.reserve(min(condRows, n) * condDim)
        tape.usedRow.withUnsafeMutableBufferPointer { usedRowBuffer in
            let usedRow = usedRowBuffer.baseAddress!
            tape.rowMap.withUnsafeMutableBufferPointer { map in
                tape.index.withUnsafeMutableBufferPointer { idx in
                    tape.perm.withUnsafeMutableBufferPointer { perm in
                        tape.rowStart.withUnsafeMutableBufferPointer { start in
                            for i in 0..<n {
                                let r = Int(condIndex[i])
                                if map[r] < 0 {
                                    map[r] = Int32(used)
                                    usedRow[used] = Int32(r)
                                    (table + used * condDim).update(from: condTable + r * condDim, count: condDim)
                                    start[used] = 0
                                    used += 1
                                }
                                start[Int(map[r])] += 1
                            }
                            var acc = 0
                            for r in 0..<used { let c = start[r]; start[r] = acc; acc += c }
                            for i in 0..<n {
                                let r = Int(map[Int(condIndex[i])])
                                let p = start[r]
                                start[r] = p + 1
                                perm[p] = Int32(i)
                                idx[p] = Int32(r)
                            }
                            for i in 0..<n { map[Int(condIndex[i])] = -1 }
                        }
                    }
                }
            }
        }
        return used
    }

    /// Backward of the last `forwardForTraining`, given dLoss/dℓ for each vector; OVERWRITES
    /// the stored parameter gradients (read them with `parameterGradient(_:)`) and the input
    /// gradient (`inputGradient`).
    public func backward(gradEll: UnsafePointer<Float>) throws(BGADError) {
        guard tape.count > 0, tape.version == version else {
            throw .invalid("backward needs a forwardForTraining after the last parameter change")
        }
        let n = tape.count, rows = tape.rows, parts = tape.workers
        if let i = firstNonFinite(gradEll, count: n) { throw .invalid("gradEll: element \(i) is \(gradEll[i])") }
        let b0 = blocks[0]
        let hidden = b0.hidden, len2 = b0.len2, outDim = b0.outDim, dim = self.dim
        let step = tapeStride(n)
        let t = tape.values.pointer
        let slice = (n + parts - 1) / parts
        for w in 0..<parts {
            let wk = workers[w]
            try wk.dl.reserve(slice); try wk.dy.reserve(slice * dim); try wk.dx.reserve(slice * dim)
            try wk.dq.reserve(slice * max(outDim, 1)); try wk.dr.reserve(slice * hidden)
            try wk.grads.reserve(trainableCount)
            try wk.carry.reserve(blockCount * hidden)
        }
        let perRow = try tape.perRow.reserve(blockCount * rows * hidden)
        let perm = tape.perm.withUnsafeBufferPointer { $0.baseAddress! }
        let gx = try inputGrad.reserve(n * dim)
        let params = self.params.pointer, blocks = self.blocks, workers = self.workers
        let blockCount = self.blockCount
        let index = tape.index.withUnsafeBufferPointer { $0.baseAddress! }
        runParallel(parts) { w in
            let range = partRange(w, of: parts, total: n)
            let m = range.count, o = range.lowerBound
            if m == 0 { return }
            let wk = workers[w]
            // A first condition row shared with the previous slice is summed into `carry`.
            let continued = o > 0 && index[o] == index[o - 1]
            // ℓ = log p / C: d log p = gradEll / C; dz = −z·d log p; every block's logdet gets d log p.
            let dl = wk.dl.pointer
            for i in 0..<m { dl[i] = gradEll[Int(perm[o + i])] / Float(dim) }
            var dy = wk.dy.pointer, dx = wk.dx.pointer
            let z = t + blockCount * step + o * dim
            for i in 0..<m {
                for j in 0..<dim { dy[i * dim + j] = -dl[i] * z[i * dim + j] }
            }
            for k in stride(from: blockCount - 1, through: 0, by: -1) {
                let b = blocks[k]
                let xb = t + k * step
                let r = xb + n * dim, th = r + n * hidden, ex = th + n * len2, u = ex + n * len2
                b.backward(params: params, wp: self.rotation(k), affine: self.foldedAffine(k),
                           count: m, index: index + o, dy: dy, dLogdet: dl,
                           x: xb + o * dim, r: r + o * hidden, th: th + o * len2, ex: ex + o * len2, u: u + o * dim,
                           grads: wk.grads.pointer, perRow: perRow + k * rows * hidden,
                           carry: continued ? wk.carry.pointer + k * hidden : nil, dx: dx,
                           dq: wk.dq.pointer, dr: wk.dr.pointer)
                swap(&dy, &dx)
            }
            for i in 0..<m { (gx + Int(perm[o + i]) * dim).update(from: dy + i * dim, count: dim) }
        }
        // Reduce: parameter gradients summed over workers, then the condition part per block
        // from the per-row sums (one GEMM per block over the distinct condition rows).
        let g = grads.pointer, total = trainableCount
        runSlices(total: total, minimum: 65536, maxParts: parts) { range in
            let o = range.lowerBound
            (g + o).update(from: workers[0].grads.pointer + o, count: range.count)
            for w in 1..<max(parts, 1) { addInPlace(g + o, workers[w].grads.pointer + o, count: range.count) }
        }
        let table = tape.table.pointer
        // `prepareGrid` sized the scratch for one slice per block.
        let separable = separableBatch(rows: rows), scratch = tape.gridScratch.pointer
        let blockParts = min(parts, blockCount)
        runParallel(blockParts) { w in
            var k = w
            while k < blockCount {
                let sum = perRow + k * rows * hidden
                for v in 1..<max(parts, 1) {
                    let o = partRange(v, of: parts, total: n).lowerBound
                    if o > 0 && o < n && index[o] == index[o - 1] {
                        addInPlace(sum + Int(index[o]) * hidden, workers[v].carry.pointer + k * hidden, count: hidden)
                    }
                }
                if let separable {
                    blocks[k].separableConditionGradient(
                        perRow: sum, batch: separable, scratch: scratch + w * separable.scratchSize(hidden: hidden), grads: g)
                } else {
                    blocks[k].conditionGradient(perRow: sum, condTable: table, rows: rows, grads: g)
                }
                k += blockParts
            }
        }
        inputGradCount = n
        gradientsValid = true
    }

    /// dL/dx of the last `backward`, `count × dim` row-major.
    public var inputGradient: [Float] {
        Array(UnsafeBufferPointer(start: inputGrad.pointer, count: inputGradCount * dim))
    }

    /// One Adam step (PyTorch's rule: betas 0.9/0.999, eps 1e-8, no weight decay, bias
    /// correction) on the stored gradients, with this flow's own optimiser state (`Adam`).
    /// Does nothing when no gradient has been computed yet.
    public func adamStep(learningRate: Float) {
        guard gradientsValid else { return }
        adam.step(parameters: params.pointer, gradients: grads.pointer, learningRate: learningRate)
        version += 1
    }

    /// Phase-1 training step: forward, loss (`objective`, by default BGAD's phase-1
    /// `L_ml = −mean(log sigmoid(ℓ))`), backward, one Adam step. Returns the loss before the update.
    @discardableResult
    public func trainStep(x: UnsafePointer<Float>, count: Int, condTable: UnsafePointer<Float>, condRows: Int,
                          condIndex: UnsafePointer<Int32>, learningRate: Float,
                          objective: FlowObjective = .phaseOne) throws(BGADError) -> Float {
        guard learningRate.isFinite, learningRate >= 0 else { throw .invalid("learning rate must be finite and ≥ 0, got \(learningRate)") }
        let loss = try computeGradients(x: x, count: count, condTable: condTable, condRows: condRows,
                                        condIndex: condIndex, objective: objective)
        // A non-finite loss or gradient would make every parameter NaN through Adam: refuse the
        // step and leave the parameters and the optimizer state as they were.
        guard loss.isFinite else {
            throw .invalid("the loss is not finite (\(loss)); the step was not taken — check the input scale or lower the learning rate")
        }
        if let bad = firstNonFinite(grads.pointer, count: trainableCount) {
            throw .invalid("gradient entry \(bad) is not finite; the step was not taken — check the input scale or lower the learning rate")
        }
        adamStep(learningRate: learningRate)
        return loss
    }

    /// Forward and backward of `objective` without updating the parameters; returns the loss.
    /// The gradients are then read with `parameterGradient(_:)` and `inputGradient`.
    public func computeGradients(x: UnsafePointer<Float>, count: Int, condTable: UnsafePointer<Float>, condRows: Int,
                                 condIndex: UnsafePointer<Int32>, objective: FlowObjective = .phaseOne) throws(BGADError) -> Float {
        guard count >= 1 else { throw .invalid("training needs at least one vector, got 0") }
        if lossEll.count < count { lossEll = [Float](repeating: 0, count: count) }
        try lossEll.withUnsafeMutableBufferPointer { (e) throws(BGADError) in
            try forwardForTraining(x: x, count: count, condTable: condTable, condRows: condRows, condIndex: condIndex, ell: e.baseAddress!)
        }
        let loss = objective.loss(ell: Array(lossEll[0..<count]), dim: dim, gradEll: &lossGrad)
        try lossGrad.withUnsafeBufferPointer { (g) throws(BGADError) in try backward(gradEll: g.baseAddress!) }
        return loss
    }
}
