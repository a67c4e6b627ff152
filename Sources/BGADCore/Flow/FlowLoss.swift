#if canImport(Glibc)
import Glibc
#endif

/// The losses of the flow's own training step (`FlowObjective`) on the per-dimension
/// log-likelihood `ℓ = log p(x) / C`, among them BGAD's maximum-likelihood loss (paper Eq. 5,
/// `docs/METHOD.md`, "Phase 1"): its one implementation, used by `ConditionalFlow.trainStep`
/// (objective `phaseOne`) and by the trainer's chunk loss (`boundaryGuidedLoss`, Training).

/// The loss minimised by `ConditionalFlow.trainStep`.
public enum FlowObjective: Int32, Sendable {
    /// BGAD's phase-1 loss `L_ml = −mean(log sigmoid(ℓ))`, ℓ = log p / C (`docs/METHOD.md`, "Phase 1").
    case phaseOne = 0
    /// Plain maximum likelihood: `mean(−log p(x))` in nats.
    case negativeLogLikelihood = 1

    /// The loss of the values `ell` of a flow of width `dim`, with `dL/dℓ_i` written to
    /// `gradEll` (resized to `ell.count`).
    func loss(ell: [Float], dim: Int, gradEll: inout [Float]) -> Float {
        switch self {
        case .phaseOne:
            return maximumLikelihoodLoss(ell: ell, gradEll: &gradEll)
        case .negativeLogLikelihood:
            // L = mean(−log p) = −C·mean(ℓ).
            var sum = 0.0
            for v in ell { sum += Double(v) }
            gradEll = [Float](repeating: -Float(dim) / Float(ell.count), count: ell.count)
            return Float(-Double(dim) * sum / Double(ell.count))
        }
    }
}

/// `−log σ(ℓ)` computed without overflow: `log(1 + e^{−ℓ})`.
@inlinable
func negativeLogSigmoid(_ l: Double) -> Double {
    l > 0 ? log1p(exp(-l)) : -l + log1p(exp(l))
}

/// `σ(−ℓ) = 1 / (1 + e^{ℓ})`, the magnitude of `d(−log σ(ℓ))/dℓ`.
@inlinable
func sigmoidOfNegative(_ l: Double) -> Double {
    l > 0 ? exp(-l) / (1 + exp(-l)) : 1 / (1 + exp(l))
}

/// `L_ml = (1/n) · Σ_{normal i} w_i · (−log σ(ℓ_i))` over the `n` normal vectors of `ell`
/// (`labels[i] == 0`; every vector when `labels` is nil), with constant weights `w_i`
/// (`weights`, nil = all 1); 0 when no vector is normal.
///
/// `gradient(i, g)` receives `g = dL_ml/dℓ_i = −w_i · σ(−ℓ_i) / n` (0 for an abnormal
/// vector) for every `i`, in order, so that a caller can add its own terms before rounding.
@inlinable
func maximumLikelihoodLoss(
    ell: UnsafeBufferPointer<Float>, labels: UnsafeBufferPointer<UInt8>?, weights: UnsafeBufferPointer<Float>?,
    gradient: (Int, Double) -> Void
) -> Double {
    var normals = 0
    if let labels { for i in 0..<ell.count where labels[i] == 0 { normals += 1 } } else { normals = ell.count }
    let invN = normals > 0 ? 1 / Double(normals) : 0
    var sum = 0.0
    for i in 0..<ell.count {
        var g = 0.0
        if labels?[i] ?? 0 == 0 {
            let l = Double(ell[i])
            let w = Double(weights?[i] ?? 1)
            sum += w * negativeLogSigmoid(l)
            g -= w * sigmoidOfNegative(l) * invN
        }
        gradient(i, g)
    }
    return sum * invN
}

/// BGAD's phase-1 loss `L_ml = −mean(log σ(ℓ)) = mean(softplus(−ℓ))` over every value of
/// `ell` (`docs/METHOD.md`), with its gradient `dL/dℓ_i = −σ(−ℓ_i) / n` written to `gradEll`
/// (resized to `n`).
public func maximumLikelihoodLoss(ell: [Float], gradEll: inout [Float]) -> Float {
    if gradEll.count != ell.count { gradEll = [Float](repeating: 0, count: ell.count) }
    return gradEll.withUnsafeMutableBufferPointer { out in
        ell.withUnsafeBufferPointer { e in
            Float(maximumLikelihoodLoss(ell: e, labels: nil, weights: nil) { i, g in out[i] = Float(g) })
        }
    }
}
