/// The whole BGAD model on feature maps: one conditional flow per feature level (any
/// number of levels, any channel counts, a positional condition on each level's grid),
/// the training configuration, and the calibration that turns likelihoods into scores.
public final class BGADModel {
    /// Hyper-parameters (training recipe and flow architecture).
    public private(set) var configuration: TrainingConfiguration
    /// Channels per level.
    public let channels: [Int]
    /// One flow per level.
    public private(set) var flows: [ConditionalFlow]
    /// Score references and default thresholds; nil until trained.
    public private(set) var calibration: Calibration?
    /// What the last `fit` did, interval by interval (nil for a model that was never fitted,
    /// or was read from a file written before histories were kept).
    public private(set) var history: TrainingHistory?
    private let evaluator = LevelLikelihoodEvaluator()

    /// An untrained model with fresh flows (initialised from `configuration.seed`).
    public init(channels: [Int], configuration: TrainingConfiguration = TrainingConfiguration()) throws(BGADError) {
        guard !channels.isEmpty else { throw .invalid("a model needs at least one feature level") }
        for (l, c) in channels.enumerated() where c < 2 || c > 65536 {
            throw .invalid("level \(l): channel count must lie in 2...65536, got \(c)")
        }
        try configuration.validate()
        self.channels = channels
        self.configuration = configuration
        self.flows = try BGADModel.freshFlows(channels: channels, configuration: configuration)
    }

    /// A model from stored parts (used by the file reader).
    init(channels: [Int], configuration: TrainingConfiguration, flows: [ConditionalFlow], calibration: Calibration?,
         history: TrainingHistory?) {
        self.channels = channels
        self.configuration = configuration
        self.flows = flows
        self.calibration = calibration
        self.history = history
    }

    /// Seed of level `l`'s flow, derived from the model seed.
    static func flowSeed(_ seed: UInt64, level: Int) -> UInt64 {
        var g = SeededRandom(seed: seed &+ UInt64(level) &* 0x9E37_79B9_7F4A_7C15)
        return g.next()
    }

    private static func freshFlows(channels: [Int], configuration c: TrainingConfiguration) throws(BGADError) -> [ConditionalFlow] {
        var flows: [ConditionalFlow] = []
        for (l, ch) in channels.enumerated() {
            flows.append(try ConditionalFlow(dim: ch, condDim: c.conditionDimension, blocks: c.blocks,
                                             clamp: Float(c.clamp), seed: flowSeed(c.seed, level: l)))
        }
        return flows
    }

    /// Changes a hyper-parameter by name (see `TrainingConfiguration.set`). Architecture
    /// knobs (`blocks`, `clamp`, `seed`) take effect at the next `fit`.
    public func setParameter(_ name: String, _ value: String) throws(BGADError) {
        var c = configuration
        try c.set(name, value)
        try c.validate()
        configuration = c
    }

    /// Whether the model has been trained (and calibrated).
    public var isTrained: Bool { calibration != nil }

    /// Trains from scratch (fresh flows from the seed), then calibrates on the training
    /// normal images at `calibrationHeight × calibrationWidth` (default: the mask size when
    /// masks are given, else the finest level's grid).
    public func fit(_ data: TrainingSet, calibrationHeight: Int? = nil, calibrationWidth: Int? = nil,
                    progress: ((TrainingProgress) -> Bool)? = nil) throws(BGADError) {
        try data.validate(channels: channels)
        let finest = data.normal.max { $0.positions < $1.positions }!
        let h = calibrationHeight ?? (data.masks != nil ? data.maskHeight : finest.height)
        let w = calibrationWidth ?? (data.masks != nil ? data.maskWidth : finest.width)
        guard h >= 1, w >= 1, h <= 1 << 14, w <= 1 << 14 else {
            throw .invalid("calibration size must lie between 1×1 and 16384×16384, got \(h)×\(w)")
        }
        let rows = try TrainingRows(data, withAnomalies: configuration.variant.usesAnomalies && data.anomalousCount > 0)
        try fit(rows: rows, calibrationHeight: h, calibrationWidth: w, progress: progress)
    }

    /// Trains from scratch on the rows of every training image (normal images first; see
    /// `TrainingRows`), then calibrates on the normal ones at `calibrationHeight ×
    /// calibrationWidth`. The same numbers as `fit(_:)` on the maps the rows hold.
    public func fit(rows data: TrainingRows, calibrationHeight h: Int, calibrationWidth w: Int,
                    progress: ((TrainingProgress) -> Bool)? = nil) throws(BGADError) {
        guard h >= 1, w >= 1, h <= 1 << 14, w <= 1 << 14 else {
            throw .invalid("calibration size must lie between 1×1 and 16384×16384, got \(h)×\(w)")
        }
        guard data.levels.map({ $0.channels }) == channels else {
            throw .invalid("training rows: channels \(data.levels.map { $0.channels }), the model expects \(channels)")
        }
        calibration = nil
        history = nil
        flows = try BGADModel.freshFlows(channels: channels, configuration: configuration)
        let trainer = try BoundaryGuidedTrainer(configuration: configuration, flows: flows)
        try trainer.train(rows: data, progress: progress)
        history = trainer.lastHistory

        var grids: [[Float]] = []
        for (l, store) in data.levels.enumerated() {
            var g = [Float](repeating: 0, count: data.normalCount * store.positions)
            try g.withUnsafeMutableBufferPointer { b throws(BGADError) in
                for i in 0..<data.normalCount {
                    try evaluator.logLikelihood(flow: flows[l], rows: store.image(i), height: store.height, width: store.width,
                                                into: b.baseAddress! + i * store.positions)
                }
            }
            grids.append(g)
        }
        calibration = try Calibration.fit(ell: grids, grids: data.levels.map { ($0.height, $0.width) },
                                          images: data.normalCount, height: h, width: w, beta: configuration.loss.beta)
    }

    /// Validates scoring input: one map stack per level, matching channels, same image count.
    private func checkScoringInput(_ features: [FeatureMaps]) throws(BGADError) -> Calibration {
        guard let cal = calibration else { throw .invalid("the model is not trained: call fit first") }
        guard features.count == channels.count else {
            throw .invalid("features: expected \(channels.count) levels, got \(features.count)")
        }
        let n = features[0].count
        for (l, m) in features.enumerated() {
            guard m.channels == channels[l] else {
                throw .invalid("features: level \(l) has \(m.channels) channels, the model expects \(channels[l])")
            }
            guard m.count == n else { throw .invalid("features: level \(l) has \(m.count) images, level 0 has \(n)") }
            guard m.height >= 1, m.width >= 1 else { throw .invalid("features: level \(l) has an empty grid") }
            try m.requireFinite("features, level \(l)")
        }
        return cal
    }

    /// Per-level log-likelihood grids `ℓ` of every image: `out[l]` receives
    /// `count × H_l × W_l` floats.
    public func logLikelihoods(_ features: [FeatureMaps], into out: [UnsafeMutablePointer<Float>]) throws(BGADError) {
        _ = try checkScoringInput(features)
        guard out.count == features.count else { throw .invalid("one output buffer per level is needed") }
        for (l, maps) in features.enumerated() {
            for i in 0..<maps.count {
                try evaluator.logLikelihood(flow: flows[l], maps: maps, image: i, into: out[l] + i * maps.positions)
            }
        }
    }

    /// Anomaly maps `s = S_max − Σ_l bilinear(exp(ℓ_l − ref_l))` of every image at
    /// `height × width`, written to `out` (`count × height × width` floats). Each image is
    /// scored on its own, with the stored calibration.
    public func anomalyMaps(_ features: [FeatureMaps], height: Int, width: Int,
                            into out: UnsafeMutablePointer<Float>) throws(BGADError) {
        try score(features, height: height, width: width, maps: out, imageScores: nil)
    }

    /// Maps and/or image scores of every image at `height × width` (the calibration size for
    /// scores comparable with `calibration.imageThreshold`). `maps` receives `count × height ×
    /// width` floats as `anomalyMaps` does; `imageScores` receives `count` image scores
    /// `−log(min Σ)` — the maximum of the map in the same order, but without the ties that
    /// float rounding creates among strong defects (see `AnomalyMapper.imageScore`).
    public func score(_ features: [FeatureMaps], height: Int, width: Int,
                      maps: UnsafeMutablePointer<Float>?, imageScores: UnsafeMutablePointer<Double>?) throws(BGADError) {
        let cal = try checkScoringInput(features)
        guard height >= 1, width >= 1, height <= 1 << 14, width <= 1 << 14 else {
            throw .invalid("image size must lie between 1×1 and 16384×16384, got \(height)×\(width)")
        }
        let mapper = AnomalyMapper(height: height, width: width)
        let sizes = features.map { $0.positions }
        let grids = features.map { ($0.height, $0.width) }
        var ell = [Float](repeating: 0, count: sizes.reduce(0, +))
        let hw = height * width
        var scratch = [Float](repeating: 0, count: maps == nil ? hw : 0)
        try ell.withUnsafeMutableBufferPointer { e throws(BGADError) in
            var pointers: [UnsafeMutablePointer<Float>] = []
            var o = 0
            for n in sizes { pointers.append(e.baseAddress! + o); o += n }
            try scratch.withUnsafeMutableBufferPointer { sb throws(BGADError) in
                for i in 0..<features[0].count {
                    let map = maps.map { $0 + i * hw } ?? sb.baseAddress!
                    map.update(repeating: 0, count: hw)
                    for (l, m) in features.enumerated() {
                        try evaluator.logLikelihood(flow: flows[l], maps: m, image: i, into: pointers[l])
                        mapper.accumulateNormality(ell: pointers[l], gridHeight: m.height, gridWidth: m.width,
                                                   reference: cal.references[l], into: map)
                    }
                    if let imageScores {
                        imageScores[i] = mapper.imageScore(sum: map, ell: pointers.map { UnsafePointer($0) }, grids: grids,
                                                           references: cal.references)
                    }
                    if maps != nil { for q in 0..<hw { map[q] = cal.maxNormality - map[q] } }
                }
            }
        }
    }
}
