/// The engine's own seeded pseudo-random generator (xoshiro256**, seeded by SplitMix64),
/// so that training is reproducible across platforms and Swift versions: the same seed
/// gives the same shuffles, hence the same model.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var core: Xoshiro256

    /// Creates the generator (xoshiro256** seeded by SplitMix64, `Xoshiro256`).
    public init(seed: UInt64) { core = Xoshiro256(seed: seed) }

    /// Next 64 random bits.
    public mutating func next() -> UInt64 { core.next() }

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
