#if canImport(Glibc)
import Glibc
#endif

/// Learning rate of the authors' recipe: cosine decay over the meta-epochs
/// (`η_min = lr · decay³`) after a linear warm-up from `lr / 10` over the first
/// `warmupEpochs` meta-epochs.
///
/// The warm-up is counted in the REAL optimisation steps of each meta-epoch: step `i` of
/// `n` in meta-epoch `e < W` has progress `p = (e + i / n) / W` and rate
/// `lr/10 + p · (cos(W) − lr/10)`, where `cos(e) = η_min + (lr − η_min)(1 + cos(π e / M)) / 2`.
/// (The reference's few-anomaly loop counts two "batches" per epoch here, so its warm-up
/// ends after two steps and the rate overshoots; see METHOD.md, pitfalls.)
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
        let etaMin = baseRate * decayRate * decayRate * decayRate
        let m = Double(max(metaEpochs, 1))
        return etaMin + (baseRate - etaMin) * (1 + cos(Double.pi * Double(epoch) / m)) / 2
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
