#if canImport(Glibc)
import Glibc
#endif

/// A conditional normalizing flow: `blocks` coupling blocks (`CouplingBlock`) applied in
/// sequence, each conditioned on the same `condDim`-dimensional condition (`FLOW.md`).
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

    /// Rows processed at once at inference (bounds the workspaces).
    static let chunk = 4096

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

    // Inference workspaces and the cached condition shares.
    let ws1 = FloatBuffer(), ws2 = FloatBuffer(), wsR = FloatBuffer(), wsQ = FloatBuffer(), wsLogdet = FloatBuffer()
    let shareCache = FloatBuffer(), cachedTable = FloatBuffer()
    var cachedRows = -1, cachedVersion = -1

    // Training tape (valid after forwardForTraining until backward or a parameter change).
    let tape = FloatBuffer()
    let tapeTable = FloatBuffer()
    var tapeIndex: [Int32] = []
    var rowMap: [Int32] = []
    var tapeCount = 0, tapeRows = 0, tapeVersion = -1
    let trainShare = FloatBuffer()
    let bwY = FloatBuffer(), bwX = FloatBuffer(), bwQ = FloatBuffer(), bwR = FloatBuffer(), bwRow = FloatBuffer()
    let dLogdet = FloatBuffer()
    /// dL/dx of the last `backward` (count × dim).
    let inputGrad = FloatBuffer()
    var inputGradCount = 0
    var gradientsValid = false
    var lossEll: [Float] = [], lossGrad: [Float] = []

    /// Creates a flow with FrEIA's initialisation: W, b uniform in ±1/√fan_in, g = 2·ln(e⁵−1)
    /// (σ = 1), o = 0, Wp a Haar rotation; all drawn from `seed` in a fixed order.
    public init(dim: Int, condDim: Int = 128, blocks: Int = 8, clamp: Float = 1.9, seed: UInt64 = 0) throws(BGADError) {
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
        params = FloatBuffer(capacity: offset)
        grads = FloatBuffer(capacity: offset)
        adamM = FloatBuffer(capacity: offset)
        adamV = FloatBuffer(capacity: offset)
        rotations = FloatBuffer(capacity: blocks * dim * dim)
        affineM = FloatBuffer(capacity: blocks * dim * dim)
        affineOb = FloatBuffer(capacity: blocks * dim)
        sigmas = FloatBuffer(capacity: blocks * dim)
        logSigmaSums = [Float](repeating: 0, count: blocks)

        var rng = FlowRandom(seed: seed)
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

    // MARK: - Validation

    func validate(x: UnsafePointer<Float>, count: Int, condTable: UnsafePointer<Float>, condRows: Int,
                  condIndex: UnsafePointer<Int32>, name: String = "x") throws(BGADError) {
        guard count >= 0 else { throw .invalid("count must be ≥ 0, got \(count)") }
        guard condRows >= 1 else { throw .invalid("condRows must be ≥ 1, got \(condRows)") }
        let (total, overflow) = count.multipliedReportingOverflow(by: dim)
        if overflow { throw .invalid("\(name): \(count) × \(dim) overflows") }
        if let i = firstNonFinite(x, count: total) {
            throw .invalid("\(name): element \(i) (vector \(i / dim), channel \(i % dim)) is \(x[i])")
        }
        if let i = firstNonFinite(condTable, count: condRows * condDim) {
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

    /// Condition shares of every block for `condTable`, reused while table and parameters are unchanged.
    func inferenceShares(condTable: UnsafePointer<Float>, condRows: Int) -> UnsafeMutablePointer<Float> {
        let hidden = blocks[0].hidden
        let tableCount = condRows * condDim
        if cachedVersion == version, cachedRows == condRows,
           memcmp(cachedTable.pointer, condTable, tableCount * MemoryLayout<Float>.stride) == 0 {
            return shareCache.pointer
        }
        let share = shareCache.reserve(blockCount * condRows * hidden)
        for (k, b) in blocks.enumerated() {
            b.conditionShare(params: params.pointer, condTable: condTable, rows: condRows, share: share + k * condRows * hidden)
        }
        cachedTable.reserve(tableCount).update(from: condTable, count: tableCount)
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
        run(x: x, count: count, condTable: condTable, condRows: condRows, condIndex: condIndex) { start, n, zc, ld in
            (z + start * self.dim).update(from: zc, count: n * self.dim)
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
        run(x: x, count: count, condTable: condTable, condRows: condRows, condIndex: condIndex) { start, n, zc, ld in
            self.writeEll(z: zc, logdet: ld, count: n, ell: ell + start)
        }
    }

    /// ℓ_i = (−(C/2)·log 2π − ½‖z_i‖² + logdet_i) / C.
    func writeEll(z: UnsafePointer<Float>, logdet: UnsafePointer<Float>, count n: Int, ell: UnsafeMutablePointer<Float>) {
        let c = Float(dim)
        let base = -0.5 * c * Float(log(2 * Double.pi))
        for i in 0..<n {
            let zi = z + i * dim
            var sq: Float = 0
            for j in 0..<dim { sq += zi[j] * zi[j] }
            ell[i] = (base - 0.5 * sq + logdet[i]) / c
        }
    }

    /// The inference pass over chunks; `emit(start, n, z, logdet)` receives each chunk's result.
    func run(x: UnsafePointer<Float>, count: Int, condTable: UnsafePointer<Float>, condRows: Int,
             condIndex: UnsafePointer<Int32>,
             emit: (Int, Int, UnsafePointer<Float>, UnsafePointer<Float>) -> Void) {
        if count == 0 { return }
        prepareAffine()
        let shares = inferenceShares(condTable: condTable, condRows: condRows)
        let hidden = blocks[0].hidden, outDim = blocks[0].outDim
        let cap = min(count, ConditionalFlow.chunk)
        var cur = ws1.reserve(cap * dim), nxt = ws2.reserve(cap * dim)
        let r = wsR.reserve(cap * hidden), q = wsQ.reserve(cap * max(outDim, 1)), ld = wsLogdet.reserve(cap)
        var start = 0
        while start < count {
            let n = min(cap, count - start)
            cur.update(from: x + start * dim, count: n * dim)
            ld.update(repeating: 0, count: n)
            let idx = condIndex + start
            for (k, b) in blocks.enumerated() {
                b.subnet(params: params.pointer, x: cur, count: n, share: shares + k * condRows * hidden,
                         index: idx, r: r, q: q)
                b.couple(x: cur, q: q, count: n, logdet: ld)
                applyAffine(block: k, u: cur, count: n, y: nxt)
                let ls = logSigmaSums[k]
                for i in 0..<n { ld[i] += ls }
                swap(&cur, &nxt)
            }
            emit(start, n, cur, ld)
            start += n
        }
    }

    /// `y = u·M_k + ob_k` (n × dim).
    func applyAffine(block k: Int, u: UnsafePointer<Float>, count n: Int, y: UnsafeMutablePointer<Float>) {
        let ob = affineOb.pointer + k * dim
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
        let shares = inferenceShares(condTable: condTable, condRows: condRows)
        let hidden = blocks[0].hidden, outDim = blocks[0].outDim
        let cap = min(count, ConditionalFlow.chunk)
        var cur = ws1.reserve(cap * dim), nxt = ws2.reserve(cap * dim)
        let r = wsR.reserve(cap * hidden), q = wsQ.reserve(cap * max(outDim, 1)), ld = wsLogdet.reserve(cap)
        var start = 0
        while start < count {
            let n = min(cap, count - start)
            cur.update(from: z + start * dim, count: n * dim)
            ld.update(repeating: 0, count: n)
            let idx = condIndex + start
            for k in stride(from: blockCount - 1, through: 0, by: -1) {
                let b = blocks[k]
                // v = y·Wp − o, then u = v / σ.
                let wp = rotations.pointer + k * dim * dim, sg = sigmas.pointer + k * dim, o = params.pointer + b.o
                sgemm(m: n, n: dim, k: dim, cur, lda: dim, wp, ldb: dim, beta: 0, nxt, ldc: dim)
                for i in 0..<n {
                    let row = nxt + i * dim
                    for j in 0..<dim { row[j] = (row[j] - o[j]) / sg[j] }
                    ld[i] -= logSigmaSums[k]
                }
                b.subnet(params: params.pointer, x: nxt, count: n, share: shares + k * condRows * hidden,
                         index: idx, r: r, q: q)
                b.uncouple(v: nxt, q: q, count: n, logdet: ld)
                swap(&cur, &nxt)
            }
            (x + start * dim).update(from: cur, count: n * dim)
            (logdet + start).update(from: ld, count: n)
            start += n
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
        prepareAffine()
        let b0 = blocks[0]
        let hidden = b0.hidden, len2 = b0.len2
        let step = tapeStride(n)
        let t = tape.reserve(blockCount * step + n * dim)
        // Keep only the condition rows this batch uses (renumbered in order of first use):
        // the condition's first-layer work and its weight gradient scale with their number.
        if tapeIndex.count < n { tapeIndex = [Int32](repeating: 0, count: n) }
        if rowMap.count < condRows { rowMap = [Int32](repeating: -1, count: condRows) }
        var used = 0
        let table = tapeTable.reserve(min(condRows, n) * condDim)
        rowMap.withUnsafeMutableBufferPointer { map in
            tapeIndex.withUnsafeMutableBufferPointer { idx in
                for i in 0..<n {
                    let r = Int(condIndex[i])
                    if map[r] < 0 {
                        map[r] = Int32(used)
                        (table + used * condDim).update(from: condTable + r * condDim, count: condDim)
                        used += 1
                    }
                    idx[i] = map[r]
                }
                for i in 0..<n { map[Int(condIndex[i])] = -1 }
            }
        }
        let rows = used
        let index = tapeIndex.withUnsafeBufferPointer { $0.baseAddress! }
        let share = trainShare.reserve(rows * hidden)
        let q = wsQ.reserve(n * max(b0.outDim, 1)), ld = wsLogdet.reserve(n)
        ld.update(repeating: 0, count: n)
        t.update(from: x, count: n * dim)
        for (k, b) in blocks.enumerated() {
            let xb = t + k * step
            let r = xb + n * dim, th = r + n * hidden, ex = th + n * len2, u = ex + n * len2
            let next = t + (k + 1) * step   // the next block's x (or z after the last block)
            b.conditionShare(params: params.pointer, condTable: table, rows: rows, share: share)
            b.subnet(params: params.pointer, x: xb, count: n, share: share, index: index, r: r, q: q)
            u.update(from: xb, count: n * dim)
            b.couple(x: u, q: q, count: n, logdet: ld, tanhOut: th, expOut: ex)
            applyAffine(block: k, u: u, count: n, y: next)
            let ls = logSigmaSums[k]
            for i in 0..<n { ld[i] += ls }
        }
        writeEll(z: t + blockCount * step, logdet: ld, count: n, ell: ell)
        tapeCount = n
        tapeRows = rows
        tapeVersion = version
    }

    /// Backward of the last `forwardForTraining`, given dLoss/dℓ for each vector; OVERWRITES
    /// the stored parameter gradients (read them with `parameterGradient(_:)`) and the input
    /// gradient (`inputGradient`).
    public func backward(gradEll: UnsafePointer<Float>) throws(BGADError) {
        guard tapeCount > 0, tapeVersion == version else {
            throw .invalid("backward needs a forwardForTraining after the last parameter change")
        }
        let n = tapeCount
        if let i = firstNonFinite(gradEll, count: n) { throw .invalid("gradEll: element \(i) is \(gradEll[i])") }
        let b0 = blocks[0]
        let hidden = b0.hidden, len2 = b0.len2
        let step = tapeStride(n)
        let t = tape.pointer
        // ℓ = log p / C: d log p = gradEll / C; dz = −z·d log p; every block's logdet gets d log p.
        let dl = dLogdet.reserve(n)
        for i in 0..<n { dl[i] = gradEll[i] / Float(dim) }
        var dy = bwY.reserve(n * dim), dx = bwX.reserve(n * dim)
        let z = t + blockCount * step
        for i in 0..<n {
            for j in 0..<dim { dy[i * dim + j] = -dl[i] * z[i * dim + j] }
        }
        let dq = bwQ.reserve(n * max(b0.outDim, 1)), dr = bwR.reserve(n * hidden), perRow = bwRow.reserve(tapeRows * hidden)
        let index = tapeIndex.withUnsafeBufferPointer { $0.baseAddress! }
        for k in stride(from: blockCount - 1, through: 0, by: -1) {
            let b = blocks[k]
            let xb = t + k * step
            let r = xb + n * dim, th = r + n * hidden, ex = th + n * len2, u = ex + n * len2
            b.backward(params: params.pointer, wp: rotations.pointer + k * dim * dim, sigma: sigmas.pointer + k * dim,
                       count: n, condTable: tapeTable.pointer, condRows: tapeRows, index: index,
                       dy: dy, dLogdet: dl, x: xb, r: r, th: th, ex: ex, u: u,
                       grads: grads.pointer, dx: dx, dq: dq, dr: dr, perRow: perRow)
            swap(&dy, &dx)
        }
        inputGrad.reserve(n * dim).update(from: dy, count: n * dim)
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
        for i in 0..<trainableCount {
            let gi = g[i]
            m[i] += (gi - m[i]) * (1 - b1)
            v[i] = v[i] * b2 + (1 - b2) * gi * gi
            let denom = v[i].squareRoot() / bc2Sqrt + eps
            p[i] -= stepSize * m[i] / denom
        }
        version += 1
    }

    /// Clears the Adam moments and step count (a fresh optimiser).
    public func resetOptimizer() {
        adamM.zero(trainableCount)
        adamV.zero(trainableCount)
        adamSteps = 0
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
    /// BGAD's phase-1 loss `L_ml = −mean(log sigmoid(ℓ))`, ℓ = log p / C (METHOD.md).
    case phaseOne = 0
    /// Plain maximum likelihood: `mean(−log p(x))` in nats.
    case negativeLogLikelihood = 1
}

/// Phase-1 loss of BGAD, `L_ml = −mean(log sigmoid(ℓ)) = mean(softplus(−ℓ))` (METHOD.md),
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
