import XCTest
@testable import BGADCore

/// The step budget (`TrainingConfiguration.steps`): steps per phase, warm-up, cosine decay and
/// independence from the number of images; the training history and its late-improvement
/// measure.
final class TrainingBudgetTests: XCTestCase {
    /// Random maps (count × c × h × w) from a seeded generator.
    private func maps(_ count: Int, _ c: Int, _ h: Int, _ w: Int, seed: UInt64, shift: Float = 0) -> [Float] {
        var g = SeededRandom(seed: seed)
        return (0..<(count * c * h * w)).map { _ in Float(g.below(2001)) / 1000 - 1 + shift }
    }

    private func budget(_ steps: Int) -> TrainingConfiguration {
        var c = TrainingConfiguration()
        c.steps = steps; c.batchSize = 4; c.chunkSize = 64; c.learningRate = 1e-3; c.blocks = 2; c.loss.beta = 0.05
        return c
    }

    /// Trains a two-level model (8×8 and 4×4 grids) on `normals` normal and 2 anomalous images;
    /// returns every progress report.
    @discardableResult
    private func train(normals: Int, _ c: TrainingConfiguration, anomalies: Bool = true,
                       model: inout BGADModel?) throws -> [TrainingProgress] {
        let n0 = maps(normals, 4, 8, 8, seed: 1), n1 = maps(normals, 6, 4, 4, seed: 2)
        let a0 = maps(2, 4, 8, 8, seed: 3, shift: 1.5), a1 = maps(2, 6, 4, 4, seed: 4, shift: 1.5)
        let m = try BGADModel(channels: [4, 6], configuration: c)
        var reports: [TrainingProgress] = []
        try n0.withUnsafeBufferPointer { p0 in try n1.withUnsafeBufferPointer { p1 in
            try a0.withUnsafeBufferPointer { q0 in try a1.withUnsafeBufferPointer { q1 in
                let normal = [FeatureMaps(data: p0.baseAddress!, count: normals, channels: 4, height: 8, width: 8),
                              FeatureMaps(data: p1.baseAddress!, count: normals, channels: 6, height: 4, width: 4)]
                let anomalous = [FeatureMaps(data: q0.baseAddress!, count: 2, channels: 4, height: 8, width: 8),
                                 FeatureMaps(data: q1.baseAddress!, count: 2, channels: 6, height: 4, width: 4)]
                try m.fit(TrainingSet(normal: normal, anomalous: anomalies ? anomalous : []),
                          progress: { reports.append($0); return true })
            } } } }
        model = m
        return reports
    }

    func testTheBudgetIsTheSameStepsWhateverTheImageCount() throws {
        // Batches of 4 images: level 0 has 4 · 64 = 256 vectors = 4 chunks of 64, level 1
        // 4 · 16 = 64 = 1 chunk. 100 steps of the finest level: 25 phase-1 steps (7 batches,
        // rounded up to whole batches = 28 steps), then ⌈72 / 4⌉ = 18 batches of phase 2.
        for normals in [4, 5, 9, 40] {
            var model: BGADModel? = nil
            let reports = try train(normals: normals, budget(100), model: &model)
            let level0 = reports.filter { $0.level == 0 }, level1 = reports.filter { $0.level == 1 }
            XCTAssertEqual(level0.count, 100, "\(normals) images")
            XCTAssertEqual(level1.count, 25, "\(normals) images")
            XCTAssertEqual(level0.filter { $0.phase == 1 }.count, 28)
            XCTAssertEqual(level1.filter { $0.phase == 1 }.count, 7)
            XCTAssertEqual(reports.last?.totalSteps, 125)
            XCTAssertEqual(model?.history?.levels.map { $0.last?.endStep }, [100, 25])
        }
    }

    func testTheRateWarmsUpThenFollowsTheCosineOverEachLevelsSteps() throws {
        var c = budget(200)
        c.warmupFraction = 0.3
        var model: BGADModel? = nil
        let reports = try train(normals: 6, c, model: &model)
        let lr = c.learningRate, etaMin = lr * pow(c.decayRate, 3)
        for level in 0..<2 {
            let rates = reports.filter { $0.level == level }.map { $0.learningRate }
            let t = Double(rates.count), w = Int(0.3 * t)
            func cosine(_ s: Int) -> Double { etaMin + (lr - etaMin) * (1 + cos(Double.pi * Double(s) / t)) / 2 }
            for (s, r) in rates.enumerated() {
                let expected = s < w ? lr / 10 + Double(s) / Double(w) * (cosine(w) - lr / 10) : cosine(s)
                XCTAssertEqual(r, expected, accuracy: 1e-15, "level \(level) step \(s)")
            }
            XCTAssertEqual(rates.first!, lr / 10, accuracy: 1e-15)
            XCTAssertLessThan(rates.last!, etaMin + 0.01 * (lr - etaMin))  // the last step is one step short of T
        }
    }

    func testEveryImageIsSeenEquallyOftenAndBatchesHoldDistinctImages() {
        var stream = ImageStream(count: 7)
        var rng = SeededRandom(seed: 5)
        var counts = [Int](repeating: 0, count: 7)
        var batch: [Int] = []
        for _ in 0..<70 {  // 70 batches of 3 = 210 draws = 30 passes
            stream.next(3, into: &batch, rng: &rng)
            XCTAssertEqual(Set(batch).count, 3)
            for i in batch { counts[i] += 1 }
        }
        XCTAssertEqual(counts, [Int](repeating: 30, count: 7))
    }

    func testHistoryRecordsEveryStepOncePerPhaseAndTheBoundariesOfPhase2() throws {
        var model: BGADModel? = nil
        let reports = try train(normals: 6, budget(400), model: &model)
        let history = try XCTUnwrap(model?.history)
        var boundaries = 0
        for level in 0..<2 {
            let records = history.levels[level]
            XCTAssertLessThanOrEqual(records.count, TrainingHistory.maxRecords + 1)
            XCTAssertEqual(records.last?.endStep, reports.filter { $0.level == level }.count)
            // No interval mixes the phases; phase 2 follows phase 1.
            XCTAssertEqual(records.map { $0.phase }, records.map { $0.phase }.sorted())
            // Interval means of the loss equal the means of the reported step losses.
            let losses = reports.filter { $0.level == level }.map { $0.loss }
            var previous = 0
            for r in records {
                let mean = losses[previous..<r.endStep].reduce(0, +) / Double(r.endStep - previous)
                XCTAssertEqual(r.loss, mean, accuracy: 1e-9 * max(1, abs(mean)))
                previous = r.endStep
                if r.phase == 2, !r.normalBoundary.isNaN {
                    boundaries += 1
                    XCTAssertEqual(r.abnormalBoundary, r.normalBoundary - 0.1 * 10, accuracy: 1e-5)
                } else if r.phase == 1 {
                    XCTAssertTrue(r.normalBoundary.isNaN)
                }
            }
        }
        XCTAssertGreaterThan(boundaries, 0)
        // The model file keeps the history.
        let bytes = try ModelFile.encode(try XCTUnwrap(model))
        let back = try ModelFile.decode(bytes)
        XCTAssertEqual(back.history?.levels.map { $0.map { $0.fields.map { $0.bitPattern } } },
                       history.levels.map { $0.map { $0.fields.map { $0.bitPattern } } })
    }

    /// Records of one level: 20 of phase 1, then phase 2 with the normal and abnormal mean ℓ
    /// and the boundaries given per record (`b_a = b_n − margin`).
    private func history(records: Int = 80, normal: (Int) -> Double, abnormal: (Int) -> Double,
                         margin: Double = 1) -> TrainingHistory {
        var out: [TrainingHistory.Record] = []
        for s in 1...20 { out.append(TrainingHistory.Record(fields: [Double(s), 1, 1e-3, 10, 10, 0, 0, -1, .nan, .nan, .nan])) }
        for s in 1...records {
            out.append(TrainingHistory.Record(fields: [Double(20 + s), 2, 1e-3, 5, 4, 0.1, 0.9, normal(s), abnormal(s),
                                                       -3, -3 - margin]))
        }
        return TrainingHistory(levels: [out])
    }

    func testSeparationIsTheLastQuarterGapInMargins() {
        // The gap grows linearly, 0.05 per record: the last quarter (records 61…80) averages
        // 0.05 · 70.5 = 3.525 ℓ, over a margin of 1.5 → 2.35 margins.
        let h = history(normal: { _ in -2.5 }, abnormal: { -2.5 - 0.05 * Double($0) }, margin: 1.5)
        XCTAssertEqual(h.separation(level: 0), 0.05 * 70.5 / 1.5, accuracy: 1e-12)
        // Records without abnormal vectors do not count; a single record is its own last quarter.
        let sparse = history(records: 3, normal: { _ in -2 }, abnormal: { $0 == 2 ? -2.4 : .nan })
        XCTAssertEqual(sparse.separation(level: 0), 0.4, accuracy: 1e-12)
        // No phase-2 record with anomalies (NFAD), or no margin: no verdict.
        XCTAssertTrue(history(normal: { _ in -2 }, abnormal: { _ in .nan }).separation(level: 0).isNaN)
        XCTAssertTrue(history(normal: { _ in -2 }, abnormal: { _ in -3 }, margin: 0).separation(level: 0).isNaN)
    }

    func testEpochScheduleIsUnchangedWhenNoBudgetIsSet() throws {
        // steps = 0 keeps the authors' meta-epoch schedule: meta-epoch 0 is phase 1.
        var c = budget(0)
        c.metaEpochs = 3; c.subEpochs = 1
        var model: BGADModel? = nil
        let reports = try train(normals: 8, c, model: &model)
        XCTAssertEqual(Set(reports.filter { $0.phase == 1 }.map { $0.metaEpoch }), [0])
        XCTAssertEqual(Set(reports.filter { $0.phase == 2 }.map { $0.metaEpoch }), [1, 2])
    }

    func testBadBudgetsAreRefused() {
        var c = TrainingConfiguration()
        try? c.set("steps", "-1")  // parses; validate refuses
        XCTAssertEqual(c.steps, -1)
        XCTAssertThrowsError(try c.validate())
        c = TrainingConfiguration(); c.phase1Fraction = 1
        XCTAssertThrowsError(try c.validate())
        c = TrainingConfiguration(); c.warmupFraction = .nan
        XCTAssertThrowsError(try c.validate())
    }
}
