import XCTest
import BGADCore

/// The one seeded generator against reference values of the published algorithms
/// (xoshiro256**, its state from four SplitMix64 outputs), computed by an independent
/// Python transcription of Vigna's C code; its draws against their definitions.
final class SeededRandomTests: XCTestCase {
    func testStreamMatchesReferenceXoshiro256StarStarSeededBySplitMix64() {
        var g = SeededRandom(seed: 0)
        XCTAssertEqual((0..<3).map { _ in g.next() }, [0x99EC_5F36_CB75_F2B4, 0xBF6E_1F78_4956_452A, 0x1A5F_849D_4933_E6E0])
        var h = SeededRandom(seed: 42)
        XCTAssertEqual((0..<3).map { _ in h.next() }, [0x1578_0B2E_0C2E_C716, 0x6104_D986_6D11_3A7E, 0xAE17_5332_39E4_99A1])
    }

    func testDrawsMatchTheirDefinitions() {
        // uniform: top 53 bits · 2⁻⁵³ of the seed-42 stream above
        var g = SeededRandom(seed: 42)
        XCTAssertEqual(g.uniform(), 0.08386297105988216)
        XCTAssertEqual(g.uniform(), 0.3789802506626686)
        // uniform(bound:) is (2u − 1)·bound exactly (the flow's initialisation)
        var b = SeededRandom(seed: 3)
        XCTAssertEqual(b.uniform(bound: 0.25), 0.09531914755889398)
        XCTAssertEqual(b.uniform(bound: 0.25), 0.07029050336773035)
        // gaussian: Box–Muller pair of the seed-7 stream, cosine first, then the kept sine
        var n = SeededRandom(seed: 7)
        XCTAssertEqual(n.gaussian(), -0.15157274547711355, accuracy: 1e-15)
        XCTAssertEqual(n.gaussian(), 0.829897087969257, accuracy: 1e-15)
        // below: remainder of the draws under the largest multiple of the bound
        var k = SeededRandom(seed: 1)
        XCTAssertEqual((0..<8).map { _ in k.below(10) }, [7, 2, 0, 3, 1, 2, 6, 9])
    }

    func testRangesBoundsAndMoments() {
        var g = SeededRandom(seed: 11)
        var sum = 0.0, sq = 0.0, counts = [Int](repeating: 0, count: 7)
        let n = 200_000
        for _ in 0..<n {
            let u = g.uniform(-3, 5)
            XCTAssert(u >= -3 && u < 5)
            counts[g.below(7)] += 1
            let z = g.gaussian()
            sum += z; sq += z * z
        }
        // 7 equiprobable values: each count within 5 standard deviations of n/7
        let sd = (Double(n) * (1.0 / 7) * (6.0 / 7)).squareRoot()
        for c in counts { XCTAssertEqual(Double(c), Double(n) / 7, accuracy: 5 * sd) }
        // standard normal: mean 0 (sd 1/√n), variance 1 (sd √(2/n))
        XCTAssertEqual(sum / Double(n), 0, accuracy: 5 / Double(n).squareRoot())
        XCTAssertEqual(sq / Double(n), 1, accuracy: 5 * (2 / Double(n)).squareRoot())
    }

    func testSameSeedSameStreamAndShufflesArePermutations() {
        var a = SeededRandom(seed: 42), b = SeededRandom(seed: 42), c = SeededRandom(seed: 43)
        let xa = (0..<5).map { _ in a.next() }, xb = (0..<5).map { _ in b.next() }, xc = (0..<5).map { _ in c.next() }
        XCTAssertEqual(xa, xb)
        XCTAssertNotEqual(xa, xc)
        var v = Array(0..<1000)
        a.shuffle(&v)
        XCTAssertEqual(v.sorted(), Array(0..<1000))
        XCTAssertNotEqual(v, Array(0..<1000))
    }
}
