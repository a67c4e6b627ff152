import XCTest
@testable import BGADCore

/// The message of the `BGADError` thrown by `body`, or a marker when none (or another error) is thrown.
func message(_ body: () throws -> Double) -> String {
    do { _ = try body(); return "no error" } catch let e as BGADError { return e.message } catch { return "other error \(error)" }
}

/// Hand-worked cases for the metrics; each expected value is computed by hand in the comment.
final class MetricsTests: XCTestCase {
    func testROCAUCWithoutTiesCountsOrderedPairs() throws {
        // Pairs (pos, neg): 0.35>0.1 ✓, 0.35>0.4 ✗, 0.8>0.1 ✓, 0.8>0.4 ✓ → 3/4.
        XCTAssertEqual(try Metrics.rocAUC(labels: [0, 0, 1, 1], scores: [0.1, 0.4, 0.35, 0.8]), 0.75)
    }

    func testROCAUCCountsTiesAsOneHalf() throws {
        // pos {0.5, 0.9}, neg {0.5, 0.1}: pairs 0.5~0.5 = ½, 0.5>0.1, 0.9>0.5, 0.9>0.1 → 3.5/4.
        XCTAssertEqual(try Metrics.rocAUC(labels: [1, 0, 1, 0], scores: [0.5, 0.5, 0.9, 0.1]), 0.875)
    }

    func testAllEqualScoresGiveOneHalf() throws {
        XCTAssertEqual(try Metrics.rocAUC(labels: [1, 0, 0, 1, 0], scores: [2, 2, 2, 2, 2]), 0.5)
        // AP with a single threshold = precision at full recall = 2/5.
        XCTAssertEqual(try Metrics.averagePrecision(labels: [1, 0, 0, 1, 0], scores: [2, 2, 2, 2, 2]), 0.4, accuracy: 1e-15)
    }

    func testAveragePrecisionHandWorked() throws {
        // Descending: 0.9(1) 0.8(0) 0.7(1) 0.6(0). Steps: R 1/2 at P 1, R 1 at P 2/3.
        // AP = ½·1 + ½·⅔ = 5/6.
        XCTAssertEqual(try Metrics.averagePrecision(labels: [1, 0, 1, 0], scores: [0.9, 0.8, 0.7, 0.6]), 5.0 / 6.0, accuracy: 1e-15)
        // A tie group {0.8: one pos, one neg} is one step: R ½→1 at P = 2/3 → AP = ½ + ⅓.
        XCTAssertEqual(try Metrics.averagePrecision(labels: [1, 0, 1, 0], scores: [0.9, 0.8, 0.8, 0.1]), 5.0 / 6.0, accuracy: 1e-15)
    }

    func testF1OptimalThresholdHandWorked() throws {
        // scores 0.9(1) 0.8(0) 0.7(1) 0.2(0); P = 2.
        // t=0.9: tp1 fp0 → F1 = 2/3; t=0.8: tp1 fp1 → 2/4; t=0.7: tp2 fp1 → 4/5; t=0.2 → 4/6.
        let r = try Metrics.f1OptimalThreshold(labels: [1, 0, 1, 0], scores: [0.9, 0.8, 0.7, 0.2])
        XCTAssertEqual(r.threshold, 0.7)
        XCTAssertEqual(r.f1, 0.8, accuracy: 1e-15)
    }

    func testBadInputNamesTheProblem() {
        XCTAssertTrue(message { try Metrics.rocAUC(labels: [0, 1], scores: [0.5]) }.contains("differ in length"))
        XCTAssertTrue(message { try Metrics.rocAUC(labels: [], scores: []) }.contains("empty"))
        XCTAssertTrue(message { try Metrics.rocAUC(labels: [0, 1], scores: [.nan, 1]) }.contains("NaN"))
        XCTAssertTrue(message { try Metrics.rocAUC(labels: [0, 1], scores: [.infinity, 1]) }.contains("infinite"))
        XCTAssertTrue(message { try Metrics.rocAUC(labels: [0, 2], scores: [0, 1]) }.contains("must be 0"))
        XCTAssertTrue(message { try Metrics.rocAUC(labels: [1, 1], scores: [0, 1]) }.contains("single class"))
    }

    // MARK: Pixel metrics

    private func pixel(_ f: (UnsafeBufferPointer<UInt8>, UnsafeBufferPointer<Float>) throws(BGADError) -> Double,
                       _ masks: [UInt8], _ maps: [Float]) throws -> Double {
        try withBuffers(masks, maps, f)
    }

    func testPixelROCAUCMatchesImageLevelDefinition() throws {
        let masks: [UInt8] = [0, 1, 0, 1, 1, 0, 0, 0]
        let maps: [Float] = [0.1, 0.5, 0.5, 0.9, -0.0, 0.0, 0.3, 0.2]
        // pos {0.5, 0.9, 0}, neg {0.1, 0.5, 0(+0 equals -0), 0.3, 0.2}:
        // 0.5: > 0.1, 0, 0.3, 0.2 and = 0.5 → 4.5; 0.9: 5; 0: = 0 → 0.5. Total 10 / 15.
        let v = try pixel({ (m, s) throws(BGADError) in try Metrics.pixelROCAUC(masks: m, maps: s, count: 2, height: 2, width: 2) }, masks, maps)
        XCTAssertEqual(v, 10.0 / 15.0, accuracy: 1e-15)
    }

    func testAUPROOfPerfectMapIsOne() throws {
        // One region; anomalous pixels score higher than every normal pixel: PRO jumps to 1 at FPR 0.
        let masks: [UInt8] = [0, 0, 0, 0, 1, 1, 0, 0, 0]
        let maps: [Float] = [0, 0.1, 0.2, 0.3, 5, 6, 0.4, 0.5, 0.6]
        let v = try pixel({ (m, s) throws(BGADError) in try Metrics.auPRO(masks: m, maps: s, count: 1, height: 3, width: 3) }, masks, maps)
        XCTAssertEqual(v, 1.0, accuracy: 1e-12)
    }

    func testAUPROHandWorkedWithTwoRegionsAndInterpolation() throws {
        // 1 × 10 image: regions A = {0} and B = {3,4}; 7 normal pixels (FPR steps of 1/7).
        // Scores: A = 0.9; B = 0.8, 0.1; normal 0.85, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2.
        // Thresholds (desc): 0.9 → (FPR 0, PRO ½). 0.85 → (1/7, ½). 0.8 → (1/7, ½ + ¼).
        // 0.7 → (2/7, ¾). 0.6 → (3/7, ¾), past the limit 0.3.
        // Area up to 0.3 = ½·1/7 + ¾·(0.3 − 1/7), the last piece flat so interpolation keeps ¾.
        let masks: [UInt8] = [1, 0, 0, 1, 1, 0, 0, 0, 0, 0]
        let maps: [Float] = [0.9, 0.85, 0.7, 0.8, 0.1, 0.6, 0.5, 0.4, 0.3, 0.2]
        let v = try pixel({ (m, s) throws(BGADError) in try Metrics.auPRO(masks: m, maps: s, count: 1, height: 1, width: 10, fprLimit: 0.3) }, masks, maps)
        XCTAssertEqual(v, (0.5 / 7.0 + 0.75 * (0.3 - 1.0 / 7.0)) / 0.3, accuracy: 1e-12)
    }

    func testAUPROWithOneRegionCoveringAlmostTheImageAndNestedThresholds() throws {
        // 2×2 region of 3 pixels + 1 normal pixel. Region scores 3, 2, 1; normal 1.5.
        // t=3: FPR 0, PRO 1/3; t=2: 0, 2/3; t=1.5: FPR 1, PRO 2/3 → limit 1: area = 2/3.
        let masks: [UInt8] = [1, 1, 1, 0]
        let maps: [Float] = [3, 2, 1, 1.5]
        let v = try pixel({ (m, s) throws(BGADError) in try Metrics.auPRO(masks: m, maps: s, count: 1, height: 2, width: 2, fprLimit: 1) }, masks, maps)
        XCTAssertEqual(v, 2.0 / 3.0, accuracy: 1e-12)
        // At limit 0.5: the step from (0, 2/3) to (1, 2/3) is flat → still 2/3.
        let w = try pixel({ (m, s) throws(BGADError) in try Metrics.auPRO(masks: m, maps: s, count: 1, height: 2, width: 2, fprLimit: 0.5) }, masks, maps)
        XCTAssertEqual(w, 2.0 / 3.0, accuracy: 1e-12)
    }

    func testAUPROTiedNormalAndAnomalousScoresFormOneStep() throws {
        // Region {0,1} scores 1, 1; normal pixels 1, 0. t=1: FPR ½, PRO 1 in ONE step:
        // trapezoid from (0,0) to (½,1); at limit 0.3: PRO = 0.6 → area 0.3·0.6/2 = 0.09.
        let v = try pixel({ (m, s) throws(BGADError) in try Metrics.auPRO(masks: m, maps: s, count: 1, height: 1, width: 4, fprLimit: 0.3) },
                          [1, 1, 0, 0], [1, 1, 1, 0])
        XCTAssertEqual(v, 0.09 / 0.3, accuracy: 1e-12)
    }

    func testPixelInputErrors() {
        let m: [UInt8] = [0, 2], s: [Float] = [0, 1]
        XCTAssertTrue(message { try withBuffers(m, s) { (a, b) throws(BGADError) in try Metrics.pixelROCAUC(masks: a, maps: b, count: 1, height: 1, width: 2) } }.contains("must be 0"))
        let m0: [UInt8] = [0, 0]
        XCTAssertTrue(message { try withBuffers(m0, s) { (a, b) throws(BGADError) in try Metrics.auPRO(masks: a, maps: b, count: 1, height: 1, width: 2) } }.contains("single class"))
        let sn: [Float] = [0, .nan]
        let m1: [UInt8] = [0, 1]
        XCTAssertTrue(message { try withBuffers(m1, sn) { (a, b) throws(BGADError) in try Metrics.auPRO(masks: a, maps: b, count: 1, height: 1, width: 2) } }.contains("NaN"))
        XCTAssertTrue(message { try withBuffers(m1, s) { (a, b) throws(BGADError) in try Metrics.auPRO(masks: a, maps: b, count: 1, height: 1, width: 2, fprLimit: 0) } }.contains("fpr_limit"))
    }
}

/// Connected components against hand-drawn masks.
final class ConnectedComponentsTests: XCTestCase {
    func testDiagonalNeighboursJoinAndSeparateBlobsDoNot() {
        let mask: [UInt8] = [
            1, 0, 0, 1,
            0, 1, 0, 1,
            0, 0, 0, 0,
            1, 1, 0, 1,
        ]
        let cc = ConnectedComponents(mask: mask, height: 4, width: 4)
        XCTAssertEqual(cc.count, 4)
        XCTAssertEqual(cc.sizes, [2, 2, 2, 1])
        XCTAssertEqual(cc.labels, [1, 0, 0, 2, 0, 1, 0, 2, 0, 0, 0, 0, 3, 3, 0, 4])
    }

    func testUShapeMergesIntoOneComponent() {
        // Two arms meet only at the bottom row: union-find must merge labels 1 and 2.
        let mask: [UInt8] = [
            1, 0, 1,
            1, 0, 1,
            1, 1, 1,
        ]
        let cc = ConnectedComponents(mask: mask, height: 3, width: 3)
        XCTAssertEqual(cc.count, 1)
        XCTAssertEqual(cc.sizes, [7])
    }

    func testWholeImageIsOneRegion() {
        let cc = ConnectedComponents(mask: [UInt8](repeating: 1, count: 12), height: 3, width: 4)
        XCTAssertEqual(cc.count, 1)
        XCTAssertEqual(cc.sizes, [12])
    }
}

/// The order-preserving float keys and the radix sort.
final class RadixSortTests: XCTestCase {
    func testKeysPreserveOrderAndEquality() {
        let values: [Float] = [-.greatestFiniteMagnitude, -3, -1e-30, -0.0, 0, 1e-30, 2, .greatestFiniteMagnitude]
        for i in 0..<values.count {
            for j in 0..<values.count {
                XCTAssertEqual(values[i] < values[j], orderedKey(values[i]) < orderedKey(values[j]))
                XCTAssertEqual(values[i] == values[j], orderedKey(values[i]) == orderedKey(values[j]))
            }
            if values[i] != 0 { XCTAssertEqual(floatFromOrderedKey(orderedKey(values[i])), values[i]) }
        }
    }

    func testRadixSortAgreesWithSort() {
        var g = SystemRandomNumberGenerator()
        var keys = (0..<5000).map { _ in UInt32.random(in: 0...UInt32.max, using: &g) }
        let expected = keys.sorted()
        var scratch = [UInt32](repeating: 0, count: keys.count)
        keys.withUnsafeMutableBufferPointer { k in scratch.withUnsafeMutableBufferPointer { s in radixSort(k, scratch: s) } }
        XCTAssertEqual(keys, expected)
    }
}
