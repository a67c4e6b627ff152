/// Which objective the trainer optimises: BGAD and the two ablations users compare against.
public enum TrainingVariant: String, CaseIterable, Sendable {
    /// BGAD: phase 1 maximum likelihood on normal vectors, then `L_ml + λ(L_n + L_a)` on
    /// chunks holding known anomalies (paper Eq. 9).
    case bgad
    /// "BGAD w/o": no anomalies; phase 2 is `L_ml + λ · L_n` (semi-pull only).
    case bgadWithoutAnomalies = "bgad_wo"
    /// NFAD: the same flows trained with the maximum-likelihood loss only, normal data only.
    case nfad

    /// Parses the name used by the C ABI and Python (`bgad`, `bgad_wo`, `nfad`).
    public init(name: String) throws(BGADError) {
        guard let v = TrainingVariant(rawValue: name) else {
            throw .invalid("variant must be one of bgad, bgad_wo, nfad; got '\(name)'")
        }
        self = v
    }

    /// Whether the variant trains on known anomalies.
    public var usesAnomalies: Bool { self == .bgad }
}

/// Every knob of training, with the authors' defaults (`docs/METHOD.md`, "Defaults"; README settings:
/// β = 0.01 and focal weighting on).
public struct TrainingConfiguration: Equatable, Sendable {
    /// Objective variant.
    public var variant: TrainingVariant = .bgad
    /// Training budget in optimizer steps of the finest level (the level with the most grid
    /// positions); 0 = the authors' epoch schedule (`metaEpochs` × `subEpochs`).
    ///
    /// With a budget the schedule no longer depends on the number of images: batches of
    /// `batchSize` images are drawn from reshuffled passes over the training images until the
    /// finest level has taken `steps` steps; every level steps on the same batches, so a
    /// coarser level (fewer positions per image) takes proportionally fewer steps. The first
    /// `phase1Fraction` of the batches are phase 1 (normal images, `L_ml`), the rest phase 2;
    /// the learning rate warms up linearly from `lr/10` over the first `warmupFraction` of each
    /// level's steps, then follows a cosine down to `lr · decayRate³` at the last step.
    public var steps: Int = 0
    /// Share of a step budget spent in phase 1 (normal images only), in [0, 1).
    public var phase1Fraction: Double = 0.25
    /// Share of a step budget spent warming the learning rate up, in [0, 1).
    public var warmupFraction: Double = 0.25
    /// Meta-epochs; meta-epoch 0 is phase 1 (normal only, `L_ml`). Unused when `steps > 0`.
    public var metaEpochs: Int = 25
    /// Passes over the training images per meta-epoch. Unused when `steps > 0`.
    public var subEpochs: Int = 8
    /// Base learning rate of Adam.
    public var learningRate: Double = 2e-4
    /// Warm-up meta-epochs (linear from lr/10).
    public var warmupEpochs: Int = 2
    /// Cosine decay rate `d` (`η_min = lr · d³`).
    public var decayRate: Double = 0.1
    /// Images per batch; the vectors of a batch are shuffled and cut into chunks.
    public var batchSize: Int = 32
    /// Vectors per optimisation step (chunk).
    public var chunkSize: Int = 4096
    /// Boundary and loss hyper-parameters (β, τ, α_n, λ, focal weighting).
    public var loss = BoundaryLossParameters()
    /// Seed of every random choice (flow initialisation, rotations, shuffles).
    public var seed: UInt64 = 0
    /// Coupling blocks per flow.
    public var blocks: Int = 8
    /// Clamp α of the coupling log-scales.
    public var clamp: Double = 1.9
    /// Dimension of the positional condition.
    public var conditionDimension: Int = 128

    /// The authors' defaults.
    public init() {}

    /// The recipe `Detector` trains with unless told otherwise: a budget of
    /// `defaultSteps` optimizer steps (independent of the number of images; docs/TRAINING.md
    /// says how it was chosen), lr 2e-3, a quarter of the budget in phase 1 and a quarter
    /// warming up; every other knob keeps the authors' default.
    public static var detectorRecipe: TrainingConfiguration {
        var c = TrainingConfiguration()
        c.steps = defaultSteps
        c.learningRate = 2e-3
        return c
    }

    /// The default step budget of `detectorRecipe`.
    public static let defaultSteps = 1500

    /// Throws unless every knob is in range; the message names it.
    public func validate() throws(BGADError) {
        guard steps >= 0, steps <= 100_000_000 else { throw .invalid("steps must lie in 0...100000000 (0 = epoch schedule), got \(steps)") }
        guard phase1Fraction.isFinite, phase1Fraction >= 0, phase1Fraction < 1 else {
            throw .invalid("phase1_fraction must lie in [0, 1), got \(phase1Fraction)")
        }
        guard warmupFraction.isFinite, warmupFraction >= 0, warmupFraction < 1 else {
            throw .invalid("warmup_fraction must lie in [0, 1), got \(warmupFraction)")
        }
        guard metaEpochs >= 1 else { throw .invalid("meta_epochs must be ≥ 1, got \(metaEpochs)") }
        guard subEpochs >= 1 else { throw .invalid("sub_epochs must be ≥ 1, got \(subEpochs)") }
        guard learningRate.isFinite, learningRate > 0 else { throw .invalid("lr must be > 0, got \(learningRate)") }
        guard warmupEpochs >= 0 else { throw .invalid("warmup_epochs must be ≥ 0, got \(warmupEpochs)") }
        guard decayRate.isFinite, decayRate > 0, decayRate <= 1 else { throw .invalid("decay_rate must lie in (0, 1], got \(decayRate)") }
        guard batchSize >= 1, batchSize <= 1 << 20 else { throw .invalid("batch_size must lie in 1...1048576, got \(batchSize)") }
        guard chunkSize >= 2, chunkSize <= 1 << 24 else { throw .invalid("chunk_size must lie in 2...16777216, got \(chunkSize)") }
        guard blocks >= 1, blocks <= 64 else { throw .invalid("blocks must lie in 1...64, got \(blocks)") }
        guard clamp.isFinite, clamp > 0 else { throw .invalid("clamp must be > 0, got \(clamp)") }
        guard conditionDimension >= 2, conditionDimension % 4 == 0 else {
            throw .invalid("condition dimension must be a positive multiple of 4, got \(conditionDimension)")
        }
        try loss.validate()
    }

    /// The learning-rate schedule of this configuration.
    public var schedule: LearningRateSchedule {
        LearningRateSchedule(baseRate: learningRate, metaEpochs: metaEpochs, warmupEpochs: warmupEpochs, decayRate: decayRate)
    }

    /// Sets a knob from its Python/C name and a textual value (e.g. `("beta", "0.05")`).
    public mutating func set(_ name: String, _ value: String) throws(BGADError) {
        func int() throws(BGADError) -> Int {
            guard let v = Int(value) else { throw .invalid("\(name): expected an integer, got '\(value)'") }
            return v
        }
        func double() throws(BGADError) -> Double {
            guard let v = Double(value), v.isFinite else { throw .invalid("\(name): expected a finite number, got '\(value)'") }
            return v
        }
        func bool() throws(BGADError) -> Bool {
            switch value.lowercased() {
            case "1", "true", "yes", "on": return true
            case "0", "false", "no", "off": return false
            default: throw .invalid("\(name): expected true or false, got '\(value)'")
            }
        }
        switch name {
        case "variant": variant = try TrainingVariant(name: value)
        case "steps": steps = try int()
        case "phase1_fraction": phase1Fraction = try double()
        case "warmup_fraction": warmupFraction = try double()
        case "meta_epochs": metaEpochs = try int()
        case "sub_epochs": subEpochs = try int()
        case "lr": learningRate = try double()
        case "warmup_epochs": warmupEpochs = try int()
        case "decay_rate": decayRate = try double()
        case "batch_size": batchSize = try int()
        case "chunk_size": chunkSize = try int()
        case "beta": loss.beta = try double()
        case "tau": loss.tau = try double()
        case "alpha_n": loss.normalizer = try double()
        case "lam": loss.lambda = try double()
        case "focal": loss.focalWeighting = try bool()
        case "seed":
            guard let v = UInt64(value) else { throw .invalid("seed: expected an integer in 0...2⁶⁴−1, got '\(value)'") }
            seed = v
        case "blocks": blocks = try int()
        case "clamp": clamp = try double()
        default:
            throw .invalid("unknown hyper-parameter '\(name)'; known: \(TrainingConfiguration.parameterNames.joined(separator: ", "))")
        }
    }

    /// Names accepted by `set` (and reported by `describe`), in a stable order.
    public static let parameterNames = [
        "variant", "steps", "phase1_fraction", "warmup_fraction", "meta_epochs", "sub_epochs", "lr", "warmup_epochs", "decay_rate", "batch_size",
        "chunk_size", "beta", "tau", "alpha_n", "lam", "focal", "seed", "blocks", "clamp",
    ]

    /// The value of a knob as text (the inverse of `set`; doubles round-trip exactly).
    public func get(_ name: String) throws(BGADError) -> String {
        switch name {
        case "variant": return variant.rawValue
        case "steps": return String(steps)
        case "phase1_fraction": return String(phase1Fraction)
        case "warmup_fraction": return String(warmupFraction)
        case "meta_epochs": return String(metaEpochs)
        case "sub_epochs": return String(subEpochs)
        case "lr": return String(learningRate)
        case "warmup_epochs": return String(warmupEpochs)
        case "decay_rate": return String(decayRate)
        case "batch_size": return String(batchSize)
        case "chunk_size": return String(chunkSize)
        case "beta": return String(loss.beta)
        case "tau": return String(loss.tau)
        case "alpha_n": return String(loss.normalizer)
        case "lam": return String(loss.lambda)
        case "focal": return loss.focalWeighting ? "true" : "false"
        case "seed": return String(seed)
        case "blocks": return String(blocks)
        case "clamp": return String(clamp)
        default: throw .invalid("unknown hyper-parameter '\(name)'")
        }
    }
}
