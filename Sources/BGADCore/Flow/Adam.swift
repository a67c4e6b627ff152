#if canImport(Glibc)
import Glibc
#endif

/// The Adam optimiser over a flat `Float` parameter buffer, PyTorch's rule: `β₁ = 0.9`,
/// `β₂ = 0.999`, `ε = 1e-8`, bias correction, no weight decay (`docs/FLOW.md`, "The flow").
/// It owns the first and second moments and the step count; the parameters and their
/// gradients belong to the caller (a `ConditionalFlow` keeps one `Adam`).
struct Adam {
    /// Number of parameters the moments cover.
    let count: Int
    /// First moment `m` and second moment `v`, `count` floats each, zero at the start.
    let m: FloatBuffer, v: FloatBuffer
    /// Steps taken so far (the bias correction's `t`).
    private(set) var steps = 0

    /// Moments for `count` parameters, all zero; fails with `outOfMemory`.
    init(count: Int) throws(BGADError) {
        self.count = count
        m = try FloatBuffer(capacity: count)
        v = try FloatBuffer(capacity: count)
    }

    /// One step: `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`,
    /// `p ← p − lr/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε)` for every one of the `count` parameters.
    mutating func step(parameters p: UnsafeMutablePointer<Float>, gradients g: UnsafePointer<Float>,
                       learningRate: Float) {
        steps += 1
        let beta1 = 0.9, beta2 = 0.999, eps: Float = 1e-8
        let bc1 = 1 - pow(beta1, Double(steps)), bc2 = 1 - pow(beta2, Double(steps))
        let stepSize = Float(Double(learningRate) / bc1)
        let bc2Sqrt = Float(bc2.squareRoot())
        let m = self.m.pointer, v = self.v.pointer
        let b1 = Float(beta1), b2 = Float(beta2)
        // Element-wise, 8 lanes at a time, in slices over the workers; the same operations
        // in the same order as the scalar tail, so every element gets the same result.
        runSlices(total: count, minimum: 65536) { range in
            var i = range.lowerBound
            let c1 = SIMD8<Float>(repeating: 1 - b1), vb2 = SIMD8<Float>(repeating: b2)
            let c2 = SIMD8<Float>(repeating: 1 - b2), vbc2 = SIMD8<Float>(repeating: bc2Sqrt)
            let veps = SIMD8<Float>(repeating: eps), vstep = SIMD8<Float>(repeating: stepSize)
            while i + 8 <= range.upperBound {
                let gi = load8(g + i)
                let mi = load8(m + i) + (gi - load8(m + i)) * c1
                let vi = load8(v + i) * vb2 + c2 * gi * gi
                store8(mi, m + i)
                store8(vi, v + i)
                store8(load8(p + i) - vstep * mi / (vi.squareRoot() / vbc2 + veps), p + i)
                i += 8
            }
            while i < range.upperBound {
                let gi = g[i]
                m[i] += (gi - m[i]) * (1 - b1)
                v[i] = v[i] * b2 + (1 - b2) * gi * gi
                let denom = v[i].squareRoot() / bc2Sqrt + eps
                p[i] -= stepSize * m[i] / denom
                i += 1
            }
        }
    }
}
