#if canImport(Glibc)
import Glibc
#endif

/// The losses of BGAD as functions of the per-dimension log-likelihood `ℓ = log p(x) / C`,
/// each with its gradient `dL/dℓ` (the flow back-propagates it).
///
/// Paper: Eq. (5) maximum likelihood (`maximumLikelihoodLoss`, kept in Flow: the flow's own
/// `trainStep` uses it too), Eq. (8) boundary guided semi-push-pull (BG-SPP),
/// Eq. (9) total loss. Where the paper is silent this follows the authors' code:
/// the boundary index `⌊n_normal · β⌋`, the normalizer α_n, the asymmetric focal weights.
/// Boundaries and focal weights are constants (no gradient flows through them). A mean
/// over an empty set contributes 0 (the authors' `torch.mean` of an empty tensor is NaN).

/// Hyper-parameters of the BG-SPP loss (paper Sec. 3.3, authors' README settings).
public struct BoundaryLossParameters: Equatable, Sendable {
    /// Position hyper-parameter β: the normal boundary is the β-quantile of the sorted
    /// normal `ℓ` of a chunk, bounding the normal false-positive rate at β.
    public var beta: Double = 0.01
    /// Margin τ between the normal and the abnormal boundary: `b_a = b_n − τ`.
    public var tau: Double = 0.1
    /// Normalizer α_n mapping `ℓ` to `ℓ' = ℓ / α_n` (roughly into `[−1, 0]`).
    public var normalizer: Double = 10
    /// Weight λ of the BG-SPP term in `L = L_ml + λ · (L_n + L_a)`.
    public var lambda: Double = 1
    /// Asymmetric focal weighting of the per-vector terms (authors' recommended run: on).
    public var focalWeighting: Bool = true

    /// The authors' recommended settings.
    public init() {}

    /// Throws unless every value is in its valid range.
    public func validate() throws(BGADError) {
        guard beta.isFinite, beta >= 0, beta < 1 else { throw .invalid("beta must lie in [0, 1), got \(beta)") }
        guard tau.isFinite, tau >= 0 else { throw .invalid("tau must be a finite value ≥ 0, got \(tau)") }
        guard normalizer.isFinite, normalizer > 0 else { throw .invalid("alpha_n (normalizer) must be > 0, got \(normalizer)") }
        guard lambda.isFinite, lambda >= 0 else { throw .invalid("lambda must be a finite value ≥ 0, got \(lambda)") }
    }
}

/// The explicit boundaries of one chunk (paper Sec. 3.3, "Finding explicit normal and
/// abnormal boundary"), on the normalised scale `ℓ' = ℓ / α_n`.
public struct ExplicitBoundaries: Equatable, Sendable {
    /// Normal boundary `b_n = ℓ_(⌊n·β⌋) / α_n` (ℓ of the normal vectors sorted ascending).
    public var normal: Float
    /// Abnormal boundary `b_a = b_n − τ`.
    public var abnormal: Float

    /// Boundaries from their values.
    public init(normal: Float, abnormal: Float) {
        self.normal = normal
        self.abnormal = abnormal
    }
}

/// The normal boundary `b_n` and abnormal boundary `b_a` of the normal values among `ell`
/// (`labels[i] == 0`), or nil when the chunk holds no normal vector.
/// `scratch` must hold `ell.count` floats.
public func explicitBoundaries(
    ell: UnsafeBufferPointer<Float>, labels: UnsafeBufferPointer<UInt8>,
    parameters p: BoundaryLossParameters, scratch: UnsafeMutableBufferPointer<Float>
) -> ExplicitBoundaries? {
    var n = 0
    for i in 0..<ell.count where labels[i] == 0 { scratch[n] = ell[i]; n += 1 }
    if n == 0 { return nil }
    let value = kthSmallest(UnsafeMutableBufferPointer(rebasing: scratch[0..<n]), boundaryIndex(count: n, beta: p.beta))
    let bn = value / Float(p.normalizer)
    return ExplicitBoundaries(normal: bn, abnormal: bn - Float(p.tau))
}

/// Asymmetric focal weight of a NORMAL vector (authors' `normal_fl_weighting`, γ = 0.5,
/// α = 11.7): with `x = ℓ / 10`, 1 where `x > −0.2`, else `11.7 · (1 − eˣ)^0.5 · |x|`.
/// Normal vectors far below the boundary (hard normals) weigh more.
@inlinable
public func normalFocalWeight(_ ell: Float) -> Float {
    let x = ell / 10
    if x > -0.2 { return 1 }
    return 11.7 * (1 - expf(x)).squareRoot() * abs(x)
}

/// Asymmetric focal weight of an ABNORMAL vector (authors' `abnormal_fl_weighting`, γ = 2,
/// α = 0.53): with `x = ℓ / 10`, 1 where `x ≤ −1`, else `0.53 · (1 + eˣ)² / |x|`.
/// Anomalies with a high likelihood (hard anomalies) weigh more. `|x|` is floored at
/// 0.01 so that `ℓ = 0` gives a large finite weight instead of the reference's infinity.
@inlinable
public func abnormalFocalWeight(_ ell: Float) -> Float {
    let x = ell / 10
    if x <= -1 { return 1 }
    let e = 1 + expf(x)
    return 0.53 * e * e / max(abs(x), 0.01)
}

/// The parts of a chunk's loss (all on the same chunk).
public struct ChunkLoss: Equatable, Sendable {
    /// Total `L = L_ml + λ · (L_n + L_a)`.
    public var total: Double = 0
    /// Maximum-likelihood term `L_ml = mean over normal vectors of w · (−log σ(ℓ))`.
    public var maximumLikelihood: Double = 0
    /// Semi-pull term `L_n = mean over normal ℓ' ≤ b_n of w · (b_n − ℓ')` (0 if empty).
    public var semiPull: Double = 0
    /// Semi-push term `L_a = mean over abnormal ℓ' ≥ b_a of w · (ℓ' − b_a)` (0 if empty).
    public var semiPush: Double = 0
    /// Number of normal vectors in the chunk.
    public var normalCount: Int = 0
    /// Number of abnormal vectors in the chunk.
    public var abnormalCount: Int = 0
    /// The boundaries used, when the BG-SPP term was evaluated.
    public var boundaries: ExplicitBoundaries? = nil
}

/// Evaluates `L = L_ml + λ · (s_n · L_n + s_a · L_a)` for given, fixed boundaries and
/// weights and writes `dL/dℓ` into `gradient` (every element is written).
///
/// - Parameters:
///   - ell: `ℓ` of the chunk's vectors.
///   - labels: 0 = normal, 1 = abnormal, per vector.
///   - boundaries: `b_n`, `b_a` on the `ℓ / α_n` scale, or nil for `L = L_ml` alone.
///   - normalWeights, abnormalWeights: per-vector constant weights (nil = all 1);
///     normal weights multiply the `L_ml` and `L_n` terms, abnormal ones the `L_a` terms.
///   - semiPush: include the semi-push term `L_a` (off for the "BGAD w/o" variant).
///   - normalizer: α_n; lambda: λ.
public func boundaryGuidedLoss(
    ell: UnsafeBufferPointer<Float>, labels: UnsafeBufferPointer<UInt8>,
    boundaries: ExplicitBoundaries?, normalWeights: UnsafeBufferPointer<Float>?,
    abnormalWeights: UnsafeBufferPointer<Float>?, semiPush: Bool,
    normalizer: Double, lambda: Double, gradient: UnsafeMutableBufferPointer<Float>
) -> ChunkLoss {
    let n = ell.count
    var out = ChunkLoss()
    var nPull = 0, nPush = 0
    for i in 0..<n {
        if labels[i] == 0 {
            out.normalCount += 1
            if let b = boundaries, ell[i] / Float(normalizer) <= b.normal { nPull += 1 }
        } else {
            out.abnormalCount += 1
            if semiPush, let b = boundaries, ell[i] / Float(normalizer) >= b.abnormal { nPush += 1 }
        }
    }
    out.boundaries = boundaries
    let pullScale = nPull > 0 ? lambda / Double(nPull) : 0
    let pushScale = nPush > 0 ? lambda / Double(nPush) : 0
    var pull = 0.0, push = 0.0
    // L_ml and its gradient (Flow's `maximumLikelihoodLoss`), plus the BG-SPP terms per vector.
    out.maximumLikelihood = maximumLikelihoodLoss(ell: ell, labels: labels, weights: normalWeights) { i, gML in
        let l = ell[i]
        let ld = Double(l)
        var g = gML
        if labels[i] == 0 {
            if let b = boundaries, l / Float(normalizer) <= b.normal {
                let w = Double(normalWeights?[i] ?? 1)
                pull += w * (Double(b.normal) - ld / normalizer)
                g -= w * pullScale / normalizer
            }
        } else if semiPush, let b = boundaries, l / Float(normalizer) >= b.abnormal {
            let w = Double(abnormalWeights?[i] ?? 1)
            push += w * (ld / normalizer - Double(b.abnormal))
            g += w * pushScale / normalizer
        }
        gradient[i] = Float(g)
    }
    out.semiPull = nPull > 0 ? pull / Double(nPull) : 0
    out.semiPush = nPush > 0 ? push / Double(nPush) : 0
    out.total = out.maximumLikelihood + lambda * (out.semiPull + out.semiPush)
    return out
}
