import XCTest
@testable import BGADCore

/// The losses of BGAD checked against independent computations: sorting for the
/// boundary, the closed forms of the paper's equations, and central finite differences.
final class TrainingLossTests: XCTestCase {
    func testKthSmallestEqualsSortingIncludingHeavyTies() {
        var g = SeededRandom(seed: 7)
        for trial in 0..<200 {
            let n = 1 + g.below(300)
            let levels = trial % 3 == 0 ? 3 : 1000  // many ties every third trial
            let values = (0..<n).map { _ in Float(g.below(levels)) / 7 - 20 }
            let sorted = values.sorted()
            for k in [0, n / 3, n / 2, n - 1] {
                var copy = values
                let v = copy.withUnsafeMutableBufferPointer { kthSmallest($0, k) }
                XCTAssertEqual(v, sorted[k], "n=\(n) k=\(k)")
            }
        }
    }

    func testNormalBoundaryIsTheBetaQuantileOfTheNormalValuesOnly() {
        // 10 normal values 1...10 (shuffled) and abnormal values that must be ignored.
        let ell: [Float] = [5, -100, 3, 9, 1, 7, -50, 2, 10, 8, 4, 6]
        let labels: [UInt8] = [0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0]
        var p = BoundaryLossParameters()
        p.normalizer = 10
        p.tau = 0.1
        for (beta, expected) in [(0.0, Float(1)), (0.05, 1), (0.1, 2), (0.25, 3), (0.5, 6), (0.99, 10)] {
            p.beta = beta
            var scratch = [Float](repeating: 0, count: ell.count)
            let b = ell.withUnsafeBufferPointer { e in labels.withUnsafeBufferPointer { l in
                scratch.withUnsafeMutableBufferPointer { explicitBoundaries(ell: e, labels: l, parameters: p, scratch: $0) } } }
            XCTAssertEqual(b?.normal, expected / 10, "beta \(beta)")
            XCTAssertEqual(b?.abnormal, expected / 10 - Float(0.1), "beta \(beta)")
        }
        // No normal vector: no boundary.
        let none = [Float](repeating: 0, count: 2)
        var scratch = none
        let b = none.withUnsafeBufferPointer { e in [UInt8](arrayLiteral: 1, 1).withUnsafeBufferPointer { l in
            scratch.withUnsafeMutableBufferPointer { explicitBoundaries(ell: e, labels: l, parameters: p, scratch: $0) } } }
        XCTAssertNil(b)
    }

    func testBoundaryIndexIsFloorOfCountTimesBeta() {
        XCTAssertEqual(boundaryIndex(count: 4096, beta: 0.01), 40)
        XCTAssertEqual(boundaryIndex(count: 100, beta: 0.05), 5)
        XCTAssertEqual(boundaryIndex(count: 99, beta: 0.05), 4)
        XCTAssertEqual(boundaryIndex(count: 1, beta: 0.5), 0)
    }

    func testFocalWeightsFollowTheAuthorsFormulas() {
        // Normal: 1 above ℓ/10 = −0.2; else 11.7·sqrt(1 − e^x)·|x|.
        XCTAssertEqual(normalFocalWeight(-1), 1)
        XCTAssertEqual(normalFocalWeight(5), 1)
        let x = -0.5
        XCTAssertEqual(Double(normalFocalWeight(-5)), 11.7 * (1 - exp(x)).squareRoot() * 0.5, accuracy: 1e-5)
        // Abnormal: 1 at or below ℓ/10 = −1; else 0.53·(1 + e^x)²/|x|.
        XCTAssertEqual(abnormalFocalWeight(-10), 1)
        XCTAssertEqual(abnormalFocalWeight(-30), 1)
        XCTAssertEqual(Double(abnormalFocalWeight(-5)), 0.53 * pow(1 + exp(x), 2) / 0.5, accuracy: 1e-4)
        XCTAssertTrue(abnormalFocalWeight(0).isFinite)
    }

    /// Closed form of the loss for fixed boundaries and weights, in Double, written from
    /// the equations (not from the implementation's loops).
    private func referenceLoss(_ ell: [Double], _ labels: [UInt8], bn: Double?, ba: Double?, wn: [Double], wa: [Double],
                               semiPush: Bool, alpha: Double, lambda: Double) -> Double {
        let normal = ell.indices.filter { labels[$0] == 0 }
        let ml = normal.isEmpty ? 0 : normal.map { wn[$0] * -log(1 / (1 + exp(-ell[$0]))) }.reduce(0, +) / Double(normal.count)
        guard let bn, let ba else { return ml }
        let pull = normal.filter { ell[$0] / alpha <= bn }
        let ln = pull.isEmpty ? 0 : pull.map { wn[$0] * (bn - ell[$0] / alpha) }.reduce(0, +) / Double(pull.count)
        let push = semiPush ? ell.indices.filter { labels[$0] == 1 && ell[$0] / alpha >= ba } : []
        let la = push.isEmpty ? 0 : push.map { wa[$0] * (ell[$0] / alpha - ba) }.reduce(0, +) / Double(push.count)
        return ml + lambda * (ln + la)
    }

    private func check(ell: [Float], labels: [UInt8], boundaries: ExplicitBoundaries?, focal: Bool, semiPush: Bool,
                       file: StaticString = #filePath, line: UInt = #line) {
        let alpha = 10.0, lambda = 1.3
        let wn = ell.map { focal ? normalFocalWeight($0) : 1 }
        let wa = ell.map { focal ? abnormalFocalWeight($0) : 1 }
        var grad = [Float](repeating: .nan, count: ell.count)
        let got = ell.withUnsafeBufferPointer { e in labels.withUnsafeBufferPointer { l in
            wn.withUnsafeBufferPointer { nw in wa.withUnsafeBufferPointer { aw in
                grad.withUnsafeMutableBufferPointer { g in
                    boundaryGuidedLoss(ell: e, labels: l, boundaries: boundaries, normalWeights: focal ? nw : nil,
                                       abnormalWeights: focal ? aw : nil, semiPush: semiPush, normalizer: alpha,
                                       lambda: lambda, gradient: g)
                } } } } }
        let ed = ell.map(Double.init), wnd = wn.map(Double.init), wad = wa.map(Double.init)
        let bn = boundaries.map { Double($0.normal) }, ba = boundaries.map { Double($0.abnormal) }
        let expected = referenceLoss(ed, labels, bn: bn, ba: ba, wn: wnd, wa: wad, semiPush: semiPush, alpha: alpha, lambda: lambda)
        XCTAssertEqual(got.total, expected, accuracy: 1e-9 * max(1, abs(expected)), file: file, line: line)
        XCTAssertTrue(got.total.isFinite, file: file, line: line)
        // Central differences with boundaries and weights held constant (as in training).
        let h = 1e-4
        for i in ell.indices {
            var up = ed, dn = ed
            up[i] += h; dn[i] -= h
            let fd = (referenceLoss(up, labels, bn: bn, ba: ba, wn: wnd, wa: wad, semiPush: semiPush, alpha: alpha, lambda: lambda)
                - referenceLoss(dn, labels, bn: bn, ba: ba, wn: wnd, wa: wad, semiPush: semiPush, alpha: alpha, lambda: lambda)) / (2 * h)
            XCTAssertEqual(Double(grad[i]), fd, accuracy: 1e-5 + 1e-4 * abs(fd), "element \(i)", file: file, line: line)
        }
    }

    func testLossValueAndGradientMatchClosedFormAndFiniteDifferences() {
        var g = SeededRandom(seed: 3)
        for trial in 0..<60 {
            let n = 5 + g.below(60)
            // ℓ spread over the interesting range; keep values off the boundary kinks.
            var ell = (0..<n).map { _ in Float(g.below(20000)) / 1000 - 15 }
            let labels = (0..<n).map { _ in UInt8(g.below(4) == 0 ? 1 : 0) }
            let bn = Float(-0.35) + Float(trial % 5) * 0.05
            let b = ExplicitBoundaries(normal: bn, abnormal: bn - 0.1)
            for i in ell.indices {
                let s = ell[i] / 10
                if abs(s - b.normal) < 2e-4 || abs(s - b.abnormal) < 2e-4 { ell[i] += 0.01 }
            }
            for focal in [false, true] {
                check(ell: ell, labels: labels, boundaries: b, focal: focal, semiPush: true)
                check(ell: ell, labels: labels, boundaries: b, focal: focal, semiPush: false)
                check(ell: ell, labels: labels, boundaries: nil, focal: focal, semiPush: false)
            }
        }
    }

    func testEmptySetsContributeZeroNotNaN() {
        let b = ExplicitBoundaries(normal: -0.5, abnormal: -0.6)
        // No normal below b_n (all ℓ' > −0.5) and no abnormal above b_a (ℓ' < −0.6).
        let ell: [Float] = [-1, -2, -3, -9, -8]
        let labels: [UInt8] = [0, 0, 0, 1, 1]
        var grad = [Float](repeating: 0, count: 5)
        let r = ell.withUnsafeBufferPointer { e in labels.withUnsafeBufferPointer { l in grad.withUnsafeMutableBufferPointer { g in
            boundaryGuidedLoss(ell: e, labels: l, boundaries: b, normalWeights: nil, abnormalWeights: nil, semiPush: true,
                               normalizer: 10, lambda: 1, gradient: g) } } }
        XCTAssertEqual(r.semiPull, 0)
        XCTAssertEqual(r.semiPush, 0)
        XCTAssertEqual(r.total, r.maximumLikelihood)
        XCTAssertEqual(grad[3], 0)
        XCTAssertEqual(grad[4], 0)
        // No abnormal vector at all and no normal vector at all.
        check(ell: [-1, -2, -7], labels: [0, 0, 0], boundaries: b, focal: true, semiPush: true)
        check(ell: [-1, -2, -7], labels: [1, 1, 1], boundaries: b, focal: true, semiPush: true)
    }

    func testScheduleWarmsUpOverRealStepsThenFollowsTheCosine() {
        let s = LearningRateSchedule(baseRate: 2e-4, metaEpochs: 25)
        let etaMin = 2e-4 * 1e-3
        let cos2 = etaMin + (2e-4 - etaMin) * (1 + cos(Double.pi * 2 / 25)) / 2
        XCTAssertEqual(s.rate(epoch: 0, step: 0, stepsInEpoch: 7), 2e-5, accuracy: 1e-15)
        // Halfway through the warm-up (end of epoch 0, whatever its step count).
        XCTAssertEqual(s.rate(epoch: 1, step: 0, stepsInEpoch: 300), 2e-5 + 0.5 * (cos2 - 2e-5), accuracy: 1e-15)
        XCTAssertEqual(s.rate(epoch: 1, step: 150, stepsInEpoch: 300), 2e-5 + 0.75 * (cos2 - 2e-5), accuracy: 1e-15)
        // After the warm-up, constant per meta-epoch, cosine-decayed, ending near η_min.
        XCTAssertEqual(s.rate(epoch: 2, step: 5, stepsInEpoch: 9), cos2, accuracy: 1e-15)
        XCTAssertEqual(s.rate(epoch: 24, step: 0, stepsInEpoch: 9),
                       etaMin + (2e-4 - etaMin) * (1 + cos(Double.pi * 24 / 25)) / 2, accuracy: 1e-15)
        // Never above the base rate (the reference's warm-up overshoot is a known pitfall).
        for e in 0..<25 { for i in 0..<10 { XCTAssertLessThanOrEqual(s.rate(epoch: e, step: i, stepsInEpoch: 10), 2e-4) } }
    }

    func testChunksCoverEveryVectorOnceWithNearEqualSizes() {
        for (total, chunk) in [(8192, 4096), (131072, 4096), (2048, 4096), (6000, 4096), (4097, 4096), (1, 4096), (10241, 4096)] {
            let b = chunkBounds(total: total, chunk: chunk)
            XCTAssertEqual(b.first?.lowerBound, 0)
            XCTAssertEqual(b.last?.upperBound, total)
            for (a, c) in zip(b, b.dropFirst()) { XCTAssertEqual(a.upperBound, c.lowerBound) }
            let sizes = b.map { $0.count }
            XCTAssertLessThanOrEqual(sizes.max()! - sizes.min()!, 1)
            XCTAssertLessThanOrEqual(sizes.max()!, chunk + chunk / 2 + 1)
        }
        XCTAssertEqual(chunkBounds(total: 131072, chunk: 4096).count, 32)
    }

    func testNearestDownsamplingMatchesPyTorchIndexRule() {
        // 256 → 64: every 4th pixel starting at 0 (floor(dst · 4)).
        XCTAssertEqual((0..<4).map { nearestSourceIndex($0, inSize: 256, outSize: 64) }, [0, 4, 8, 12])
        // 10 → 4: scale 2.5 → floor(0, 2.5, 5, 7.5) = 0, 2, 5, 7.
        XCTAssertEqual((0..<4).map { nearestSourceIndex($0, inSize: 10, outSize: 4) }, [0, 2, 5, 7])
        // Upsampling 3 → 7: scale 3/7.
        XCTAssertEqual((0..<7).map { nearestSourceIndex($0, inSize: 3, outSize: 7) }, [0, 0, 0, 1, 1, 2, 2])
        var mask = [UInt8](repeating: 0, count: 8 * 8)
        mask[4 * 8 + 4] = 1  // sampled by output (2, 2) at 2× downsampling
        mask[5 * 8 + 5] = 1  // never sampled
        var out = [UInt8](repeating: 9, count: 16)
        mask.withUnsafeBufferPointer { m in out.withUnsafeMutableBufferPointer { o in
            downsampleMaskNearest(m.baseAddress!, height: 8, width: 8, toHeight: 4, toWidth: 4, into: o.baseAddress!) } }
        XCTAssertEqual(out.indices.filter { out[$0] == 1 }, [2 * 4 + 2])
        XCTAssertEqual(out.filter { $0 > 1 }.count, 0)
    }

    func testTransposeImageOrdersVectorsByPosition() {
        // 2 images, C = 3, H = 2, W = 2: value = 100·img + 10·c + pos.
        var data = [Float](repeating: 0, count: 2 * 3 * 4)
        for img in 0..<2 { for c in 0..<3 { for p in 0..<4 { data[(img * 3 + c) * 4 + p] = Float(100 * img + 10 * c + p) } } }
        var rows = [Float](repeating: 0, count: 12)
        data.withUnsafeBufferPointer { d in
            let maps = FeatureMaps(data: d.baseAddress!, count: 2, channels: 3, height: 2, width: 2)
            rows.withUnsafeMutableBufferPointer { maps.transposeImage(1, into: $0.baseAddress!) }
        }
        XCTAssertEqual(rows, [100, 110, 120, 101, 111, 121, 102, 112, 122, 103, 113, 123])
    }
}
