#if canImport(Glibc)
import Glibc
#endif

/// The seeded random source of the flow's initialisation: xoshiro256** seeded by SplitMix64.
///
/// The same seed gives the same stream on every platform and run (no system entropy).
public struct FlowRandom {
    private var core: Xoshiro256
    private var spareGaussian: Double?

    /// Creates the generator (xoshiro256** seeded by SplitMix64, `Xoshiro256`).
    public init(seed: UInt64) { core = Xoshiro256(seed: seed) }

    /// Next 64 random bits.
    public mutating func next() -> UInt64 { core.next() }

    /// Uniform double in [0, 1) with 53 random bits.
    public mutating func uniform() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    /// Uniform double in [−bound, bound).
    public mutating func uniform(bound: Double) -> Double {
        (2 * uniform() - 1) * bound
    }

    /// Standard normal double (Box–Muller; the second value of each pair is kept for the next call).
    public mutating func gaussian() -> Double {
        if let g = spareGaussian { spareGaussian = nil; return g }
        var u1 = uniform()
        while u1 <= 0 { u1 = uniform() }
        let u2 = uniform()
        let r = (-2 * log(u1)).squareRoot(), theta = 2 * Double.pi * u2
        spareGaussian = r * sin(theta)
        return r * cos(theta)
    }
}
