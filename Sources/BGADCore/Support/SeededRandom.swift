#if canImport(Glibc)
import Glibc
#endif

/// The engine's one seeded pseudo-random generator: xoshiro256** (Blackman & Vigna 2018),
/// its 256-bit state filled by four SplitMix64 outputs from the seed, plus the few draws the
/// engine needs (uniform doubles, ranges, standard normals, bounded integers, shuffles).
///
/// Every random choice of the engine comes from it: the flow's initialisation (weights and
/// Haar rotations), the trainer's shuffles and batch picks, the detector's choice of normal
/// images for RPAG, and RPAG's augmentations and placements. No system entropy is ever
/// read, and every draw is defined bit for bit (no platform `random`, no library
/// distribution), so the same seed gives the same stream, hence the same model or the same
/// pseudo anomalies, on every platform, Swift version and run.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    private var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64
    /// The second normal of the last Box–Muller pair, returned by the next `gaussian`.
    private var spareGaussian: Double?

    /// A generator whose whole stream is determined by `seed`.
    public init(seed: UInt64) {
        var x = seed
        func splitMix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s0 = splitMix(); s1 = splitMix(); s2 = splitMix(); s3 = splitMix()
        spareGaussian = nil
    }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = (s3 << 45) | (s3 >> 19)
        return result
    }

    /// A uniform double in `[0, 1)`: the top 53 bits of one draw, times 2⁻⁵³.
    public mutating func uniform() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    /// A uniform double between `a` and `b`: `(a + b)/2 + (b − a)/2 · (2u − 1)` for one
    /// `uniform()` u (for `a = −b` this is exactly `(2u − 1) · b`).
    public mutating func uniform(_ a: Double, _ b: Double) -> Double {
        (a + b) / 2 + (b - a) / 2 * (2 * uniform() - 1)
    }

    /// A uniform double in `[−bound, bound)`: `uniform(-bound, bound)`.
    public mutating func uniform(bound: Double) -> Double {
        uniform(-bound, bound)
    }

    /// A standard normal double (Box–Muller on two `uniform()` draws, the first made
    /// non-zero by drawing again; the pair's second value is kept for the next call).
    public mutating func gaussian() -> Double {
        if let g = spareGaussian { spareGaussian = nil; return g }
        var u1 = uniform()
        while u1 <= 0 { u1 = uniform() }
        let u2 = uniform()
        let r = (-2 * log(u1)).squareRoot(), theta = 2 * Double.pi * u2
        spareGaussian = r * sin(theta)
        return r * cos(theta)
    }

    /// A uniform integer in `0..<bound` (`bound > 0`), unbiased: draws at or above the
    /// largest multiple of `bound` are rejected, then the remainder is taken.
    public mutating func below(_ bound: Int) -> Int {
        precondition(bound > 0)
        let b = UInt64(bound)
        let limit = UInt64.max - UInt64.max % b
        while true {
            let r = next()
            if r < limit { return Int(r % b) }
        }
    }

    /// Shuffles `buffer` in place (Fisher–Yates from the end, `below(i + 1)` for position i).
    public mutating func shuffle<T>(_ buffer: UnsafeMutableBufferPointer<T>) {
        var i = buffer.count - 1
        while i > 0 {
            let j = below(i + 1)
            if i != j { buffer.swapAt(i, j) }
            i -= 1
        }
    }

    /// Shuffles `array` in place (as the buffer form).
    public mutating func shuffle<T>(_ array: inout [T]) {
        array.withUnsafeMutableBufferPointer { shuffle($0) }
    }
}

/// The trainer's generator under its former name (the same stream).
@available(*, deprecated, renamed: "SeededRandom")
public typealias SeededGenerator = SeededRandom

/// The flow initialisation's generator under its former name (the same stream).
@available(*, deprecated, renamed: "SeededRandom")
public typealias FlowRandom = SeededRandom

/// The bare xoshiro256** core under its former name (the same stream).
@available(*, deprecated, renamed: "SeededRandom")
public typealias Xoshiro256 = SeededRandom
