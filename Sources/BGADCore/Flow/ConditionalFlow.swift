#if canImport(Glibc)
import Glibc
#endif

/// A conditional normalizing flow: `blocks` coupling blocks (`CouplingBlock`) applied in
/// sequence, each conditioned on the same `condDim`-dimensional condition (`docs/FLOW.md`).
///
/// `z = block_B(…block_1(x, c)…, c)`, `logdet = Σ logdet_b`,
/// `log p(x) = −(C/2)·log(2π) − ½‖z‖² + logdet`, `ℓ = log p(x) / C`.
///
/// Conditions are passed as a table of distinct rows plus a per-vector index, so that the
/// condition's share of every first layer is computed once per row (per position), and at
/// inference once per model (it is cached until the parameters or the table change).
///
/// Parameters are Float32: W1, b1, W2, b2, g (global scale, pre-activation), o (global
/// offset) per block are trained; the rotation Wp of each block is fixed at construction
/// (Haar-distributed, det +1, from `seed`). Not thread-safe.
public final class ConditionalFlow {
    /// Input width `C`.
    public let dim: Int
    /// Condition width `D`.
    public let condDim: Int
    /// Number of coupling blocks.
    public let blockCount: Int
    /// Clamp α of the coupling log-scale.
    public let clamp: Float
    /// Geometry of each block.
    public let blocks: [CouplingBlock]
    /// Number of trainable floats.
    public let trainableCount: Int

    /// Rows a worker processes at once at inference (bounds the workspaces).
    static let chunk = 512
    /// Fewest vectors per worker thread worth a thread of its own. Small: one image's grid
    /// (256 vectors at stride 16) is scored on all workers. A batch left to a single part
    /// would run its products on OpenBLAS's own threads instead, which then spin
    /// (`sched_yield`) beside the engine's workers through the next parallel region.
    static let minRowsPerWorker = 64

    let params: FloatBuffer      // trainable, flat
    let grads: FloatBuffer       // same layout
    let adamM: FloatBuffer, adamV: FloatBuffer
    var adamSteps = 0
    let rotations: FloatBuffer   // blockCount × C × C
    var version = 0              // bumped whenever parameters change

    // Per-call affine folding: M_b = diag(σ_b)·Wp_bᵀ, ob_b = o_b·Wp_bᵀ, σ_b, Σ log σ_b.
    let affineM: FloatBuffer, affineOb: FloatBuffer, sigmas: FloatBuffer
    var logSigmaSums: [Float]
    var affineVersion = -1

    // Inference on AVX-512 CPUs: per block W1xᵀ (len1 × hidden), W2ᵀ (hidden × outDim) and
    // M_b (C × C) packed for `packedGemm`, at `packedVersion` (empty until first needed).
    let packedWeights = FloatBuffer()
    var packedVersion = -1

    /// Workspaces of one worker thread.
    final class Worker {
        let a = FloatBuffer(), b = FloatBuffer(), r = FloatBuffer(), q = FloatBuffer(), logdet = FloatBuffer()
        let grads = FloatBuffer(), carry = FloatBuffer(), dl = FloatBuffer()
        let dy = FloatBuffer(), dx = FloatBuffer(), dq = FloatBuffer(), dr = FloatBuffer()
        /// Grid column and row of each vector of a chunk (inference on a separable grid).
        var colOf: [Int32] = [], rowOf: [Int32] = []
    }
    var workers: [Worker] = [Worker()]

    // Cached condition shares for inference.
    let shareCache = FloatBuffer(), cachedTable = FloatBuffer()
    var cachedRows = -1, cachedVersion = -1

    // Cached separable condition shares for the packed inference: per block the grid's
    // column part (W × hidden) then its row part (H × hidden), for `gridTable`.
    let gridShares = FloatBuffer(), gridTable = FloatBuffer()
    var gridRows = -1, gridVersion = -1, inferenceGrid: SeparableGrid?

    // The positional condition of the last grid size scored (`logLikelihood(x:gridHeight:…)`):
    // table, identity index, and the size the share caches were last built for (nil: a
    // caller's table, checked by content).
    var positional: (height: Int, width: Int, table: [Float], index: [Int32])?
    var gridSharesFor: (height: Int, width: Int)?, sharesFor: (height: Int, width: Int)?

    // Training tape (valid after forwardForTraining until backward or a parameter change).
    let tape = FloatBuffer()
    let tapeTable = FloatBuffer()
    var tapeIndex: [Int32] = []      // condition row of each sorted vector (non-decreasing)
    var tapePerm: [Int32] = []       // original position of each sorted vector
    var rowMap: [Int32] = []
    var rowStart: [Int] = []
    let tapePerRow = FloatBuffer()
    var tapeCount = 0, tapeRows = 0, tapeVersion = -1, tapeWorkers = 1
    let trainShare = FloatBuffer()
    /// Use the separable form of the condition when the batch's rows have it
    /// (`SeparableGrid`: a positional encoding); on by default. The results agree with the
    /// general path to rounding.
    public var separableConditions = true
    var tapeGrid: SeparableGrid?
    var tapeUsedRow: [Int32] = []    // original table row of each used (renumbered) row
    var tapeColOf: [Int32] = [], tapeRowOf: [Int32] = []
    let tapeGridTable = FloatBuffer()   // W × D/2 column halves, then H × D/2 row halves
    let gridScratch = FloatBuffer()
    let tapeLogdet = FloatBuffer()
    /// dL/dx of the last `backward` (count × dim).
    let inputGrad = FloatBuffer()
    var inputGradCount = 0
    var gradientsValid = false
    var lossEll: [Float] = [], lossGrad: [Float] = []

    /// Creates a flow with FrEIA's initialisation: W, b uniform in ±1/√fan_in, g = 2·ln(e⁵−1)
    /// (σ = 1), o = 0, Wp a Haar rotation; all drawn from `seed` in a fixed order.
    public convenience init(dim: Int, condDim: Int = 128, blocks: Int = 8, clamp: Float = 1.9, seed: UInt64 = 0) throws(BGADError) {
        try self.init(dim: dim, condDim: condDim, blocks: blocks, clamp: clamp, drawingFrom: seed)
    }

    /// Creates a flow whose every tensor (rotations included) is about to be set from stored
    /// values (`setParameter`): nothing is drawn — no O(C³) Haar rotations that would be
    /// overwritten — and every parameter is zero until set.
    static func forStoredParameters(dim: Int, condDim: Int, blocks: Int, clamp: Float) throws(BGADError) -> ConditionalFlow {
        try ConditionalFlow(dim: dim, condDim: condDim, blocks: blocks, clamp: clamp, drawingFrom: nil)
    }

    /// The flow's geometry and buffers; with a `seed`, FrEIA's initialisation drawn from it,
    /// without one all zeros.
    private init(dim: Int, condDim: Int, blocks: Int, clamp: Float, drawingFrom seed: UInt64?) throws(BGADError) {
        guard dim >= 2 else { throw .invalid("flow dim must be ≥ 2, got \(dim)") }
        guard dim <= 8192 else { throw .invalid("flow dim must be ≤ 8192, got \(dim)") }
        guard condDim >= 1, condDim <= 8192 else { throw .invalid("flow condDim must be in 1...8192, got \(condDim)") }
        guard blocks >= 1, blocks <= 256 else { throw .invalid("flow blocks must be in 1...256, got \(blocks)") }
        guard clamp.isFinite, clamp > 0 else { throw .invalid("flow clamp must be finite and > 0, got \(clamp)") }
        self.dim = dim
        self.condDim = condDim
        self.blockCount = blocks
        self.clamp = clamp
        var list: [CouplingBlock] = []
        var offset = 0
        for _ in 0..<blocks {
            let b = CouplingBlock(dim: dim, condDim: condDim, clamp: clamp, offset: offset)
            list.append(b)
            offset += b.trainableCount
        }
        self.blocks = list
        trainableCount = offset
        params = try FloatBuffer(capacity: offset)
        grads = try FloatBuffer(capacity: offset)
        adamM = try FloatBuffer(capacity: offset)
        adamV = try FloatBuffer(capacity: offset)
        rotations = try FloatBuffer(capacity: blocks * dim * dim)
        affineM = try FloatBuffer(capacity: blocks * dim * dim)
        affineOb = try FloatBuffer(capacity: blocks * dim)
        sigmas = try FloatBuffer(capacity: blocks * dim)
        logSigmaSums = [Float](repeating: 0, count: blocks)

        guard let seed else { return }
        var rng = SeededRandom(seed: seed)
        let p = params.pointer
        let gInit = Float(2 * log(exp(5.0) - 1))
        for (k, b) in list.enumerated() {
            let bound1 = 1 / Double(b.inDim).squareRoot()
            for i in 0..<(b.hidden * b.inDim) { p[b.w1 + i] = Float(rng.uniform(bound: bound1)) }
            for i in 0..<b.hidden { p[b.b1 + i] = Float(rng.uniform(bound: bound1)) }
            let bound2 = 1 / Double(b.hidden).squareRoot()
            for i in 0..<(b.outDim * b.hidden) { p[b.w2 + i] = Float(rng.uniform(bound: bound2)) }
            for i in 0..<b.outDim { p[b.b2 + i] = Float(rng.uniform(bound: bound2)) }
            for i in 0..<dim { p[b.g + i] = gInit; p[b.o + i] = 0 }
            let q = haarRotation(dim: dim, random: &rng)
            (rotations.pointer + k * dim * dim).update(from: q, count: dim * dim)
        }
    }

    // MARK: - Validation and shared preparation

    func validate(x: UnsafePointer<Float>, count: Int, condTable: UnsafePointer<Float>, condRows: Int,
                  condIndex: UnsafePointer<Int32>, name: String = "x") throws(BGADError) {
        guard count >= 0 else { throw .invalid("count must be ≥ 0, got \(count)") }
        guard condRows >= 1 else { throw .invalid("condRows must be ≥ 1, got \(condRows)") }
        let (total, overflow) = count.multipliedReportingOverflow(by: dim)
        if overflow { throw .invalid("\(name): \(count) × \(dim) overflows") }
        let (tableTotal, overflow2) = condRows.multipliedReportingOverflow(by: condDim)
        if overflow2 { throw .invalid("cond: \(condRows) × \(condDim) overflows") }
        if let i = firstNonFinite(x, count: total) {
            throw .invalid("\(name): element \(i) (vector \(i / dim), channel \(i % dim)) is \(x[i])")
        }
        if let i = firstNonFinite(condTable, count: tableTotal) {
            throw .invalid("cond: element \(i) (row \(i / condDim), channel \(i % condDim)) is \(condTable[i])")
        }
        for i in 0..<count {
            let r = condIndex[i]
            if r < 0 || Int(r) >= condRows {
                throw .invalid("condIndex[\(i)] = \(r) is outside 0..<\(condRows)")
            }
        }
    }

    func prepareAffine() {
        if affineVersion == version { return }
        for (k, b) in blocks.enumerated() {
            logSigmaSums[k] = b.prepareAffine(
                params: params.pointer, wp: rotations.pointer + k * dim * dim,
                m: affineM.pointer + k * dim * dim, ob: affineOb.pointer + k * dim, sigma: sigmas.pointer + k * dim)
        }
        affineVersion = version
    }

    /// Number of worker threads for `n` vectors (the BLAS thread setting, fewer for small batches).
    func workerCount(_ n: Int) -> Int {
        let w = max(1, min(engineThreadCount, n / ConditionalFlow.minRowsPerWorker))
        while workers.count < w { workers.append(Worker()) }
        return w
    }

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

    /// Keeps what the separable path needs for the batch's `rows` used rows: the grid's
    /// column and row halves of the table (copied: the caller's table may change before
    /// `backward`) and each used row's grid column and row.
    func prepareGrid(_ grid: SeparableGrid, condTable: UnsafePointer<Float>, rows: Int) throws(BGADError) {
        let half = condDim / 2, hidden = blocks[0].hidden
        let halves = try tapeGridTable.reserve((grid.width + grid.height) * half)
        for w in 0..<grid.width { (halves + w * half).update(from: condTable + w * condDim, count: half) }
        let rowHalves = halves + grid.width * half
        for h in 0..<grid.height {
            (rowHalves + h * half).update(from: condTable + h * grid.width * condDim + half, count: half)
        }
        if tapeColOf.count < rows { tapeColOf = [Int32](repeating: 0, count: rows); tapeRowOf = tapeColOf }
        for u in 0..<rows {
            let r = Int(tapeUsedRow[u])
            tapeColOf[u] = Int32(r % grid.width)
            tapeRowOf[u] = Int32(r / grid.width)
        }
        // One slice per block at most: the forward and backward passes split the blocks
        // over at most that many workers, whatever the thread setting is by then.
        try gridScratch.reserve(blockCount * (grid.width + grid.height) * hidden)
        tapeGrid = grid
    }

    /// `computeShares` on the separable grid of the batch (`prepareGrid`), blocks split over workers.
    func computeSeparableShares(_ grid: SeparableGrid, rows: Int, share: UnsafeMutablePointer<Float>) {
        let hidden = blocks[0].hidden, half = condDim / 2
        let parts = max(1, min(engineThreadCount, blockCount))
        let params = self.params.pointer, blocks = self.blocks, blockCount = self.blockCount
        let halves = tapeGridTable.pointer, scratch = gridScratch.pointer
        let colOf = tapeColOf.withUnsafeBufferPointer { $0.baseAddress! }
        let rowOf = tapeRowOf.withUnsafeBufferPointer { $0.baseAddress! }
        runParallel(parts) { w in
            var k = w
            while k < blockCount {
                blocks[k].separableConditionShare(
                    params: params, grid: grid, colHalves: halves, rowHalves: halves + grid.width * half,
                    colOf: colOf, rowOf: rowOf, rows: rows,
                    scratch: scratch + w * (grid.width + grid.height) * hidden, share: share + k * rows * hidden)
                k += parts
            }
        }
    }

    /// Condition shares of every block for `condTable`, reused while table and parameters are unchanged.
    func inferenceShares(condTable: UnsafePointer<Float>, condRows: Int,
                         grid: (height: Int, width: Int)? = nil) throws(BGADError) -> UnsafeMutablePointer<Float> {
        let hidden = blocks[0].hidden
        let tableCount = condRows * condDim
        if condRows.multipliedReportingOverflow(by: blockCount * hidden).overflow {
            throw BGADError(.outOfMemory, "condition shares for \(condRows) rows do not fit in memory")
        }
        if cachedVersion == version, cachedRows == condRows, let grid, let built = sharesFor,
           built == grid {
            return shareCache.pointer
        }
        sharesFor = grid
        if cachedVersion == version, cachedRows == condRows,
           memcmp(cachedTable.pointer, condTable, tableCount * MemoryLayout<Float>.stride) == 0 {
            return shareCache.pointer
        }
        let share = try shareCache.reserve(blockCount * condRows * hidden)
        computeShares(condTable: condTable, rows: condRows, share: share)
        try cachedTable.reserve(tableCount).update(from: condTable, count: tableCount)
        cachedRows = condRows
        cachedVersion = version
        return share
    }

    // MARK: - Inference

    /// Maps `count` vectors `x` to `z` (count × dim) and their per-vector `logdet`.
    public func forward(x: UnsafePointer<Float>, count: Int, condTable: UnsafePointer<Float>, condRows: Int,
                        condIndex: UnsafePointer<Int32>, z: UnsafeMutablePointer<Float>,
                        logdet: UnsafeMutablePointer<Float>) throws(BGADError) {
        try validate(x: x, count: count, condTable: condTable, condRows: condRows, condIndex: condIndex)
        let dim = self.dim
        try run(x: x, count: count, condTable: condTable, condRows: condRows, condIndex: condIndex) { start, n, zc, ld in
            (z + start * dim).update(from: zc, count: n * dim)
            (logdet + start).update(from: ld, count: n)
        }
    }

    /// ℓ = log p(x) / C for each of `count` row vectors x (count × dim, row-major).
    /// The condition row of vector i is `condTable[condIndex[i]]` (condTable: condRows × condDim).
    /// Using a table + index lets the first-layer share of the condition be computed once per
    /// position (and cached across calls while the table and the parameters are unchanged).
    public func logLikelihood(x: UnsafePointer<Float>, count: Int, condTable: UnsafePointer<Float>, condRows: Int,
                              condIndex: UnsafePointer<Int32>, ell: UnsafeMutablePointer<Float>) throws(BGADError) {
        try validate(x: x, count: count, condTable: condTable, condRows: condRows, condIndex: condIndex)
        let dim = self.dim
        try run(x: x, count: count, condTable: condTable, condRows: condRows, condIndex: condIndex) { start, n, zc, ld in
            ConditionalFlow.writeEll(dim: dim, z: zc, logdet: ld, count: n, ell: ell + start)
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

    /// The inference pass: vectors split over workers, each in chunks; `emit(start, n, z, logdet)`
    /// receives each chunk's result (called concurrently for disjoint ranges).
    func run(x: UnsafePointer<Float>, count: Int, condTable: UnsafePointer<Float>, condRows: Int,
             condIndex: UnsafePointer<Int32>, positionalGrid: (height: Int, width: Int)? = nil,
             emit: @escaping (Int, Int, UnsafePointer<Float>, UnsafePointer<Float>) -> Void) throws(BGADError) {
        if count == 0 { return }
        prepareAffine()
        let (parts, cap) = try reserveInferenceWorkers(count)
        let packed = try preparePacked()
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
        let logSigmaSums = self.logSigmaSums
        runParallel(parts) { w in
            let wk = workers[w]
            let range = partRange(w, of: parts, total: count)
            var cur = wk.a.pointer, nxt = wk.b.pointer
            let r = wk.r.pointer, q = wk.q.pointer, ld = wk.logdet.pointer
            var start = range.lowerBound
            while start < range.upperBound {
                let n = min(cap, range.upperBound - start)
                cur.update(from: x + start * dim, count: n * dim)
                ld.update(repeating: 0, count: n)
                let idx = condIndex + start
                if let grid {
                    for i in 0..<n {
                        let row = Int(idx[i])
                        wk.colOf[i] = Int32(row % grid.grid.width)
                        wk.rowOf[i] = Int32(row / grid.grid.width)
                    }
                }
                for (k, b) in blocks.enumerated() {
                    let pk = packed.map { $0 + k * perBlock }
                    if let grid {
                        let per = (grid.grid.width + grid.grid.height) * hidden
                        let colPart = grid.parts + k * per
                        wk.colOf.withUnsafeBufferPointer { col in
                            wk.rowOf.withUnsafeBufferPointer { row in
                                b.packedSubnet(params: params, x: cur, count: n, packed: pk!,
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
                    self.applyAffine(block: k, u: cur, count: n, y: nxt, packed: pk)
                    let ls = logSigmaSums[k]
                    for i in 0..<n { ld[i] += ls }
                    swap(&cur, &nxt)
                }
                emit(start, n, cur, ld)
                start += n
            }
        }
    }

    /// `y = u·M_k + ob_k` (n × dim).
    func applyAffine(block k: Int, u: UnsafePointer<Float>, count n: Int, y: UnsafeMutablePointer<Float>,
                     packed: UnsafePointer<Float>? = nil) {
        let ob = affineOb.pointer + k * dim
        if let packed {
            var start = PackedGemmEpilogue()
            start.bias = UnsafePointer(ob)
            packedGemm(m: n, n: dim, k: dim, u, lda: dim, packed: packed + blocks[k].packedAffineOffset, start, y, ldc: dim)
            return
        }
        for i in 0..<n { (y + i * dim).update(from: ob, count: dim) }
        sgemm(m: n, n: dim, k: dim, u, lda: dim, affineM.pointer + k * dim * dim, ldb: dim, beta: 1, y, ldc: dim)
    }

    /// Maps `count` latent vectors `z` back to `x`; `logdet` receives the log-determinant of
    /// the inverse map (the negative of the forward one at `x`).
    public func inverse(z: UnsafePointer<Float>, count: Int, condTable: UnsafePointer<Float>, condRows: Int,
                        condIndex: UnsafePointer<Int32>, x: UnsafeMutablePointer<Float>,
                        logdet: UnsafeMutablePointer<Float>) throws(BGADError) {
        try validate(x: z, count: count, condTable: condTable, condRows: condRows, condIndex: condIndex, name: "z")
        if count == 0 { return }
        prepareAffine()
        let shares = try inferenceShares(condTable: condTable, condRows: condRows)
        let (parts, cap) = try reserveInferenceWorkers(count)
        let hidden = blocks[0].hidden, dim = self.dim
        let params = self.params.pointer, blocks = self.blocks, workers = self.workers
        let logSigmaSums = self.logSigmaSums, rotations = self.rotations.pointer, sigmas = self.sigmas.pointer
        let blockCount = self.blockCount
        runParallel(parts) { w in
            let wk = workers[w]
            let range = partRange(w, of: parts, total: count)
            var cur = wk.a.pointer, nxt = wk.b.pointer
            let r = wk.r.pointer, q = wk.q.pointer, ld = wk.logdet.pointer
            var start = range.lowerBound
            while start < range.upperBound {
                let n = min(cap, range.upperBound - start)
                cur.update(from: z + start * dim, count: n * dim)
                ld.update(repeating: 0, count: n)
                let idx = condIndex + start
                for k in stride(from: blockCount - 1, through: 0, by: -1) {
                    let b = blocks[k]
                    // v = y·Wp − o, then u = v / σ.
                    let wp = rotations + k * dim * dim, sg = sigmas + k * dim, o = params + b.o
                    sgemm(m: n, n: dim, k: dim, cur, lda: dim, wp, ldb: dim, beta: 0, nxt, ldc: dim)
                    for i in 0..<n {
                        let row = nxt + i * dim
                        for j in 0..<dim { row[j] = (row[j] - o[j]) / sg[j] }
                        ld[i] -= logSigmaSums[k]
                    }
                    b.subnet(params: params, x: nxt, count: n, share: shares + k * condRows * hidden, index: idx, r: r, q: q)
                    b.uncouple(v: nxt, q: q, count: n, logdet: ld)
                    swap(&cur, &nxt)
                }
                (x + start * dim).update(from: cur, count: n * dim)
                (logdet + start).update(from: ld, count: n)
                start += n
            }
        }
    }

    // MARK: - Training

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
        tapeVersion = -1
        let b0 = blocks[0]
        let hidden = b0.hidden, len2 = b0.len2, dim = self.dim, condDim = self.condDim
        let step = tapeStride(n)
        let t = try tape.reserve(blockCount * step + n * dim)
        // Keep only the condition rows this batch uses (renumbered in order of first use),
        // and process the vectors sorted by condition row (a counting sort): the condition's
        // first-layer work and weight gradient then scale with the number of rows, and the
        // per-row gradient sums are written row after row, with no scatter.
        if tapeIndex.count < n { tapeIndex = [Int32](repeating: 0, count: n); tapePerm = tapeIndex }
        if rowMap.count < condRows { rowMap = [Int32](repeating: -1, count: condRows) }
        if rowStart.count < min(condRows, n) + 1 { rowStart = [Int](repeating: 0, count: min(condRows, n) + 1) }
        if tapeUsedRow.count < min(condRows, n) { tapeUsedRow = [Int32](repeating: 0, count: min(condRows, n)) }
        var used = 0
        let table = try tapeTable.reserve(min(condRows, n) * condDim)
        tapeUsedRow.withUnsafeMutableBufferPointer { usedRowBuffer in
        let usedRow = usedRowBuffer.baseAddress!
        rowMap.withUnsafeMutableBufferPointer { map in
            tapeIndex.withUnsafeMutableBufferPointer { idx in
                tapePerm.withUnsafeMutableBufferPointer { perm in
                    rowStart.withUnsafeMutableBufferPointer { start in
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
        let rows = used
        let index = tapeIndex.withUnsafeBufferPointer { $0.baseAddress! }
        let perm = tapePerm.withUnsafeBufferPointer { $0.baseAddress! }
        let share = try trainShare.reserve(blockCount * rows * hidden)
        tapeGrid = nil
        if separableConditions {
            let grid = tapeUsedRow.withUnsafeBufferPointer {
                SeparableGrid.detect(table: condTable, rows: condRows, dim: condDim, used: $0.baseAddress!, usedCount: rows)
            }
            // Worth it when the grid has fewer rows and columns than the batch has positions.
            if let grid, grid.width + grid.height < rows {
                try prepareGrid(grid, condTable: condTable, rows: rows)
            }
        }
        if let grid = tapeGrid {
            computeSeparableShares(grid, rows: rows, share: share)
        } else {
            computeShares(condTable: table, rows: rows, share: share)
        }
        let parts = workerCount(n)
        for w in 0..<parts { try workers[w].q.reserve((n / parts + 1) * max(b0.outDim, 1)) }
        let ld = try tapeLogdet.reserve(n)
        let params = self.params.pointer, blocks = self.blocks, workers = self.workers
        let logSigmaSums = self.logSigmaSums, blockCount = self.blockCount
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
                self.applyAffine(block: k, u: u + o * dim, count: m, y: next + o * dim)
                let ls = logSigmaSums[k]
                for i in 0..<m { ldw[i] += ls }
            }
            let ellw = workers[w].q.pointer   // q is free now
            ConditionalFlow.writeEll(dim: dim, z: t + blockCount * step + o * dim, logdet: ldw, count: m, ell: ellw)
            for i in 0..<m { ell[Int(perm[o + i])] = ellw[i] }
        }
        tapeCount = n
        tapeRows = rows
        tapeWorkers = parts
        tapeVersion = version
    }

    /// Backward of the last `forwardForTraining`, given dLoss/dℓ for each vector; OVERWRITES
    /// the stored parameter gradients (read them with `parameterGradient(_:)`) and the input
    /// gradient (`inputGradient`).
    public func backward(gradEll: UnsafePointer<Float>) throws(BGADError) {
        guard tapeCount > 0, tapeVersion == version else {
            throw .invalid("backward needs a forwardForTraining after the last parameter change")
        }
        let n = tapeCount, rows = tapeRows, parts = tapeWorkers
        if let i = firstNonFinite(gradEll, count: n) { throw .invalid("gradEll: element \(i) is \(gradEll[i])") }
        let b0 = blocks[0]
        let hidden = b0.hidden, len2 = b0.len2, outDim = b0.outDim, dim = self.dim
        let step = tapeStride(n)
        let t = tape.pointer
        let slice = (n + parts - 1) / parts
        for w in 0..<parts {
            let wk = workers[w]
            try wk.dl.reserve(slice); try wk.dy.reserve(slice * dim); try wk.dx.reserve(slice * dim)
            try wk.dq.reserve(slice * max(outDim, 1)); try wk.dr.reserve(slice * hidden)
            try wk.grads.reserve(trainableCount)
            try wk.carry.reserve(blockCount * hidden)
        }
        let perRow = try tapePerRow.reserve(blockCount * rows * hidden)
        let perm = tapePerm.withUnsafeBufferPointer { $0.baseAddress! }
        let gx = try inputGrad.reserve(n * dim)
        let params = self.params.pointer, blocks = self.blocks, workers = self.workers
        let rotations = self.rotations.pointer, sigmas = self.sigmas.pointer, blockCount = self.blockCount
        let index = tapeIndex.withUnsafeBufferPointer { $0.baseAddress! }
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
                b.backward(params: params, wp: rotations + k * dim * dim, sigma: sigmas + k * dim,
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
        let table = tapeTable.pointer
        // `prepareGrid` sized the scratch for one slice per block.
        let grid = tapeGrid, half = condDim / 2
        let halves = tapeGridTable.pointer, scratch = gridScratch.pointer
        let colOf = tapeColOf.withUnsafeBufferPointer { $0.baseAddress! }
        let rowOf = tapeRowOf.withUnsafeBufferPointer { $0.baseAddress! }
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
                if let grid {
                    blocks[k].separableConditionGradient(
                        perRow: sum, grid: grid, colHalves: halves, rowHalves: halves + grid.width * half,
                        colOf: colOf, rowOf: rowOf, rows: rows,
                        scratch: scratch + w * (grid.width + grid.height) * hidden, grads: g)
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
    /// correction) on the stored gradients, with this flow's own optimiser state.
    /// Does nothing when no gradient has been computed yet.
    public func adamStep(learningRate: Float) {
        guard gradientsValid else { return }
        adamSteps += 1
        let beta1 = 0.9, beta2 = 0.999, eps: Float = 1e-8
        let bc1 = 1 - pow(beta1, Double(adamSteps)), bc2 = 1 - pow(beta2, Double(adamSteps))
        let stepSize = Float(Double(learningRate) / bc1)
        let bc2Sqrt = Float(bc2.squareRoot())
        let p = params.pointer, g = grads.pointer, m = adamM.pointer, v = adamV.pointer
        let b1 = Float(beta1), b2 = Float(beta2)
        let total = trainableCount
        // Element-wise, 8 lanes at a time, in slices over the workers; the same operations
        // in the same order as the scalar tail, so every element gets the same result.
        runSlices(total: total, minimum: 65536) { range in
            var i = range.lowerBound
            let c1 = SIMD8<Float>(repeating: 1 - b1), vb2 = SIMD8<Float>(repeating: b2)
            let c2 = SIMD8<Float>(repeating: 1 - b2), vbc2 = SIMD8<Float>(repeating: bc2Sqrt)
            let veps = SIMD8<Float>(repeating: eps), vstep = SIMD8<Float>(repeating: stepSize)
            while i + 8 <= range.upperBound {
                let gi = load8(g + i)
                let mi = load8(m + i) + (gi - load8(m + i)) * c1
                let vi = load8(v + i) * vb2 + c2 * gi * gi
                store8(mi, m + i)
                store8(vi, v + i)
                store8(load8(p + i) - vstep * mi / (vi.squareRoot() / vbc2 + veps), p + i)
                i += 8
            }
            while i < range.upperBound {
                let gi = g[i]
                m[i] += (gi - m[i]) * (1 - b1)
                v[i] = v[i] * b2 + (1 - b2) * gi * gi
                let denom = v[i].squareRoot() / bc2Sqrt + eps
                p[i] -= stepSize * m[i] / denom
                i += 1
            }
        }
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
        let ell = Array(lossEll[0..<count])
        let loss: Float
        switch objective {
        case .phaseOne:
            loss = maximumLikelihoodLoss(ell: ell, gradEll: &lossGrad)
        case .negativeLogLikelihood:
            // L = mean(−log p) = −C·mean(ℓ).
            var sum = 0.0
            for v in ell { sum += Double(v) }
            loss = Float(-Double(dim) * sum / Double(count))
            lossGrad = [Float](repeating: -Float(dim) / Float(count), count: count)
        }
        try lossGrad.withUnsafeBufferPointer { (g) throws(BGADError) in try backward(gradEll: g.baseAddress!) }
        return loss
    }
}

/// The loss minimised by `ConditionalFlow.trainStep`.
public enum FlowObjective: Int32, Sendable {
    /// BGAD's phase-1 loss `L_ml = −mean(log sigmoid(ℓ))`, ℓ = log p / C (`docs/METHOD.md`, "Phase 1").
    case phaseOne = 0
    /// Plain maximum likelihood: `mean(−log p(x))` in nats.
    case negativeLogLikelihood = 1
}

/// Phase-1 loss of BGAD, `L_ml = −mean(log sigmoid(ℓ)) = mean(softplus(−ℓ))` (`docs/METHOD.md`),
/// and its gradient `dL/dℓ_i = −sigmoid(−ℓ_i) / n` written to `gradEll` (resized to n).
public func maximumLikelihoodLoss(ell: [Float], gradEll: inout [Float]) -> Float {
    let n = ell.count
    if gradEll.count != n { gradEll = [Float](repeating: 0, count: n) }
    guard n > 0 else { return 0 }
    var sum = 0.0
    for i in 0..<n {
        let l = Double(ell[i])
        // softplus(−l) = max(−l, 0) + log1p(exp(−|l|)), stable for any l.
        sum += max(-l, 0) + log1p(exp(-abs(l)))
        let sig = l >= 0 ? exp(-l) / (1 + exp(-l)) : 1 / (1 + exp(l))   // sigmoid(−l)
        gradEll[i] = Float(-sig / Double(n))
    }
    return Float(sum / Double(n))
}
