import XCTest
@testable import BGADCore

/// The model end to end on small feature maps: training isolation between levels,
/// determinism, cancellation, the file format and its failure modes.
final class ModelTests: XCTestCase {
    /// Random maps (count × c × h × w) from a seeded generator, shifted by `shift`.
    private func maps(_ count: Int, _ c: Int, _ h: Int, _ w: Int, seed: UInt64, shift: Float = 0) -> [Float] {
        var g = SeededRandom(seed: seed)
        return (0..<(count * c * h * w)).map { _ in Float(g.below(2001)) / 1000 - 1 + shift }
    }

    private func configuration() -> TrainingConfiguration {
        var c = TrainingConfiguration()
        c.metaEpochs = 3; c.subEpochs = 1; c.batchSize = 3; c.chunkSize = 48; c.learningRate = 1e-3
        c.blocks = 2; c.loss.beta = 0.05
        return c
    }

    private let level0 = (c: 4, h: 6, w: 6), level1 = (c: 6, h: 3, w: 3)
    private lazy var normal0 = maps(8, level0.c, level0.h, level0.w, seed: 1)
    private lazy var normal1 = maps(8, level1.c, level1.h, level1.w, seed: 2)
    private lazy var anomalous0 = maps(2, level0.c, level0.h, level0.w, seed: 3, shift: 1.5)
    private lazy var anomalous1 = maps(2, level1.c, level1.h, level1.w, seed: 4, shift: 1.5)
    private lazy var masks: [UInt8] = (0..<(2 * 12 * 12)).map { ($0 % 144) / 12 < 6 ? 1 : 0 }

    /// Trains a model on the fixture (one or both levels) and returns it.
    private func trained(levels: Int = 2, configuration c: TrainingConfiguration? = nil,
                         progress: ((TrainingProgress) -> Bool)? = nil) throws -> BGADModel {
        let chans = [level0.c, level1.c].prefix(levels)
        let model = try BGADModel(channels: Array(chans), configuration: c ?? configuration())
        try normal0.withUnsafeBufferPointer { n0 in try normal1.withUnsafeBufferPointer { n1 in
            try anomalous0.withUnsafeBufferPointer { a0 in try anomalous1.withUnsafeBufferPointer { a1 in
                try masks.withUnsafeBufferPointer { m in
                    let normal = [FeatureMaps(data: n0.baseAddress!, count: 8, channels: level0.c, height: level0.h, width: level0.w),
                                  FeatureMaps(data: n1.baseAddress!, count: 8, channels: level1.c, height: level1.h, width: level1.w)]
                    let anomalous = [FeatureMaps(data: a0.baseAddress!, count: 2, channels: level0.c, height: level0.h, width: level0.w),
                                     FeatureMaps(data: a1.baseAddress!, count: 2, channels: level1.c, height: level1.h, width: level1.w)]
                    let data = TrainingSet(normal: Array(normal.prefix(levels)), anomalous: Array(anomalous.prefix(levels)),
                                           masks: m.baseAddress!, maskHeight: 12, maskWidth: 12)
                    try model.fit(data, progress: progress)
                } } } } }
        return model
    }

    private func scoreMaps(_ model: BGADModel, levels: Int = 2) throws -> [Float] {
        var out = [Float](repeating: 0, count: 8 * 10 * 10)
        try normal0.withUnsafeBufferPointer { n0 in try normal1.withUnsafeBufferPointer { n1 in
            try out.withUnsafeMutableBufferPointer { o in
                let f = [FeatureMaps(data: n0.baseAddress!, count: 8, channels: level0.c, height: level0.h, width: level0.w),
                         FeatureMaps(data: n1.baseAddress!, count: 8, channels: level1.c, height: level1.h, width: level1.w)]
                try model.anomalyMaps(Array(f.prefix(levels)), height: 10, width: 10, into: o.baseAddress!)
            } } }
        return out
    }

    private func level0LogLikelihood(_ model: BGADModel) throws -> [Float] {
        var out = [Float](repeating: 0, count: 8 * level0.h * level0.w)
        try normal0.withUnsafeBufferPointer { n0 in
            try out.withUnsafeMutableBufferPointer { o in
                let ev = LevelLikelihoodEvaluator()
                let f = FeatureMaps(data: n0.baseAddress!, count: 8, channels: level0.c, height: level0.h, width: level0.w)
                for i in 0..<8 { try ev.logLikelihood(flow: model.flows[0], maps: f, image: i, into: o.baseAddress! + i * 36) }
            } }
        return out
    }

    func testEachLevelIsTrainedOnlyByItsOwnLossWithItsOwnOptimizer() throws {
        // Level 0 of a two-level model ends exactly where a one-level model ends: the other
        // level's steps neither move it nor feed its Adam state.
        let both = try trained(levels: 2), alone = try trained(levels: 1)
        XCTAssertEqual(try level0LogLikelihood(both), try level0LogLikelihood(alone))
        let untrained = try BGADModel(channels: [level0.c, level1.c], configuration: configuration())
        XCTAssertNotEqual(try both.flows[0].parameter(both.flows[0].parameterNames[0]),
                          try untrained.flows[0].parameter(untrained.flows[0].parameterNames[0]))
    }

    func testSameSeedGivesTheSameScoresAndVariantsDiffer() throws {
        let a = try scoreMaps(try trained()), b = try scoreMaps(try trained())
        XCTAssertEqual(a, b)
        var nfad = configuration()
        nfad.variant = .nfad
        XCTAssertNotEqual(try scoreMaps(try trained(configuration: nfad)), a)
    }

    func testProgressCountsEveryStepAndCanCancel() throws {
        var seen: [Int] = []
        var total = 0
        _ = try trained { p in seen.append(p.step); total = p.totalSteps; return true }
        // 8 normal images in batches of 3 → 3 batches; level 0: 108 / 36 / 72 vectors → chunks
        // round(n / 48) ≥ 1; level 1: 27 / 9 / 18 → 1 chunk each. Phase 2 adds the 2 anomalies.
        func steps(_ images: Int, positions: Int) -> Int {
            stride(from: 0, to: images, by: 3).map { max(1, (min(3, images - $0) * positions + 24) / 48) }.reduce(0, +)
        }
        let expected = steps(8, positions: 36) + steps(8, positions: 9) + 2 * (steps(10, positions: 36) + steps(10, positions: 9))
        XCTAssertEqual(total, expected)
        XCTAssertEqual(seen, Array(1...expected))
        var model: BGADModel? = nil
        XCTAssertThrowsError(model = try trained { $0.step < 3 }) { error in
            XCTAssertEqual((error as? BGADError)?.kind, .cancelled)
        }
        XCTAssertNil(model)
    }

    func testWarmUpFollowsTheRealStepsOfEachLevel() throws {
        var records: [(epoch: Int, level: Int, rate: Double)] = []
        let c = configuration()  // 3 meta-epochs, 2 warm-up epochs, lr 1e-3
        _ = try trained { p in records.append((p.metaEpoch, p.level, p.learningRate)); return true }
        let lr = c.learningRate, etaMin = lr * 1e-3
        let target = etaMin + (lr - etaMin) * (1 + cos(Double.pi * 2 / 3)) / 2
        for level in 0..<2 {
            for epoch in 0..<2 {
                let rates = records.filter { $0.level == level && $0.epoch == epoch }.map { $0.rate }
                XCTAssertFalse(rates.isEmpty)
                for (i, r) in rates.enumerated() {
                    // progress p = (epoch + i / steps of THIS level in THIS meta-epoch) / 2
                    let p = (Double(epoch) + Double(i) / Double(rates.count)) / 2
                    XCTAssertEqual(r, lr / 10 + p * (target - lr / 10), accuracy: 1e-12, "level \(level) epoch \(epoch) step \(i)")
                }
            }
            let last = records.filter { $0.level == level && $0.epoch == 2 }.map { $0.rate }
            XCTAssertFalse(last.isEmpty)
            for r in last { XCTAssertEqual(r, target, accuracy: 1e-12) }
        }
    }

    func testSaveLoadRoundTripGivesBitwiseIdenticalScores() throws {
        let model = try trained()
        let path = "/tmp/bgad-model-test-\(getpid()).bgad"
        defer { unlink(path) }
        try ModelFile.save(model, to: path)
        let loaded = try ModelFile.load(from: path)
        // the file holds exactly the encoding, and the loaded model encodes to the same bytes
        let encoded = try ModelFile.encode(model)
        XCTAssertEqual(try readFile(path), encoded)
        XCTAssertEqual(try ModelFile.encode(loaded), encoded)
        XCTAssertEqual(try scoreMaps(loaded), try scoreMaps(model))
        XCTAssertEqual(loaded.calibration, model.calibration)
        XCTAssertEqual(loaded.configuration, model.configuration)
        for (a, b) in zip(loaded.flows, model.flows) {
            XCTAssertEqual(a.parameterNames, b.parameterNames)
            for n in a.parameterNames { XCTAssertEqual(try a.parameter(n), try b.parameter(n), n) }
        }
        XCTAssertTrue(model.flows[0].parameterNames.contains { $0.hasSuffix("w_perm") }, "rotations are saved")
    }

    func testDamagedFilesAreRefusedWithAClearMessage() throws {
        let bytes = try ModelFile.encode(try trained())
        func message(_ b: [UInt8]) -> String {
            do { _ = try ModelFile.decode(b); return "accepted" } catch { return error.message }
        }
        XCTAssertTrue(message(Array(bytes.prefix(bytes.count - 7))).contains("truncated"))
        XCTAssertTrue(message(Array(bytes.prefix(16))).contains("truncated"))
        var flipped = bytes
        flipped[bytes.count / 2] ^= 0x10
        XCTAssertTrue(message(flipped).contains("corrupted"))
        var foreign = bytes
        foreign[0] = UInt8(ascii: "P")
        XCTAssertTrue(message(foreign).contains("not a bgad model"))
        var newer = bytes
        newer[8] = 3
        XCTAssertTrue(message(newer).contains("newer") || message(newer).contains("upgrade"))
        XCTAssertTrue(message(bytes + [0]).contains("trailing"))
        XCTAssertTrue(message([]).contains("not a bgad model"))
        XCTAssertEqual(message(bytes), "accepted")
        XCTAssertThrowsError(try ModelFile.load(from: "/nonexistent/dir/model.bgad")) { error in
            XCTAssertEqual((error as? BGADError)?.kind, .io)
        }
    }

    func testVersion1FilesAreReadWithTheirImageThresholdConverted() throws {
        let model = try trained()
        let v2 = try ModelFile.encode(model)
        let payload = Array(v2[ModelFile.headerSize...])
        // Walk the payload to the image threshold (f64 in version 2, f32 on the map's scale in 1).
        var r = ByteReader(bytes: payload, position: 0)
        for _ in 0..<Int(try r.u32()) { _ = try r.string(); _ = try r.string() }
        let levels = Int(try r.u32())
        for _ in 0..<levels { _ = try r.u32() }
        XCTAssertEqual(try r.u8(), 1)
        _ = try r.u32(); _ = try r.u32(); _ = try r.f64()
        let sMax = try r.f32()
        _ = try r.f32()
        let at = r.position
        let threshold = try r.f64()
        // The history section is last: flag + per level (count + records).
        let history = try XCTUnwrap(model.history)
        let historyBytes = 1 + history.levels.reduce(0) { $0 + 4 + $1.count * TrainingHistory.fieldNames.count * 8 }
        var w = ByteWriter()
        w.f32(sMax - Float(exp(-threshold)))  // version 1 stored S_max − b_image
        let v1Payload = Array(payload[..<at]) + w.bytes + Array(payload[(at + 8)..<(payload.count - historyBytes)])
        var header = ByteWriter()
        header.bytes.append(contentsOf: ModelFile.magic)
        header.u32(1); header.u32(0); header.u64(UInt64(v1Payload.count)); header.u32(crc32(v1Payload)); header.u32(0)
        let old = try ModelFile.decode(header.bytes + v1Payload)
        XCTAssertNil(old.history)
        XCTAssertEqual(try XCTUnwrap(old.calibration?.imageThreshold), threshold, accuracy: 1e-4 * max(1, abs(threshold)))
        XCTAssertEqual(try scoreMaps(old), try scoreMaps(model))
    }

    func testCrc32MatchesTheStandardCheckValue() {
        XCTAssertEqual(crc32(Array("123456789".utf8)), 0xCBF4_3926)
    }
}
