/// The engine's own seeded pseudo-random generator (xoshiro256**, seeded by SplitMix64),
/// so that training is reproducible across platforms and Swift versions: the same seed
/// gives the same shuffles, hence the same model.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64

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
    }

    /// Next 64 random bits.
    public mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = (s3 << 45) | (s3 >> 19)
        return result
    }

    /// A uniform integer in `0..<bound` (unbiased: rejection of the short tail).
    public mutating func below(_ bound: Int) -> Int {
        precondition(bound > 0)
        let b = UInt64(bound)
        let limit = UInt64.max - UInt64.max % b
        while true {
            let r = next()
            if r < limit { return Int(r % b) }
        }
    }

    /// Shuffles `buffer` in place (Fisher–Yates with `below`).
    public mutating func shuffle<T>(_ buffer: UnsafeMutableBufferPointer<T>) {
        var i = buffer.count - 1
        while i > 0 {
            let j = below(i + 1)
            if i != j { buffer.swapAt(i, j) }
            i -= 1
        }
    }

    /// Shuffles `array` in place.
    public mutating func shuffle<T>(_ array: inout [T]) {
        array.withUnsafeMutableBufferPointer { shuffle($0) }
    }
}
