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
    /// The optimiser state of `adamStep`.
    var adam: Adam
    let rotations: FloatBuffer   // blockCount × C × C
    var version = 0              // bumped whenever parameters change

    /// Every block's folded global affine at parameter version `affineVersion`
    /// (`CouplingBlock.prepareAffine`; blockCount × `affineSize`).
    let affine: FloatBuffer
    var affineVersion = -1

    /// Workspaces of the worker threads (`Worker`, in `+Inference`).
    var workers: [Worker] = [Worker()]

    // Cached condition shares for inference, and what they were built from.
    let shareCache = FloatBuffer()
    var sharesKey = ConditionCacheKey()

    // Inference on AVX-512 CPUs (`+Packed`): per block W1xᵀ, W2ᵀ and the folded affine's M
    // packed for `packedGemm` at `packedVersion`; the separable condition shares (per block
    // the grid's column part then its row part; `inferenceGrid` nil when the table has no
    // such form) and what they were built from; the positional condition of the last grid
    // size scored.
    let packedWeights = FloatBuffer()
    var packedVersion = -1
    let gridShares = FloatBuffer()
    var gridKey = ConditionCacheKey(), inferenceGrid: SeparableGrid?
    var positional: (height: Int, width: Int, table: [Float], index: [Int32])?

    /// What `forwardForTraining` keeps for `backward` (`Tape`, in `+Training`).
    let tape = Tape()
    /// Use the separable form of the condition when the batch's rows have it
    /// (`SeparableGrid`: a positional encoding); on by default. The results agree with the
    /// general path to rounding.
    public var separableConditions = true
    /// dL/dx of the last `backward` (count × dim).
    let inputGrad = FloatBuffer()
    var inputGradCount = 0
    var gradientsValid = false
    var lossEll: [Float] = [], lossGrad: [Float] = []   // ℓ and dL/dℓ of `computeGradients`

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
        adam = try Adam(count: offset)
        rotations = try FloatBuffer(capacity: blocks * dim * dim)
        affine = try FloatBuffer(capacity: blocks * list[0].affineSize)

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

    // MARK: - Validation and shared preparation

    /// Throws unless `count` vectors of `x` and the condition table are finite, the sizes do
    /// not overflow and every `condIndex` names a row of the table.
    /// Checks `count` vectors of `x` (count × C): the size does not overflow, every value is finite.
    func validateVectors(_ x: UnsafePointer<Float>, count: Int, name: String = "x") throws(BGADError) {
        let (total, overflow) = count.multipliedReportingOverflow(by: dim)
        if overflow { throw .invalid("\(name): \(count) × \(dim) overflows") }
        if let i = firstNonFinite(x, count: total) {
            throw .invalid("\(name): element \(i) (vector \(i / dim), channel \(i % dim)) is \(x[i])")
        }
    }

    func validate(x: UnsafePointer<Float>, count: Int, condTable: UnsafePointer<Float>, condRows: Int,
                  condIndex: UnsafePointer<Int32>, name: String = "x") throws(BGADError) {
        guard count >= 0 else { throw .invalid("count must be ≥ 0, got \(count)") }
        guard condRows >= 1 else { throw .invalid("condRows must be ≥ 1, got \(condRows)") }
        try validateVectors(x, count: count, name: name)
        let (tableTotal, overflow) = condRows.multipliedReportingOverflow(by: condDim)
        if overflow { throw .invalid("cond: \(condRows) × \(condDim) overflows") }
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

    /// Block `k`'s rotation `Wp` (C × C).
    func rotation(_ k: Int) -> UnsafeMutablePointer<Float> { rotations.pointer + k * dim * dim }

    /// Block `k`'s folded global affine (`prepareAffine`).
    func foldedAffine(_ k: Int) -> UnsafeMutablePointer<Float> { affine.pointer + k * blocks[k].affineSize }

    /// Folds every block's global affine for the current parameters (once per parameter version).
    func prepareAffine() {
        if affineVersion == version { return }
        for (k, b) in blocks.enumerated() {
            b.prepareAffine(params: params.pointer, wp: rotation(k), affine: foldedAffine(k))
        }
        affineVersion = version
    }
}
