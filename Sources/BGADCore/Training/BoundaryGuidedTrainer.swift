#if canImport(Glibc)
import Glibc
#endif

/// The training set as the trainer sees it: per level, the normal images' feature maps
/// and (optionally) the known anomalous images' maps with their pixel masks.
public struct TrainingSet {
    /// Per level, the normal images' maps (same image count on every level).
    public var normal: [FeatureMaps]
    /// Per level, the anomalous images' maps (same grid as `normal`), or empty.
    public var anomalous: [FeatureMaps]
    /// Anomaly masks `(anomalousCount, maskHeight, maskWidth)`, non-zero = anomalous
    /// pixel; nil = every position of an anomalous image is anomalous.
    public var masks: UnsafePointer<UInt8>?
    /// Mask height (image resolution).
    public var maskHeight: Int
    /// Mask width (image resolution).
    public var maskWidth: Int

    /// A training set; see the properties.
    public init(normal: [FeatureMaps], anomalous: [FeatureMaps] = [], masks: UnsafePointer<UInt8>? = nil,
                maskHeight: Int = 0, maskWidth: Int = 0) {
        self.normal = normal
        self.anomalous = anomalous
        self.masks = masks
        self.maskHeight = maskHeight
        self.maskWidth = maskWidth
    }

    /// Number of normal images.
    public var normalCount: Int { normal.first?.count ?? 0 }
    /// Number of anomalous images.
    public var anomalousCount: Int { anomalous.first?.count ?? 0 }

    /// Throws unless the levels agree with `channels` and with each other.
    public func validate(channels: [Int]) throws(BGADError) {
        guard normal.count == channels.count else {
            throw .invalid("normal features: expected \(channels.count) levels, got \(normal.count)")
        }
        guard anomalous.isEmpty || anomalous.count == channels.count else {
            throw .invalid("anomalous features: expected \(channels.count) levels, got \(anomalous.count)")
        }
        guard normalCount >= 1 else { throw .invalid("normal features: at least one normal image is needed") }
        for (l, m) in normal.enumerated() {
            guard m.count == normalCount else {
                throw .invalid("normal features: level \(l) has \(m.count) images, level 0 has \(normalCount)")
            }
            guard m.channels == channels[l] else {
                throw .invalid("normal features: level \(l) has \(m.channels) channels, the model expects \(channels[l])")
            }
            guard m.height >= 1, m.width >= 1 else { throw .invalid("normal features: level \(l) has an empty grid") }
            try m.requireFinite("normal features, level \(l)")
        }
        for (l, m) in anomalous.enumerated() {
            guard m.count == anomalousCount else {
                throw .invalid("anomalous features: level \(l) has \(m.count) images, level 0 has \(anomalousCount)")
            }
            guard m.channels == channels[l], m.height == normal[l].height, m.width == normal[l].width else {
                throw .invalid("anomalous features: level \(l) has shape (\(m.channels), \(m.height), \(m.width)), "
                    + "the normal features (\(normal[l].channels), \(normal[l].height), \(normal[l].width))")
            }
            try m.requireFinite("anomalous features, level \(l)")
        }
        if masks != nil {
            guard maskHeight >= 1, maskWidth >= 1 else { throw .invalid("anomaly masks: empty mask size \(maskHeight)×\(maskWidth)") }
        }
    }
}

/// Progress of training, reported after every optimisation step.
public struct TrainingProgress: Sendable {
    /// Steps done so far (over all levels).
    public var step: Int
    /// Total steps of the whole training.
    public var totalSteps: Int
    /// Meta-epoch of the step (with a step budget: 0 in phase 1, 1 in phase 2).
    public var metaEpoch: Int
    /// Phase of the step: 1 (normal images, `L_ml`) or 2 (the variant's full objective).
    public var phase: Int
    /// Level whose flow took the step.
    public var level: Int
    /// Loss of the step's chunk.
    public var loss: Double
    /// Learning rate of the step.
    public var learningRate: Double
}

/// Trains one conditional flow per level with BGAD's two-phase recipe (paper Sec. 3.3,
/// Algorithm: "explicit boundary generating" then "boundary guided optimising").
///
/// - Phase 1: normal images only, `L_ml = mean(−log σ(ℓ))`.
/// - Phase 2, by variant:
///   `bgad` — normal and anomalous images; a chunk with abnormal vectors takes
///   `L_ml(normal) + λ(L_n + L_a)`, one without takes `L_ml` (focal-weighted when on);
///   `bgad_wo` — normal images, `L_ml + λ · L_n`; `nfad` — normal images, `L_ml`.
/// - Schedule: with a step budget (`steps > 0`), batches of `batchSize` images drawn from
///   reshuffled passes (`ImageStream`), the first `phase1Fraction` of them in phase 1, the rate
///   of `StepLearningRate`; otherwise the authors' epochs: meta-epoch 0 is phase 1, each
///   sub-epoch shuffles the images and cuts them into batches, the rate of `LearningRateSchedule`.
/// - Per batch and level the vectors are shuffled and cut into chunks (`chunkBounds`); each
///   chunk is one step of THAT level's flow with its own Adam state; other levels' flows do
///   not move. `lastHistory` keeps what the run did (`TrainingHistory`).
public final class BoundaryGuidedTrainer {
    /// The configuration trained with.
    public let configuration: TrainingConfiguration
    /// The flows, one per level (trained in place).
    public let flows: [ConditionalFlow]

    /// A trainer of `flows` (one per level) with `configuration`.
    public init(configuration: TrainingConfiguration, flows: [ConditionalFlow]) throws(BGADError) {
        try configuration.validate()
        self.configuration = configuration
        self.flows = flows
    }

    /// Trains the flows on `data`. `progress` is called after every step; returning false
    /// cancels training (throws a `.cancelled` error, the flows are then partly trained).
    public func train(_ data: TrainingSet, progress: ((TrainingProgress) -> Bool)? = nil) throws(BGADError) {
        try data.validate(channels: flows.map { $0.dim })
        try trainValidated(data, progress: progress)
    }

    /// `train` on data already checked by `TrainingSet.validate`.
    func trainValidated(_ data: TrainingSet, progress: ((TrainingProgress) -> Bool)?) throws(BGADError) {
        let rows = try TrainingRows(data, withAnomalies: configuration.variant.usesAnomalies && data.anomalousCount > 0)
        try train(rows: rows, progress: progress)
    }

    /// Trains the flows on the rows of every training image (normal images first; the
    /// anomalous ones are used by the `bgad` variant only). Same contract as `train(_:progress:)`.
    public func train(rows data: TrainingRows, progress: ((TrainingProgress) -> Bool)?) throws(BGADError) {
        let cfg = configuration
        guard data.levels.count == flows.count else {
            throw .invalid("training rows: expected \(flows.count) levels, got \(data.levels.count)")
        }
        for (l, store) in data.levels.enumerated() {
            guard store.channels == flows[l].dim, store.count == data.count else {
                throw .invalid("training rows: level \(l) has \(store.count) images of \(store.channels) channels, "
                    + "expected \(data.count) of \(flows[l].dim)")
            }
        }
        guard data.normalCount >= 1 else { throw .invalid("normal features: at least one normal image is needed") }
        let useAnomalies = cfg.variant.usesAnomalies && data.anomalousCount > 0
        let nNormal = data.normalCount
        let nImages = nNormal + (useAnomalies ? data.anomalousCount : 0)
        let levels = data.levels
        let conditions = levels.map { positionalEncoding(height: $0.height, width: $0.width, dim: cfg.conditionDimension) }

        // The plan: which images each batch holds and in which phase, and every level's
        // step count (the learning rate, the progress and the history use them).
        let plan = trainingPlan(normalImages: nNormal, allImages: nImages, positions: levels.map { $0.positions })
        let history = TrainingHistoryRecorder(totalSteps: plan.levelSteps, normalizer: cfg.loss.normalizer)

        // Workspaces, sized for the largest chunk, reused by every step.
        let batchVectors = min(cfg.batchSize, nImages) * (levels.map { $0.positions }.max() ?? 1)
        guard batchVectors <= Int(Int32.max) else {
            throw .invalid("a batch holds \(batchVectors) vectors, more than 2³¹ − 1; lower batch_size")
        }
        let maxChunk = min(cfg.chunkSize + cfg.chunkSize / 2 + 2, batchVectors)
        let maxC = levels.map { $0.channels }.max() ?? 1
        let ws = ChunkWorkspace(capacity: maxChunk, maxChannels: maxC)
        let order = UnsafeMutableBufferPointer<Int32>.allocate(capacity: batchVectors)
        defer { order.deallocate() }

        // One stream for the image order, one per level for its vector order: a level's
        // training does not depend on how many other levels there are.
        var rng = SeededRandom(seed: cfg.seed ^ 0x5851_F42D_4C95_7F2D)
        var levelRng = (0..<levels.count).map { SeededRandom(seed: (cfg.seed &+ UInt64($0) &* 0x2545_F491_4F6C_DD1D) ^ 0x1405_7B7E_F767_814F) }
        let totalSteps = plan.levelSteps.reduce(0, +)
        var done = 0
        var levelDone = [Int](repeating: 0, count: levels.count)

        /// One batch: every level shuffles the batch's vectors, cuts them into chunks and
        /// takes one step per chunk at the rate `rate(level, step of that level)`.
        func trainBatch<C: Collection>(_ batch: C, phase1: Bool, metaEpoch: Int,
                                        rate: (Int, Int) -> Double) throws(BGADError) where C.Element == Int {
            for l in 0..<levels.count {
                let flow = flows[l]
                let p = levels[l].positions, c = levels[l].channels
                let total = batch.count * p
                var k = 0
                for img in batch { for q in 0..<p { order[k] = Int32(img * p + q); k += 1 } }
                levelRng[l].shuffle(UnsafeMutableBufferPointer(rebasing: order[0..<total]))
                for range in chunkBounds(total: total, chunk: cfg.chunkSize) {
                    let n = range.count
                    // Gather the chunk's rows, condition indices and labels.
                    let store = levels[l]
                    store.labels.withUnsafeBufferPointer { labs in
                        for (j, i) in range.enumerated() {
                            let v = Int(order[i])
                            (ws.x + j * c).update(from: store.row(v), count: c)
                            ws.condIndex[j] = Int32(v % p)
                            ws.labels[j] = labs[v]
                        }
                    }
                    let lr = rate(l, levelDone[l])
                    levelDone[l] += 1
                    try conditions[l].withUnsafeBufferPointer { cb throws(BGADError) in
                        try flow.forwardForTraining(x: ws.x, count: n, condTable: cb.baseAddress!,
                                                    condRows: p, condIndex: ws.condIndex, ell: ws.ell)
                    }
                    guard let loss = chunkObjective(phase1: phase1, count: n, ws) else {
                        continue  // no normal vector: no boundary, no step
                    }
                    guard loss.total.isFinite else {
                        throw .invalid("training diverged in phase \(phase1 ? 1 : 2) at step \(levelDone[l]) of level \(l): "
                            + "the loss is not finite; lower the learning rate or check the feature scale")
                    }
                    try flow.backward(gradEll: ws.gradient)
                    flow.adamStep(learningRate: Float(lr))
                    history.record(level: l, phase: phase1 ? 1 : 2, learningRate: lr, loss: loss,
                                   ell: UnsafeBufferPointer(start: ws.ell, count: n),
                                   labels: UnsafeBufferPointer(start: ws.labels, count: n))
                    done += 1
                    if let progress, !progress(TrainingProgress(step: done, totalSteps: totalSteps, metaEpoch: metaEpoch,
                                                                 phase: phase1 ? 1 : 2, level: l, loss: loss.total,
                                                                 learningRate: lr)) {
                        throw BGADError(.cancelled, "training cancelled by the caller at step \(done) of \(totalSteps)")
                    }
                }
            }
        }

        if cfg.steps > 0 {
            // Step budget: batches of equal size from reshuffled passes, phase 1 then phase 2.
            let schedules = plan.levelSteps.map { StepLearningRate(configuration: cfg, totalSteps: $0) }
            var normalStream = ImageStream(count: nNormal)
            var allStream = ImageStream(count: plan.phase2Images)
            var batch: [Int] = []
            batch.reserveCapacity(cfg.batchSize)
            for b in 0..<(plan.phase1Batches + plan.phase2Batches) {
                let phase1 = b < plan.phase1Batches
                if phase1 {
                    normalStream.next(min(cfg.batchSize, nNormal), into: &batch, rng: &rng)
                } else {
                    allStream.next(min(cfg.batchSize, plan.phase2Images), into: &batch, rng: &rng)
                }
                try trainBatch(batch, phase1: phase1, metaEpoch: phase1 ? 0 : 1) { l, step in schedules[l].rate(step: step) }
            }
        } else {
            // The authors' schedule: meta-epochs × sub-epochs of full passes.
            let schedule = cfg.schedule
            for epoch in 0..<cfg.metaEpochs {
                let phase1 = epoch == 0
                var images = Array(0..<(phase1 ? nNormal : nImages))
                let epochStart = levelDone
                for _ in 0..<cfg.subEpochs {
                    rng.shuffle(&images)
                    var start = 0
                    while start < images.count {
                        let batch = images[start..<min(start + cfg.batchSize, images.count)]
                        start += cfg.batchSize
                        try trainBatch(batch, phase1: phase1, metaEpoch: epoch) { l, step in
                            schedule.rate(epoch: epoch, step: step - epochStart[l], stepsInEpoch: plan.epochSteps[epoch][l])
                        }
                    }
                }
            }
        }
        lastHistory = history.finish()
    }

    /// Batches and step counts of a training run (both schedules).
    struct Plan {
        /// Step budget: batches of phase 1 and of phase 2.
        var phase1Batches = 0, phase2Batches = 0
        /// Step budget: images phase 2 draws from (normal + anomalous, or normal only).
        var phase2Images = 0
        /// Epoch schedule: steps of each level in each meta-epoch.
        var epochSteps: [[Int]] = []
        /// Steps of each level over the whole run.
        var levelSteps: [Int] = []
    }

    /// Works out the plan of a run on `normalImages` normal images (`allImages` with the
    /// anomalous ones that phase 2 uses) with `positions` grid positions per level.
    func trainingPlan(normalImages nNormal: Int, allImages nImages: Int, positions: [Int]) -> Plan {
        let cfg = configuration
        var plan = Plan()
        func chunks(_ images: Int, _ level: Int) -> Int { chunkBounds(total: images * positions[level], chunk: cfg.chunkSize).count }
        if cfg.steps > 0 {
            let finest = positions.indices.max { positions[$0] < positions[$1] }!
            let b1 = min(cfg.batchSize, nNormal), b2 = min(cfg.batchSize, nImages)
            let s1 = Int((Double(cfg.steps) * cfg.phase1Fraction).rounded())
            plan.phase1Batches = s1 == 0 ? 0 : (s1 + chunks(b1, finest) - 1) / chunks(b1, finest)
            let s2 = max(0, cfg.steps - plan.phase1Batches * chunks(b1, finest))
            plan.phase2Batches = s2 == 0 ? 0 : (s2 + chunks(b2, finest) - 1) / chunks(b2, finest)
            plan.phase2Images = nImages
            plan.levelSteps = positions.indices.map { plan.phase1Batches * chunks(b1, $0) + plan.phase2Batches * chunks(b2, $0) }
        } else {
            func batchSizes(_ images: Int) -> [Int] {
                var s: [Int] = []
                var left = images
                while left > 0 { s.append(min(cfg.batchSize, left)); left -= cfg.batchSize }
                return s
            }
            plan.epochSteps = (0..<cfg.metaEpochs).map { e in
                let sizes = batchSizes(e == 0 ? nNormal : nImages)
                return positions.indices.map { l in cfg.subEpochs * sizes.reduce(0) { $0 + chunks($1, l) } }
            }
            plan.levelSteps = positions.indices.map { l in plan.epochSteps.reduce(0) { $0 + $1[l] } }
        }
        return plan
    }

    /// The history of the last `train` call (nil before the first).
    public private(set) var lastHistory: TrainingHistory? = nil

    /// Loss and `dL/dℓ` of one chunk (first `count` entries of the buffers) for the
    /// phase and the configured variant; nil when the chunk has no normal vector.
    private func chunkObjective(phase1: Bool, count n: Int, _ ws: ChunkWorkspace) -> ChunkLoss? {
        let p = configuration.loss
        let variant = configuration.variant
        let e = UnsafeBufferPointer(start: ws.ell, count: n)
        let lab = UnsafeBufferPointer(start: ws.labels, count: n)
        var hasNormal = false, hasAbnormal = false
        for i in 0..<n { if lab[i] == 0 { hasNormal = true } else { hasAbnormal = true } }
        if !hasNormal { return nil }
        // Focal weights apply in phase 2 of BGAD and BGAD w/o (the authors' recipe).
        let focal = !phase1 && p.focalWeighting && variant != .nfad
        if focal {
            for i in 0..<n {
                ws.normalWeights[i] = normalFocalWeight(e[i])
                ws.abnormalWeights[i] = abnormalFocalWeight(e[i])
            }
        }
        var boundaries: ExplicitBoundaries? = nil
        var semiPush = false
        let scratch = UnsafeMutableBufferPointer(start: ws.scratch, count: n)
        if !phase1 {
            switch variant {
            case .bgad:
                if hasAbnormal {
                    boundaries = explicitBoundaries(ell: e, labels: lab, parameters: p, scratch: scratch)
                    semiPush = true
                }
            case .bgadWithoutAnomalies:
                boundaries = explicitBoundaries(ell: e, labels: lab, parameters: p, scratch: scratch)
            case .nfad:
                break
            }
        }
        return boundaryGuidedLoss(
            ell: e, labels: lab, boundaries: boundaries,
            normalWeights: focal ? UnsafeBufferPointer(start: ws.normalWeights, count: n) : nil,
            abnormalWeights: focal ? UnsafeBufferPointer(start: ws.abnormalWeights, count: n) : nil,
            semiPush: semiPush, normalizer: p.normalizer, lambda: p.lambda,
            gradient: UnsafeMutableBufferPointer(start: ws.gradient, count: n))
    }
}

/// Buffers of one training step, allocated once per training run.
final class ChunkWorkspace {
    let x: UnsafeMutablePointer<Float>
    let condIndex: UnsafeMutablePointer<Int32>
    let labels: UnsafeMutablePointer<UInt8>
    let ell: UnsafeMutablePointer<Float>
    let gradient: UnsafeMutablePointer<Float>
    let scratch: UnsafeMutablePointer<Float>
    let normalWeights: UnsafeMutablePointer<Float>
    let abnormalWeights: UnsafeMutablePointer<Float>

    init(capacity n: Int, maxChannels c: Int) {
        x = .allocate(capacity: n * c); x.initialize(repeating: 0, count: n * c)
        condIndex = .allocate(capacity: n); condIndex.initialize(repeating: 0, count: n)
        labels = .allocate(capacity: n); labels.initialize(repeating: 0, count: n)
        ell = .allocate(capacity: n); ell.initialize(repeating: 0, count: n)
        gradient = .allocate(capacity: n); gradient.initialize(repeating: 0, count: n)
        scratch = .allocate(capacity: n); scratch.initialize(repeating: 0, count: n)
        normalWeights = .allocate(capacity: n); normalWeights.initialize(repeating: 1, count: n)
        abnormalWeights = .allocate(capacity: n); abnormalWeights.initialize(repeating: 1, count: n)
    }

    deinit {
        x.deallocate(); condIndex.deallocate(); labels.deallocate(); ell.deallocate()
        gradient.deallocate(); scratch.deallocate(); normalWeights.deallocate(); abnormalWeights.deallocate()
    }
}
