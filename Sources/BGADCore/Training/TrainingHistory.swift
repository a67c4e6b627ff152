/// What training did, level by level: the loss and the boundaries averaged over intervals of
/// optimizer steps (at most `TrainingHistory.maxRecords` intervals per level, never one that
/// spans the change of phase), so a user can see whether the flows had converged.
public struct TrainingHistory: Equatable, Sendable {
    /// One interval of one level's steps (means over the interval's steps).
    public struct Record: Equatable, Sendable {
        /// The level's step count at the end of the interval.
        public var endStep: Int
        /// Training phase: 1 (normal images, `L_ml`) or 2 (the variant's full objective).
        public var phase: Int
        /// Mean learning rate.
        public var learningRate: Double
        /// Mean total loss of the steps.
        public var loss: Double
        /// Mean maximum-likelihood term (focal-weighted in phase 2 when focal weighting is on).
        public var maximumLikelihood: Double
        /// Mean semi-pull term `L_n` (0 where it was not evaluated).
        public var semiPull: Double
        /// Mean semi-push term `L_a` (0 where it was not evaluated).
        public var semiPush: Double
        /// Mean log-likelihood `ℓ` of the normal vectors (rises while the flow learns).
        public var normalLogLikelihood: Double
        /// Mean `ℓ` of the abnormal vectors; NaN when the interval saw none.
        public var abnormalLogLikelihood: Double
        /// Mean normal boundary `b_n`, in `ℓ` units (`α_n · b_n`, comparable with the mean
        /// log-likelihoods); NaN when no step of the interval used boundaries.
        public var normalBoundary: Double
        /// Mean abnormal boundary `b_a` in `ℓ` units (`α_n · b_a`); NaN when no step of the
        /// interval used boundaries.
        public var abnormalBoundary: Double

        /// The values in the order of `fieldNames`.
        public var fields: [Double] {
            [Double(endStep), Double(phase), learningRate, loss, maximumLikelihood, semiPull, semiPush,
             normalLogLikelihood, abnormalLogLikelihood, normalBoundary, abnormalBoundary]
        }

        /// A record from values in the order of `fieldNames` (the file reader's inverse of `fields`).
        public init(fields f: [Double]) {
            endStep = Int(f[0]); phase = Int(f[1]); learningRate = f[2]; loss = f[3]; maximumLikelihood = f[4]
            semiPull = f[5]; semiPush = f[6]; normalLogLikelihood = f[7]; abnormalLogLikelihood = f[8]
            normalBoundary = f[9]; abnormalBoundary = f[10]
        }
    }

    /// Names of a record's fields, in the order of `Record.fields` (also the C ABI's order).
    public static let fieldNames = [
        "step", "phase", "learning_rate", "loss", "maximum_likelihood", "semi_pull", "semi_push",
        "normal_log_likelihood", "abnormal_log_likelihood", "normal_boundary", "abnormal_boundary",
    ]
    /// The most intervals recorded per level.
    public static let maxRecords = 100

    /// Per level, the intervals in order.
    public var levels: [[Record]]

    /// A history from its records.
    public init(levels: [[Record]]) { self.levels = levels }

    /// How far phase 2 pushed level `level`'s known anomalies away from its normal vectors
    /// by the end of training, in margins: over the last quarter of the phase-2 records that
    /// saw abnormal vectors, (mean normal `ℓ` − mean abnormal `ℓ`) ÷ mean (`b_n` − `b_a`).
    ///
    /// The explicit boundary asks for a gap of at least one margin (`b_a` = `b_n` − τ). A
    /// flow trained long enough opens it well beyond one margin on ELPV at every data size
    /// (2.0 to 22 at the level that separates best with the default budget over 15 runs, 53 to
    /// 11,000 with four times the budget), while a run cut short is still within it (0.14 to 0.42 with
    /// a tenth or a quarter of the budget; docs/TRAINING.md). The loss itself is no guide:
    /// the cosine decay flattens every run's loss at the end, trained or not.
    /// NaN without phase-2 records that saw abnormal vectors (NFAD, or no known anomalies),
    /// or with a margin that is not positive.
    public func separation(level: Int) -> Double {
        let p = levels[level].filter {
            $0.phase == 2 && $0.abnormalLogLikelihood.isFinite && $0.normalBoundary.isFinite && $0.abnormalBoundary.isFinite
        }
        guard !p.isEmpty else { return .nan }
        let tail = p[(p.count - max(1, p.count / 4))...]
        var gap = 0.0, margin = 0.0
        for r in tail {
            gap += r.normalLogLikelihood - r.abnormalLogLikelihood
            margin += r.normalBoundary - r.abnormalBoundary
        }
        guard margin > 0, gap.isFinite else { return .nan }
        return gap / margin
    }
}

/// Accumulates `TrainingHistory` during training (no allocation per step).
final class TrainingHistoryRecorder {
    private let interval: [Int]
    private let normalizer: Double
    private var records: [[TrainingHistory.Record]]
    private var steps: [Int]
    private var open: [Accumulator]

    private struct Accumulator {
        var count = 0, phase = 0
        var lr = 0.0, loss = 0.0, ml = 0.0, pull = 0.0, push = 0.0, normalEll = 0.0
        var abnormalEll = 0.0, abnormalSteps = 0, bn = 0.0, ba = 0.0, boundarySteps = 0
    }

    /// A recorder for levels that will take `totalSteps[l]` steps; boundaries are recorded in
    /// `ℓ` units (times the normalizer α_n).
    init(totalSteps: [Int], normalizer: Double) {
        self.normalizer = normalizer
        interval = totalSteps.map { max(1, ($0 + TrainingHistory.maxRecords - 1) / TrainingHistory.maxRecords) }
        records = totalSteps.map { _ in [] }
        for l in records.indices { records[l].reserveCapacity(TrainingHistory.maxRecords + 2) }
        steps = totalSteps.map { _ in 0 }
        open = totalSteps.map { _ in Accumulator() }
    }

    /// Adds one step of `level`.
    func record(level l: Int, phase: Int, learningRate: Double, loss: ChunkLoss,
                ell: UnsafeBufferPointer<Float>, labels: UnsafeBufferPointer<UInt8>) {
        if open[l].count > 0, open[l].phase != phase { flush(l) }
        var normalSum = 0.0, abnormalSum = 0.0
        for i in 0..<ell.count {
            if labels[i] == 0 { normalSum += Double(ell[i]) } else { abnormalSum += Double(ell[i]) }
        }
        steps[l] += 1
        var a = open[l]
        a.count += 1; a.phase = phase
        a.lr += learningRate; a.loss += loss.total; a.ml += loss.maximumLikelihood
        a.pull += loss.semiPull; a.push += loss.semiPush
        a.normalEll += normalSum / Double(max(loss.normalCount, 1))
        if loss.abnormalCount > 0 { a.abnormalEll += abnormalSum / Double(loss.abnormalCount); a.abnormalSteps += 1 }
        if let b = loss.boundaries { a.bn += Double(b.normal) * normalizer; a.ba += Double(b.abnormal) * normalizer; a.boundarySteps += 1 }
        open[l] = a
        if a.count == interval[l] { flush(l) }
    }

    private func flush(_ l: Int) {
        let a = open[l]
        guard a.count > 0 else { return }
        let n = Double(a.count)
        records[l].append(TrainingHistory.Record(fields: [
            Double(steps[l]), Double(a.phase), a.lr / n, a.loss / n, a.ml / n, a.pull / n, a.push / n, a.normalEll / n,
            a.abnormalSteps > 0 ? a.abnormalEll / Double(a.abnormalSteps) : .nan,
            a.boundarySteps > 0 ? a.bn / Double(a.boundarySteps) : .nan,
            a.boundarySteps > 0 ? a.ba / Double(a.boundarySteps) : .nan,
        ]))
        open[l] = Accumulator()
    }

    /// The history, with every open interval closed.
    func finish() -> TrainingHistory {
        for l in open.indices { flush(l) }
        return TrainingHistory(levels: records)
    }
}
