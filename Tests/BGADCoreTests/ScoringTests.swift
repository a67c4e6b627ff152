import XCTest
@testable import BGADCore

/// Anomaly maps and calibration checked against hand-worked values and brute force.
final class ScoringTests: XCTestCase {
    /// Bilinear value of `grid` at continuous coordinates, written from the definition.
    private func bilinear(_ grid: [Float], _ h: Int, _ w: Int, y: Double, x: Double) -> Double {
        let y0 = min(Int(y.rounded(.down)), h - 1), x0 = min(Int(x.rounded(.down)), w - 1)
        let y1 = min(y0 + 1, h - 1), x1 = min(x0 + 1, w - 1)
        let dy = y - Double(y0), dx = x - Double(x0)
        func g(_ a: Int, _ b: Int) -> Double { Double(grid[a * w + b]) }
        return (1 - dy) * ((1 - dx) * g(y0, x0) + dx * g(y0, x1)) + dy * ((1 - dx) * g(y1, x0) + dx * g(y1, x1))
    }

    func testAccumulatedNormalityIsAlignCornersBilinearOfExpEll() {
        let h = 3, w = 4, oh = 7, ow = 10
        var g = SeededRandom(seed: 1)
        let ell = (0..<(h * w)).map { _ in Float(g.below(1000)) / 300 - 3 }
        let ref: Float = 0.7
        var out = [Float](repeating: 0.25, count: oh * ow)  // accumulates onto existing values
        let mapper = AnomalyMapper(height: oh, width: ow)
        ell.withUnsafeBufferPointer { e in out.withUnsafeMutableBufferPointer { o in
            mapper.accumulateNormality(ell: e.baseAddress!, gridHeight: h, gridWidth: w, reference: ref, into: o.baseAddress!) } }
        let normality = ell.map { expf($0 - ref) }
        for y in 0..<oh { for x in 0..<ow {
            // align_corners=True: output corners coincide with input corners.
            let sy = Double(y) * Double(h - 1) / Double(oh - 1), sx = Double(x) * Double(w - 1) / Double(ow - 1)
            XCTAssertEqual(Double(out[y * ow + x]), 0.25 + bilinear(normality, h, w, y: sy, x: sx), accuracy: 1e-5)
        } }
        // Corners equal the grid corners exactly.
        XCTAssertEqual(out[0], 0.25 + normality[0], accuracy: 1e-6)
        XCTAssertEqual(out[oh * ow - 1], 0.25 + normality[h * w - 1], accuracy: 1e-6)
    }

    func testSameSizeResizeIsIdentityAndSingleOutputTakesTheFirstSample() {
        let t = LinearResizeTable(inSize: 5, outSize: 5)
        XCTAssertEqual(t.lower, [0, 1, 2, 3, 4])
        XCTAssertEqual(t.weight, [0, 0, 0, 0, 0])
        let one = LinearResizeTable(inSize: 5, outSize: 1)
        XCTAssertEqual(one.lower, [0])
        XCTAssertEqual(one.weight, [0])
    }

    func testCalibrationThresholdsFlagAtMostBetaOfTrainingNormals() throws {
        // One level, grid == map size, so Σ = exp(ℓ − ref) exactly per pixel.
        var g = SeededRandom(seed: 5)
        let images = 40, h = 4, w = 5
        let ell = (0..<(images * h * w)).map { _ in Float(g.below(64)) / 16 - 4 }  // many ties
        for beta in [0.0, 0.01, 0.05, 0.2] {
            let cal = try Calibration.fit(ell: [ell], grids: [(h, w)], images: images, height: h, width: w, beta: beta)
            let ref = ell.max()!
            XCTAssertEqual(cal.references, [ref])
            let sigma = ell.map { expf($0 - ref) }
            XCTAssertEqual(cal.maxNormality, sigma.max()!)
            // Pixel rule: b = sorted Σ at ⌊n β⌋; threshold S_max − b.
            let sorted = sigma.sorted()
            let k = Int((Double(sigma.count) * beta).rounded(.down))
            XCTAssertEqual(cal.pixelThreshold, cal.maxNormality - sorted[k])
            let scores = sigma.map { cal.maxNormality - $0 }
            let flagged = scores.filter { $0 > cal.pixelThreshold }.count
            XCTAssertLessThanOrEqual(Double(flagged), Double(sigma.count) * beta)
            // Image rule on image scores −log(min Σ) (one level, grid = map: log Σ = ℓ − ref).
            let imageScores = (0..<images).map { i in -Double(ell[(i * h * w)..<((i + 1) * h * w)].min()! - ref) }
            let flaggedImages = imageScores.filter { $0 > cal.imageThreshold }.count
            XCTAssertLessThanOrEqual(Double(flaggedImages), Double(images) * beta)
            let ki = Int((Double(images) * beta).rounded(.down))
            XCTAssertEqual(cal.imageThreshold, imageScores.sorted(by: >)[ki], accuracy: 1e-6)
        }
    }

    func testImageScoreIsExactInTheLogDomainWhereTheMapSaturates() {
        // Two levels on 3×3 and 2×2 grids, mapped to 5×4; ℓ − ref from −2 down to −900 (exp
        // underflows in float below about −103; S_max − Σ rounds to S_max below about −16).
        let grids = [(3, 3), (2, 2)]
        let refs: [Float] = [0.5, -1]
        let mapper = AnomalyMapper(height: 5, width: 4)
        for depth in [2.0, 20.0, 120.0, 900.0] {
            let e0 = (0..<9).map { Float(-depth * Double($0 + 1) / 9) + refs[0] }
            let e1 = (0..<4).map { Float(-depth * 0.8 - Double($0)) + refs[1] }
            var sum = [Float](repeating: 0, count: 20)
            e0.withUnsafeBufferPointer { mapper.accumulateNormality(ell: $0.baseAddress!, gridHeight: 3, gridWidth: 3, reference: refs[0], into: &sum) }
            e1.withUnsafeBufferPointer { mapper.accumulateNormality(ell: $0.baseAddress!, gridHeight: 2, gridWidth: 2, reference: refs[1], into: &sum) }
            let score = e0.withUnsafeBufferPointer { p0 in e1.withUnsafeBufferPointer { p1 in
                sum.withUnsafeBufferPointer { mapper.imageScore(sum: $0.baseAddress!, ell: [p0.baseAddress!, p1.baseAddress!], grids: grids, references: refs) } } }
            // Reference: log Σ per pixel from the tables, by log-sum-exp in Double.
            var best = Double.infinity
            for y in 0..<5 { for x in 0..<4 {
                var terms: [Double] = []
                for (l, e) in [e0, e1].enumerated() {
                    let (gh, gw) = grids[l]
                    let ty = LinearResizeTable(inSize: gh, outSize: 5), tx = LinearResizeTable(inSize: gw, outSize: 4)
                    let wy = [(ty.lower[y], 1 - Double(ty.weight[y])), (ty.upper[y], Double(ty.weight[y]))]
                    let wx = [(tx.lower[x], 1 - Double(tx.weight[x])), (tx.upper[x], Double(tx.weight[x]))]
                    for (r, a) in wy where a > 0 { for (c, b) in wx where b > 0 {
                        terms.append(log(a * b) + Double(e[r * gw + c]) - Double(refs[l]))
                    } }
                }
                let m = terms.max()!
                best = min(best, m + log(terms.reduce(0) { $0 + exp($1 - m) }))
            } }
            XCTAssertEqual(score, -best, accuracy: 1e-5 * max(1, abs(best)), "depth \(depth)")
            XCTAssertTrue(score.isFinite)
        }
    }
}
