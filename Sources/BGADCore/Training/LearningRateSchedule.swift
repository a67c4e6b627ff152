#if canImport(Glibc)
import Glibc
#endif

/// The cosine both schedules follow: `to + (from − to)(1 + cos(π t / period)) / 2`.
@inline(__always)
func cosineDecay(from: Double, to: Double, at t: Double, of period: Double) -> Double {
    to + (from - to) * (1 + cos(Double.pi * t / period)) / 2
}

/// Learning rate of the authors' recipe: cosine decay over the meta-epochs
/// (`η_min = lr · decay³`) after a linear warm-up from `lr / 10` over the first
/// `warmupEpochs` meta-epochs.
///
/// The warm-up is counted in the REAL optimisation steps of each meta-epoch: step `i` of
/// `n` in meta-epoch `e < W` has progress `p = (e + i / n) / W` and rate
/// `lr/10 + p · (cos(W) − lr/10)`, where `cos(e) = η_min + (lr − η_min)(1 + cos(π e / M)) / 2`.
/// (The reference's few-anomaly loop counts two "batches" per epoch here, so its warm-up
/// ends after two steps and the rate overshoots; see `docs/METHOD.md`, "Pitfalls".)
/// After the warm-up the rate is `cos(e)` for the whole meta-epoch `e`.
public struct LearningRateSchedule: Equatable, Sendable {
    /// Base learning rate `lr`.
    public var baseRate: Double
    /// Number of meta-epochs `M` of the cosine period.
    public var metaEpochs: Int
    /// Number of warm-up meta-epochs `W` (0 = no warm-up).
    public var warmupEpochs: Int
    /// Decay rate `d`; the cosine ends at `η_min = lr · d³`.
    public var decayRate: Double

    /// Creates the schedule (authors' defaults: 2 warm-up epochs, decay 0.1).
    public init(baseRate: Double, metaEpochs: Int, warmupEpochs: Int = 2, decayRate: Double = 0.1) {
        self.baseRate = baseRate
        self.metaEpochs = metaEpochs
        self.warmupEpochs = warmupEpochs
        self.decayRate = decayRate
    }

    /// Cosine-decayed rate at the start of meta-epoch `epoch`.
    public func cosineRate(epoch: Int) -> Double {
        cosineDecay(from: baseRate, to: baseRate * decayRate * decayRate * decayRate,
                    at: Double(epoch), of: Double(max(metaEpochs, 1)))
    }

    /// Rate of step `step` (0-based) of the `stepsInEpoch` steps of meta-epoch `epoch`.
    public func rate(epoch: Int, step: Int, stepsInEpoch: Int) -> Double {
        if epoch < warmupEpochs {
            let from = baseRate / 10
            let to = cosineRate(epoch: warmupEpochs)
            let p = (Double(epoch) + Double(step) / Double(max(stepsInEpoch, 1))) / Double(warmupEpochs)
            return from + p * (to - from)
        }
        return cosineRate(epoch: epoch)
    }
}

/// Learning rate of a step budget (`TrainingConfiguration.steps > 0`), laid out over one
/// level's `totalSteps` optimizer steps: linear warm-up from `lr / 10` over the first
/// `W = ⌊warmupFraction · T⌋` steps up to the cosine's value at step `W`, then the cosine
/// `η(t) = η_min + (lr − η_min)(1 + cos(π t / T)) / 2` with `η_min = lr · d³`, so the last
/// step runs at about `η_min`. The same shape as the epoch schedule with one warm-up epoch of
/// four, but continuous and independent of the number of images.
public struct StepLearningRate: Equatable, Sendable {
    /// Base rate `lr`.
    public var baseRate: Double
    /// Steps `T` of the level.
    public var totalSteps: Int
    /// Warm-up steps `W`.
    public var warmupSteps: Int
    /// Final rate `η_min = lr · d³`.
    public var minimumRate: Double

    /// The schedule of `configuration` over `totalSteps` steps.
    public init(configuration c: TrainingConfiguration, totalSteps: Int) {
        baseRate = c.learningRate
        self.totalSteps = max(totalSteps, 1)
        warmupSteps = Int(c.warmupFraction * Double(max(totalSteps, 1)))
        minimumRate = c.learningRate * c.decayRate * c.decayRate * c.decayRate
    }

    /// Cosine part at step `t`.
    public func cosineRate(step t: Int) -> Double {
        cosineDecay(from: baseRate, to: minimumRate, at: Double(t), of: Double(totalSteps))
    }

    /// Rate of step `t` (0-based).
    public func rate(step t: Int) -> Double {
        if t < warmupSteps {
            let from = baseRate / 10, to = cosineRate(step: warmupSteps)
            return from + (Double(t) / Double(warmupSteps)) * (to - from)
        }
        return cosineRate(step: t)
    }
}
