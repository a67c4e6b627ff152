/// Image-level ranking metrics: ROC AUC, average precision, F1-optimal threshold.
///
/// All three walk the distinct score values from the highest down, with tied scores
/// forming one threshold step, exactly as scikit-learn's `roc_curve` and
/// `precision_recall_curve` do. Arithmetic is in `Double` on exact integer counts.

/// One distinct score value and how many positives / negatives carry it.
@usableFromInline
struct TieGroup {
    @usableFromInline var score: Double
    @usableFromInline var positives: Int
    @usableFromInline var negatives: Int
}

/// Validates labels/scores and returns the tie groups in descending score order,
/// with the totals of positives and negatives.
@usableFromInline
func descendingTieGroups(
    labels: UnsafeBufferPointer<Double>, scores: UnsafeBufferPointer<Double>
) throws(BGADError) -> (groups: [TieGroup], positives: Int, negatives: Int) {
    guard labels.count == scores.count else {
        throw .invalid("labels and scores differ in length (\(labels.count) vs \(scores.count))")
    }
    guard !scores.isEmpty else { throw .invalid("empty input: no scores given") }
    try requireBinary(labels, "labels")
    try requireFinite(scores, "scores")
    var order = Array(0..<scores.count)
    order.sort { scores[$0] > scores[$1] }
    var groups: [TieGroup] = []
    var positives = 0, negatives = 0
    for i in order {
        let s = scores[i]
        let isPositive = labels[i] == 1
        if isPositive { positives += 1 } else { negatives += 1 }
        if let last = groups.last, last.score == s {
            if isPositive { groups[groups.count - 1].positives += 1 } else { groups[groups.count - 1].negatives += 1 }
        } else {
            groups.append(TieGroup(score: s, positives: isPositive ? 1 : 0, negatives: isPositive ? 0 : 1))
        }
    }
    return (groups, positives, negatives)
}

/// Namespace of the evaluation metrics (paper Sec. 4.1).
public enum Metrics {
    /// Area under the ROC curve of `scores` (higher = more anomalous) against binary
    /// `labels` (1 = anomalous). Ties are handled as scikit-learn's `roc_auc_score`
    /// (trapezoid through tied points, i.e. a tie counts one half).
    ///
    /// - Throws: `BGADError` for a length mismatch, empty input, labels not 0/1,
    ///   NaN/Inf scores, or a single class.
    public static func rocAUC(labels: UnsafeBufferPointer<Double>, scores: UnsafeBufferPointer<Double>) throws(BGADError) -> Double {
        let (groups, p, n) = try descendingTieGroups(labels: labels, scores: scores)
        try requireBothClasses(positives: p, negatives: n)
        // Twice the trapezoid area in units of (1 positive × 1 negative): exact integers.
        var twiceArea = 0.0
        var tp = 0
        for g in groups {
            twiceArea += Double(g.negatives) * Double(2 * tp + g.positives)
            tp += g.positives
        }
        return twiceArea / (2.0 * Double(p) * Double(n))
    }

    /// Average precision as scikit-learn's `average_precision_score`:
    /// `AP = Σ_k (R_k − R_{k−1}) · P_k` over the distinct thresholds from the highest down.
    ///
    /// - Throws: as `rocAUC`; needs at least one positive (all-positive input is allowed).
    public static func averagePrecision(labels: UnsafeBufferPointer<Double>, scores: UnsafeBufferPointer<Double>) throws(BGADError) -> Double {
        let (groups, p, n) = try descendingTieGroups(labels: labels, scores: scores)
        try requireBothClasses(positives: p, negatives: n)
        var ap = 0.0
        var tp = 0, fp = 0
        for g in groups {
            tp += g.positives
            fp += g.negatives
            if g.positives > 0 {
                ap += (Double(g.positives) / Double(p)) * (Double(tp) / Double(tp + fp))
            }
        }
        return ap
    }

    /// The threshold maximising F1 when `score >= threshold` is called anomalous.
    ///
    /// Candidate thresholds are the distinct score values (as in scikit-learn's
    /// `precision_recall_curve`); on equal F1 the highest threshold wins.
    /// - Returns: the threshold (one of the scores) and its F1.
    public static func f1OptimalThreshold(labels: UnsafeBufferPointer<Double>, scores: UnsafeBufferPointer<Double>) throws(BGADError) -> (threshold: Double, f1: Double) {
        let (groups, p, n) = try descendingTieGroups(labels: labels, scores: scores)
        try requireBothClasses(positives: p, negatives: n)
        var best = (threshold: groups[0].score, f1: -1.0)
        var tp = 0, fp = 0
        for g in groups {
            tp += g.positives
            fp += g.negatives
            let f1 = 2.0 * Double(tp) / Double(tp + fp + p)
            if f1 > best.f1 { best = (g.score, f1) }
        }
        return best
    }

    @usableFromInline
    static func requireBothClasses(positives: Int, negatives: Int) throws(BGADError) {
        if positives == 0 { throw .invalid("labels hold a single class: no anomalous (1) sample") }
        if negatives == 0 { throw .invalid("labels hold a single class: no normal (0) sample") }
    }
}

extension Metrics {
    /// Array convenience for `rocAUC(labels:scores:)`.
    public static func rocAUC(labels: [Double], scores: [Double]) throws(BGADError) -> Double {
        try withBuffers(labels, scores) { (l, s) throws(BGADError) in try rocAUC(labels: l, scores: s) }
    }
    /// Array convenience for `averagePrecision(labels:scores:)`.
    public static func averagePrecision(labels: [Double], scores: [Double]) throws(BGADError) -> Double {
        try withBuffers(labels, scores) { (l, s) throws(BGADError) in try averagePrecision(labels: l, scores: s) }
    }
    /// Array convenience for `f1OptimalThreshold(labels:scores:)`.
    public static func f1OptimalThreshold(labels: [Double], scores: [Double]) throws(BGADError) -> (threshold: Double, f1: Double) {
        try withBuffers(labels, scores) { (l, s) throws(BGADError) in try f1OptimalThreshold(labels: l, scores: s) }
    }
}

/// Calls `body` with buffer views of two arrays, propagating a typed error.
@usableFromInline
func withBuffers<A, B, R>(
    _ a: [A], _ b: [B], _ body: (UnsafeBufferPointer<A>, UnsafeBufferPointer<B>) throws(BGADError) -> R
) throws(BGADError) -> R {
    let result: Result<R, BGADError> = a.withUnsafeBufferPointer { pa in
        b.withUnsafeBufferPointer { pb in
            do throws(BGADError) { return .success(try body(pa, pb)) } catch { return .failure(error) }
        }
    }
    return try result.get()
}
