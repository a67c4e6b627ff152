import Foundation
import XCTest
import BGADCore

/// The Detector through its public Swift API: configuration and JSON, fit on a tiny
/// synthetic set, predict (batch = one by one, sizes, gray/RGB), the file format and its
/// failure modes, errors, cancellation and concurrent prediction.
final class DetectorTests: XCTestCase {
    // MARK: - Fixture

    /// Deterministic pseudo-random bytes in `lo ..< lo + span`.
    static func noise(_ n: Int, seed: UInt64, lo: Int = 90, span: Int = 40) -> [UInt8] {
        var g = SeededRandom(seed: seed)
        return (0..<n).map { _ in UInt8(lo + g.below(span)) }
    }

    /// A textured part: noise plus a darker disc (so Otsu finds an object).
    static func normalImage(_ h: Int, _ w: Int, channels: Int, seed: UInt64) -> Image {
        var px = noise(h * w * channels, seed: seed)
        for y in 0..<h {
            for x in 0..<w where (y - h / 2) * (y - h / 2) + (x - w / 2) * (x - w / 2) < (min(h, w) / 3) * (min(h, w) / 3) {
                for c in 0..<channels { px[(y * w + x) * channels + c] &-= 40 }
            }
        }
        return try! Image(height: h, width: w, channels: channels, pixels: px)
    }

    /// A normal image with a bright square defect, and its mask.
    static func anomaly(_ h: Int, _ w: Int, channels: Int, seed: UInt64) -> (Image, Image) {
        var im = normalImage(h, w, channels: channels, seed: seed)
        var mask = Image(height: h, width: w, channels: 1)
        for y in (h / 3)..<(h / 2) {
            for x in (w / 3)..<(w / 2) {
                for c in 0..<channels { im.pixels[(y * w + x) * channels + c] = 250 }
                mask.pixels[y * w + x] = 255
            }
        }
        return (im, mask)
    }

    static let settings = #"{"image_size": 64, "steps": 30, "blocks": 2, "rpag_per_anomaly": 2, "real_repeats": 2, "feature_batch": 4, "seed": 3}"#

    /// Settings with the weight file (skips when it cannot be prepared).
    static func settingsWithWeights(_ extra: String = "") throws -> String {
        let w = try engineWeightFile()
        return String(settings.dropLast()) + #", "weights": "\#(w)""# + extra + "}"
    }

    static let normals = (0..<10).map { normalImage(56 + 3 * $0, 70, channels: $0 % 3 == 0 ? 1 : 3, seed: UInt64($0)) }
    static let anomalies = (0..<3).map { anomaly(64, 80, channels: 3, seed: 100 + UInt64($0)) }

    /// One fitted detector shared by the tests that only read it.
    static var shared: Detector?
    func fitted() throws -> Detector {
        if let d = DetectorTests.shared { return d }
        let d = try Detector(json: DetectorTests.settingsWithWeights())
        try d.fit(normal: DetectorTests.normals, anomalous: DetectorTests.anomalies.map { $0.0 },
                  masks: DetectorTests.anomalies.map { $0.1 })
        DetectorTests.shared = d
        return d
    }

    /// Test images: several sizes, gray and RGB, a defect among them.
    var probes: [Image] {
        [DetectorTests.normalImage(64, 64, channels: 3, seed: 50), DetectorTests.normalImage(31, 97, channels: 1, seed: 51),
         DetectorTests.anomaly(120, 90, channels: 3, seed: 52).0, DetectorTests.normalImage(200, 150, channels: 3, seed: 53),
         DetectorTests.anomaly(64, 64, channels: 1, seed: 54).0, DetectorTests.normalImage(1, 5, channels: 1, seed: 55)]
    }

    /// Bitwise equality of two maps, reported briefly (count and largest difference).
    func assertSameMap(_ a: [Float]?, _ b: [Float]?, _ what: String = "", file: StaticString = #filePath, line: UInt = #line) {
        guard let a, let b else { return XCTAssertTrue(a == nil && b == nil, "one map is nil \(what)", file: file, line: line) }
        guard a.count == b.count else { return XCTFail("map sizes \(a.count) ≠ \(b.count) \(what)", file: file, line: line) }
        var differing = 0, largest: Float = 0
        for i in 0..<a.count where a[i].bitPattern != b[i].bitPattern { differing += 1; largest = max(largest, abs(a[i] - b[i])) }
        XCTAssertEqual(differing, 0, "\(differing) of \(a.count) values differ, by up to \(largest) \(what)", file: file, line: line)
    }

    func assertBGADError(_ kind: BGADError.Kind, containing text: String = "", _ body: () throws -> Void,
                         file: StaticString = #filePath, line: UInt = #line) {
        do {
            try body()
            XCTFail("no error (expected \(kind))", file: file, line: line)
        } catch let e as BGADError {
            XCTAssertEqual(e.kind, kind, e.message, file: file, line: line)
            XCTAssertTrue(text.isEmpty || e.message.contains(text), "'\(e.message)' does not contain '\(text)'", file: file, line: line)
        } catch {
            XCTFail("unexpected error \(error)", file: file, line: line)
        }
    }

    // MARK: - JSON and configuration

    func testJSONParsesAndWritesValues() throws {
        let v = try JSON.parse(#" {"a": [1, -2.5e3, 0.1], "b": "x\"\\\n\u00e9\ud83d\ude00", "c": true, "d": null, "e": {}} "#)
        guard case .object(let m) = v else { return XCTFail("not an object") }
        XCTAssertEqual(m.map { $0.key }, ["a", "b", "c", "d", "e"])
        XCTAssertEqual(m[0].value, .array([.number("1"), .number("-2.5e3"), .number("0.1")]))
        XCTAssertEqual(m[1].value, .string("x\"\\\né😀"))
        XCTAssertEqual(m[2].value, .bool(true))
        XCTAssertEqual(m[3].value, .null)
        XCTAssertEqual(try JSON.parse(v.text), v)  // write → read round trip
        // 2^64 − 1 keeps its exact text (a double would not).
        XCTAssertEqual(try JSON.parse("18446744073709551615"), .number("18446744073709551615"))
    }

    func testJSONRejectsBadTextAndBoundsItsInput() {
        for bad in ["", "{", "{\"a\" 1}", "{\"a\": 1,}", "[1 2]", "01", "1.", "-", "1e", "tru", "\"abc", "{\"a\": 1} x",
                    "{\"a\": 1, \"a\": 2}", "\"\\q\"", "\"\\ud800\"", "{1: 2}", "\"\u{01}\"", "nan", "Infinity"] {
            assertBGADError(.invalidArgument, containing: "JSON") { _ = try JSON.parse(bad) }
        }
        let deep = String(repeating: "[", count: JSON.maximumDepth + 1) + String(repeating: "]", count: JSON.maximumDepth + 1)
        assertBGADError(.invalidArgument, containing: "nesting") { _ = try JSON.parse(deep) }
        let ok = String(repeating: "[", count: JSON.maximumDepth) + String(repeating: "]", count: JSON.maximumDepth)
        XCTAssertNoThrow(try JSON.parse(ok))
        let long = "\"" + String(repeating: "a", count: JSON.maximumLength) + "\""
        assertBGADError(.invalidArgument, containing: "limit") { _ = try JSON.parse(long) }
    }

    func testConfigurationDefaultsAndRoundTrip() throws {
        let d = DetectorConfiguration()
        XCTAssertEqual(d.strides, [8, 16])
        XCTAssertEqual(d.imageSize, 256)
        XCTAssertEqual(d.backbone, "lite0")
        XCTAssertEqual(d.realRepeats, 5)
        XCTAssertEqual(d.rpagPerAnomaly, 10)
        XCTAssertEqual(d.foreground, .otsu)
        XCTAssertEqual(d.featureBatch, 16)
        XCTAssertEqual(d.training, TrainingConfiguration.detectorRecipe)
        XCTAssertEqual(d.training.steps, TrainingConfiguration.defaultSteps)
        XCTAssertEqual(d.training.learningRate, 2e-3)
        XCTAssertEqual(d.training.chunkSize, TrainingConfiguration().chunkSize)  // the rest: authors' defaults
        XCTAssertEqual(try DetectorConfiguration(json: nil), d)
        XCTAssertEqual(try DetectorConfiguration(json: " {} "), d)

        let text = #"{"variant": "nfad", "strides": [4, 32], "image_size": 96, "backbone": "lite0", "weights": "/x/y.bgadw", "real_repeats": 0, "rpag_per_anomaly": 7, "foreground": "whole", "feature_batch": 3, "lr": 1.5e-4, "seed": 18446744073709551615, "focal": false, "beta": 0.05}"#
        let c = try DetectorConfiguration(json: text)
        XCTAssertEqual(c.training.variant, .nfad)
        XCTAssertEqual(c.strides, [4, 32])
        XCTAssertEqual(c.imageSize, 96)
        XCTAssertEqual(c.weights, "/x/y.bgadw")
        XCTAssertEqual(c.realRepeats, 0)
        XCTAssertEqual(c.rpagPerAnomaly, 7)
        XCTAssertEqual(c.foreground, .whole)
        XCTAssertEqual(c.featureBatch, 3)
        XCTAssertEqual(c.training.learningRate, 1.5e-4)
        XCTAssertEqual(c.training.seed, UInt64.max)
        XCTAssertFalse(c.training.loss.focalWeighting)
        XCTAssertEqual(c.training.loss.beta, 0.05)
        // Read back: every key, defaults filled in, and it parses to the same configuration.
        guard case .object(let members) = c.json else { return XCTFail("not an object") }
        XCTAssertEqual(members.map { $0.key }, DetectorConfiguration.keys)
        for name in TrainingConfiguration.parameterNames { XCTAssertTrue(DetectorConfiguration.keys.contains(name), name) }
        XCTAssertEqual(try DetectorConfiguration(json: c.json.text), c)
        XCTAssertEqual(try DetectorConfiguration(json: DetectorConfiguration().json.text), DetectorConfiguration())
    }

    func testConfigurationRejectsBadKeysAndValues() {
        let cases: [(String, String)] = [
            (#"{"imagesize": 64}"#, "imagesize"), (#"{"image_size": 16}"#, "image_size"), (#"{"image_size": "64"}"#, "image_size"),
            (#"{"image_size": 64.5}"#, "image_size"), (#"{"strides": [3]}"#, "strides"), (#"{"strides": []}"#, "strides"),
            (#"{"strides": [16, 8]}"#, "strides"), (#"{"strides": [8, 8]}"#, "strides"), (#"{"strides": 8}"#, "strides"),
            (#"{"backbone": "resnet"}"#, "backbone"), (#"{"foreground": "edges"}"#, "foreground"),
            (#"{"real_repeats": -1}"#, "real_repeats"), (#"{"rpag_per_anomaly": 5000}"#, "rpag_per_anomaly"),
            (#"{"feature_batch": 0}"#, "feature_batch"), (#"{"variant": "other"}"#, "variant"), (#"{"lr": -1}"#, "lr"),
            (#"{"meta_epochs": 0}"#, "meta_epochs"), (#"{"seed": -3}"#, "seed"), (#"{"focal": "maybe"}"#, "focal"),
            (#"{"beta": [1]}"#, "beta"), (#"{"feature_batch": 1024, "image_size": 2048}"#, "feature_batch × image_size²"), (#"[1]"#, "object"), (#"{"weights": 3}"#, "weights"),
        ]
        for (text, name) in cases {
            assertBGADError(.invalidArgument, containing: name) { _ = try DetectorConfiguration(json: text) }
            assertBGADError(.invalidArgument, containing: name) { _ = try Detector(json: text) }
        }
    }

    // MARK: - Fit and predict

    func testUnfittedDetectorRefusesToPredict() throws {
        let d = try Detector(json: DetectorTests.settings)
        XCTAssertFalse(d.isFitted)
        assertBGADError(.invalidArgument, containing: "not fitted") { _ = try d.predict(self.probes) }
        assertBGADError(.invalidArgument, containing: "not fitted") { _ = try d.thresholds() }
        assertBGADError(.invalidArgument, containing: "weights") { try d.fit(normal: DetectorTests.normals) }
        // An unfitted detector round-trips as its configuration.
        let back = try Detector.decode(try d.encoded())
        XCTAssertFalse(back.isFitted)
        XCTAssertEqual(back.configuration, d.configuration)
    }

    func testFitRejectsBadInput() throws {
        let d = try Detector(json: DetectorTests.settingsWithWeights())
        let (a, m) = DetectorTests.anomalies[0]
        assertBGADError(.invalidArgument, containing: "normal image") { try d.fit(normal: []) }
        let small = try Image(height: m.height - 1, width: m.width, channels: 1, pixels: [UInt8](repeating: 1, count: (m.height - 1) * m.width))
        assertBGADError(.invalidArgument, containing: "mask 0") { try d.fit(normal: DetectorTests.normals, anomalous: [a], masks: [small]) }
        assertBGADError(.invalidArgument, containing: "1 channel") { try d.fit(normal: DetectorTests.normals, anomalous: [a], masks: [a]) }
        assertBGADError(.invalidArgument, containing: "masks") { try d.fit(normal: DetectorTests.normals, anomalous: [a], masks: [m, m]) }
        let empty = Image(height: m.height, width: m.width, channels: 1)
        assertBGADError(.invalidArgument, containing: "no defect") { try d.fit(normal: DetectorTests.normals, anomalous: [a], masks: [empty]) }
        var broken = a
        broken.pixels.removeLast()
        assertBGADError(.invalidArgument, containing: "anomalous image 0") { try d.fit(normal: DetectorTests.normals, anomalous: [broken]) }
        let missing = try Detector(json: #"{"image_size": 64, "weights": "/nonexistent/w.bgadw"}"#)
        assertBGADError(.io, containing: "/nonexistent/w.bgadw") { try missing.fit(normal: DetectorTests.normals) }
        XCTAssertFalse(d.isFitted)
    }

    func testPredictBatchEqualsOneByOneAndMapsHaveTheImageSize() throws {
        let d = try fitted()
        let probes = self.probes
        let batch = try d.predict(probes)
        let thresholds = try d.thresholds()
        XCTAssertEqual(batch.count, probes.count)
        for (i, im) in probes.enumerated() {
            let single = try d.predict([im])[0]
            XCTAssertEqual(single.score, batch[i].score, "image \(i)")
            assertSameMap(single.map, batch[i].map, "image \(i)")
            XCTAssertEqual(single.isAnomalous, batch[i].isAnomalous)
            XCTAssertEqual(batch[i].map?.count, im.height * im.width)
            XCTAssertEqual(batch[i].height, im.height)
            XCTAssertEqual(batch[i].width, im.width)
            XCTAssertEqual(batch[i].isAnomalous, batch[i].score > thresholds.image)
            XCTAssertTrue(batch[i].score.isFinite)
        }
        // Without maps: the same scores.
        XCTAssertEqual(try d.predict(probes, maps: false).map { $0.score }, batch.map { $0.score })
        XCTAssertNil(try d.predict(probes, maps: false)[0].map)
        // At the model size the map is the model's map S_max − Σ and the score −log(min Σ).
        let sMax = Double(try d.calibration().maxNormality)
        // (up to the float rounding of S_max − Σ: one ulp of S_max over Σ = e^−score)
        for i in [0, 4] {
            let rounding = 4 * Double(Float(sMax).ulp) * exp(batch[i].score)
            XCTAssertEqual(batch[i].score, -log(sMax - Double(batch[i].map!.max()!)), accuracy: max(1e-4, rounding))
        }
        // The defect scores above every normal probe.
        XCTAssertGreaterThan(batch[2].score, batch[0].score)
        XCTAssertGreaterThan(batch[2].score, batch[3].score)
    }

    func testPredictOfAnyImageEqualsPredictOfItsResizedCopy() throws {
        let d = try fitted()
        let s = d.configuration.imageSize
        for (i, im) in probes.enumerated() where (im.height != s || im.width != s)
            && !Tiling.tiles(height: im.height, width: im.width, size: s, mode: d.configuration.tiling) {
            // The pipeline's own first step, done here: Pillow bilinear to the model size.
            var small = Image(height: s, width: s, channels: im.channels)
            try im.pixels.withUnsafeBufferPointer { src in
                try small.pixels.withUnsafeMutableBufferPointer { dst in
                    try resizeBilinear(src.baseAddress!, height: im.height, width: im.width, channels: im.channels,
                                       into: dst.baseAddress!, height: s, width: s)
                }
            }
            let direct = try d.predict([im])[0], viaSmall = try d.predict([small])[0]
            XCTAssertEqual(direct.score, viaSmall.score, "image \(i)")
            let sMax = Double(try d.calibration().maxNormality)
            let rounding = 4 * Double(Float(sMax).ulp) * exp(viaSmall.score)
            XCTAssertEqual(viaSmall.score, -log(sMax - Double(viaSmall.map!.max()!)), accuracy: max(1e-4, rounding))
            // The map at the image's size is the model-size map resized bilinearly (mode "F").
            var expected = [Float](repeating: 0, count: im.height * im.width)
            try viaSmall.map!.withUnsafeBufferPointer { src in
                try expected.withUnsafeMutableBufferPointer { dst in
                    try resizeBilinear(src.baseAddress!, height: s, width: s, channels: 1, into: dst.baseAddress!,
                                       height: im.height, width: im.width)
                }
            }
            assertSameMap(direct.map!, expected, "image \(i)")
        }
    }

    // MARK: - Tiling

    func testTileStartsCoverOverlapAndEndFlush() throws {
        for (length, tile) in [(10, 10), (11, 10), (512, 64), (700, 256), (5, 1), (1000, 7), (257, 256)] {
            let st = Tiling.starts(length: length, tile: tile)
            XCTAssertEqual(st.first, 0)
            XCTAssertEqual(st.last, max(0, length - tile), "\(length), \(tile)")
            for (a, b) in zip(st, st.dropFirst()) {
                XCTAssertGreaterThan(b, a)
                XCTAssertLessThanOrEqual(b - a, tile - tile / 4, "overlap of at least a quarter tile: \(length), \(tile)")
            }
            // Fewest tiles with that overlap: one less would leave a gap wider than allowed.
            if st.count > 1 {
                XCTAssertGreaterThan(length - tile, (st.count - 2) * max(1, tile - tile / 4))
            }
        }
        // The auto rule: strips beyond aspect 2 and images over 4 model inputs.
        XCTAssertFalse(Tiling.tiles(height: 256, width: 512, size: 256, mode: .auto))
        XCTAssertTrue(Tiling.tiles(height: 256, width: 513, size: 256, mode: .auto))
        XCTAssertTrue(Tiling.tiles(height: 2048, width: 256, size: 256, mode: .auto))
        XCTAssertFalse(Tiling.tiles(height: 1024, width: 1024, size: 256, mode: .auto))
        XCTAssertTrue(Tiling.tiles(height: 1025, width: 1025, size: 256, mode: .auto))
        XCTAssertFalse(Tiling.tiles(height: 256, width: 4096, size: 256, mode: .off))
        XCTAssertTrue(Tiling.tiles(height: 10, width: 10, size: 256, mode: .on))
        // Regions: the whole image, or square tiles of min(short side, size) covering it.
        XCTAssertEqual(try Tiling.regions(height: 300, width: 400, size: 256, mode: .auto, name: "x"),
                       [Tiling.Rect(y: 0, x: 0, height: 300, width: 400)])
        let tiles = try Tiling.regions(height: 256, width: 2048, size: 256, mode: .auto, name: "x")
        XCTAssertEqual(tiles.count, Tiling.starts(length: 2048, tile: 256).count)
        XCTAssertTrue(tiles.allSatisfy { $0.y == 0 && $0.height == 256 && $0.width == 256 })
        let big = try Tiling.regions(height: 1100, width: 1300, size: 256, mode: .auto, name: "x")
        var covered = [Bool](repeating: false, count: 1100 * 1300)
        for r in big {
            XCTAssertEqual(r.height, 256); XCTAssertEqual(r.width, 256)
            for y in r.y..<(r.y + r.height) { for x in r.x..<(r.x + r.width) { covered[y * 1300 + x] = true } }
        }
        XCTAssertTrue(covered.allSatisfy { $0 })
        XCTAssertThrowsError(try Tiling.regions(height: 1, width: 30000, size: 256, mode: .auto, name: "image 7")) { e in
            XCTAssertTrue((e as! BGADError).message.contains("image 7"))
        }
    }

    func testTiledPredictIsItsTilesScoredAndStitched() throws {
        let d = try fitted()
        let s = d.configuration.imageSize
        for im in [DetectorTests.anomaly(40, 200, channels: 3, seed: 60).0, DetectorTests.normalImage(300, 290, channels: 1, seed: 61)] {
            let regions = try Tiling.regions(height: im.height, width: im.width, size: s, mode: .auto, name: "x")
            XCTAssertGreaterThan(regions.count, 1)
            let direct = try d.predict([im])[0]
            // Reference: every tile as an image of its own (square: taken whole), merged by maximum.
            var best = -Double.infinity
            var map = [Float](repeating: -.infinity, count: im.height * im.width)
            for r in regions {
                var tile = Image(height: r.height, width: r.width, channels: im.channels)
                for y in 0..<r.height {
                    for x in 0..<(r.width * im.channels) {
                        tile.pixels[y * r.width * im.channels + x] = im.pixels[((r.y + y) * im.width + r.x) * im.channels + x]
                    }
                }
                let p = try d.predict([tile])[0]
                best = max(best, p.score)
                for y in 0..<r.height {
                    for x in 0..<r.width {
                        let k = (r.y + y) * im.width + r.x + x
                        map[k] = max(map[k], p.map![y * r.width + x])
                    }
                }
            }
            XCTAssertEqual(direct.score, best)
            XCTAssertEqual(direct.isAnomalous, best > (try d.thresholds().image))
            assertSameMap(direct.map, map, "\(im.height)×\(im.width)")
        }
    }

    func testRowStoreHoldsTheTransposedFeaturesAndMaskLabels() throws {
        let (n, c, h, w) = (5, 3, 4, 6)
        var g = SeededRandom(seed: 9)
        let data = (0..<(n * c * h * w)).map { _ in Float(g.below(1000)) / 7 }
        var mask = [UInt8](repeating: 0, count: 16 * 24)
        for y in 4..<9 { for x in 10..<20 { mask[y * 24 + x] = 255 } }
        let store = RowStore(channels: c, height: h, width: w)
        try data.withUnsafeBufferPointer { p in
            let maps = FeatureMaps(data: p.baseAddress!, count: n, channels: c, height: h, width: w)
            for i in 0..<n - 1 { try store.append(maps, image: i, name: "image \(i)") }
            try mask.withUnsafeBufferPointer { m in
                try store.append(maps, image: n - 1, mask: m.baseAddress!, maskHeight: 16, maskWidth: 24, label: 1, name: "a")
            }
        }
        store.appendCopy(of: 1, label: 1)
        XCTAssertEqual(store.count, n + 1)
        var labels = [UInt8](repeating: 0, count: h * w)
        downsampleMaskNearest(mask, height: 16, width: 24, toHeight: h, toWidth: w, into: &labels)
        for img in 0..<(n + 1) {
            let src = img == n ? 1 : img
            let rows = store.image(img)
            for q in 0..<(h * w) {
                for ch in 0..<c { XCTAssertEqual(rows[q * c + ch], data[src * c * h * w + ch * h * w + q]) }
            }
        }
        XCTAssertTrue(labels.contains(1) && labels.contains(0))
        XCTAssertEqual(Array(store.labelsOfImage(n - 1)), labels)
        XCTAssertEqual(Array(store.labelsOfImage(n)), [UInt8](repeating: 1, count: h * w))
        XCTAssertEqual(Array(store.labelsOfImage(0)), [UInt8](repeating: 0, count: h * w))
        // A non-finite value is refused, naming the image, and nothing is stored.
        var bad = data
        bad[c * h * w + 5] = .nan
        try bad.withUnsafeBufferPointer { p in
            let maps = FeatureMaps(data: p.baseAddress!, count: n, channels: c, height: h, width: w)
            XCTAssertThrowsError(try store.append(maps, image: 1, name: "image 1")) { e in
                XCTAssertTrue((e as! BGADError).message.contains("image 1"))
            }
        }
        XCTAssertEqual(store.count, n + 1)
    }

    func testGrayEqualsReplicatedRGB() throws {
        let d = try fitted()
        let gray = DetectorTests.normalImage(70, 50, channels: 1, seed: 77)
        let a = try d.predict([gray, gray.rgb()])
        XCTAssertEqual(a[0].score, a[1].score)
        assertSameMap(a[0].map, a[1].map)
    }

    func testBorrowedViewsGiveTheSameNumbersAndCheckTheirInput() throws {
        let d = try fitted()
        let probes = self.probes
        let expected = try d.predict(probes)
        var scores = [Double](repeating: -1, count: probes.count)
        var decisions = [Int32](repeating: -1, count: probes.count)
        let mapBuffers = probes.map { UnsafeMutablePointer<Float>.allocate(capacity: $0.height * $0.width) }
        defer { mapBuffers.forEach { $0.deallocate() } }
        let pixels = probes.map { im -> UnsafeMutablePointer<UInt8> in
            let p = UnsafeMutablePointer<UInt8>.allocate(capacity: im.pixels.count)
            p.update(from: im.pixels, count: im.pixels.count)
            return p
        }
        defer { pixels.forEach { $0.deallocate() } }
        let views = zip(probes, pixels).map { ImageView(pixels: $1, height: $0.height, width: $0.width, channels: $0.channels) }
        var maps: [UnsafeMutablePointer<Float>?] = mapBuffers
        maps[1] = nil
        try d.predict(views, scores: &scores, decisions: &decisions, maps: maps)
        for i in 0..<probes.count {
            XCTAssertEqual(scores[i], expected[i].score)
            XCTAssertEqual(decisions[i], expected[i].isAnomalous ? 1 : 0)
            if i != 1 { assertSameMap(Array(UnsafeBufferPointer(start: mapBuffers[i], count: probes[i].pixels.count / probes[i].channels)), expected[i].map!) }
        }
        var bad = views
        bad[2].channels = 2
        assertBGADError(.invalidArgument, containing: "channels") { try d.predict(bad, scores: &scores, decisions: nil, maps: nil) }
        bad = views
        bad[0].height = 0
        assertBGADError(.invalidArgument, containing: "image 0") { try d.predict(bad, scores: &scores, decisions: nil, maps: nil) }
        assertBGADError(.invalidArgument, containing: "maps") { try d.predict(views, scores: &scores, decisions: nil, maps: [nil]) }
    }

    func testCalibrationFlagsNoTrainingNormalAndVariantsUseAnomaliesAsDocumented() throws {
        let d = try fitted()
        // beta = 0.01 and 10 training normals: the image threshold flags none of them.
        XCTAssertTrue(try d.predict(DetectorTests.normals, maps: false).allSatisfy { !$0.isAnomalous })
        // nfad ignores anomalies: with or without them, the same model.
        let withA = try Detector(json: DetectorTests.settingsWithWeights(#", "variant": "nfad""#))
        try withA.fit(normal: DetectorTests.normals, anomalous: DetectorTests.anomalies.map { $0.0 })
        let without = try Detector(json: DetectorTests.settingsWithWeights(#", "variant": "nfad""#))
        try without.fit(normal: DetectorTests.normals)
        let p = probes
        XCTAssertEqual(try withA.predict(p).map { $0.score }, try without.predict(p).map { $0.score })
        // bgad trains on them: another model.
        XCTAssertNotEqual(try d.predict(p).map { $0.score }, try without.predict(p).map { $0.score })
        // Same settings, same data: the same detector (fit is deterministic).
        let again = try Detector(json: DetectorTests.settingsWithWeights())
        try again.fit(normal: DetectorTests.normals, anomalous: DetectorTests.anomalies.map { $0.0 }, masks: DetectorTests.anomalies.map { $0.1 })
        XCTAssertEqual(try again.predict(p).map { $0.score }, try d.predict(p).map { $0.score })
        XCTAssertEqual(try again.encoded(), try d.encoded())
    }

    func testCancellationKeepsThePreviousState() throws {
        let d = try Detector(json: DetectorTests.settingsWithWeights())
        var calls = 0
        assertBGADError(.cancelled) {
            try d.fit(normal: DetectorTests.normals, progress: { p in
                calls += 1
                XCTAssertEqual(p.step, calls)
                return calls < 3
            })
        }
        XCTAssertEqual(calls, 3)
        XCTAssertFalse(d.isFitted)
    }

    func testConcurrentPredictionsAgree() throws {
        let d = try fitted()
        let p = probes
        let expected = try d.predict(p).map { $0.score }
        var results = [[Double]](repeating: [], count: 6)
        let lock = NSLock()
        DispatchQueue.concurrentPerform(iterations: 6) { k in
            let r = (try? d.predict(k % 2 == 0 ? p : p.reversed()).map { $0.score }) ?? []
            lock.lock(); results[k] = k % 2 == 0 ? r : r.reversed(); lock.unlock()
        }
        for r in results { XCTAssertEqual(r, expected) }
    }

    // MARK: - File format

    func testSaveLoadAndBytesRoundTripGiveIdenticalNumbers() throws {
        let d = try fitted()
        let bytes = try d.encoded()
        let dir = NSTemporaryDirectory() + "bgad-detector-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/det.bgad"
        try d.save(to: path)
        XCTAssertEqual([UInt8](try Data(contentsOf: URL(fileURLWithPath: path))), bytes)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["det.bgad"])  // no temporary file left
        let fromFile = try Detector.load(from: path), fromBytes = try Detector.decode(bytes)
        let p = probes
        let expected = try d.predict(p)
        for other in [fromFile, fromBytes] {
            XCTAssertTrue(other.isFitted)
            XCTAssertEqual(other.configuration.weights, "")  // the path is not stored: the weights are
            var c = other.configuration
            c.weights = d.configuration.weights
            XCTAssertEqual(c, d.configuration)
            XCTAssertEqual(try other.thresholds().image, try d.thresholds().image)
            XCTAssertEqual(try other.thresholds().pixel, try d.thresholds().pixel)
            let got = try other.predict(p)
            XCTAssertEqual(got.map { $0.score }, expected.map { $0.score })
            for (g, e) in zip(got, expected) { assertSameMap(g.map, e.map) }
            XCTAssertEqual(try other.encoded(), bytes)
        }
        // A loaded detector refits with its embedded backbone (no weight path needed).
        try fromBytes.fit(normal: DetectorTests.normals, anomalous: DetectorTests.anomalies.map { $0.0 },
                          masks: DetectorTests.anomalies.map { $0.1 })
        XCTAssertEqual(try fromBytes.predict(p).map { $0.score }, expected.map { $0.score })
        assertBGADError(.io, containing: "/nonexistent-dir/") { try d.save(to: "/nonexistent-dir/x.bgad") }
        assertBGADError(.io, containing: "missing.bgad") { _ = try Detector.load(from: dir + "/missing.bgad") }
    }

    /// Little-endian bytes of a header + body + CRC, for hand-made files.
    func file(version: UInt32, body: [UInt8], declaredLength: UInt64? = nil) -> [UInt8] {
        var b = Array("BGADDET\0".utf8)
        b += le(version) + le(UInt32(0)) + le(declaredLength ?? UInt64(body.count)) + body
        return b + le(b.withUnsafeBufferPointer { crc32($0) })
    }

    func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { (0..<(T.bitWidth / 8)).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }

    func testCorruptTruncatedAndForeignFilesAreErrors() throws {
        let bytes = try fitted().encoded()
        for n in [0, 1, 7, 8, 12, 27, 28, 100, 4096, bytes.count / 2, bytes.count - 5, bytes.count - 1] {
            assertBGADError(.format) { _ = try Detector.decode(Array(bytes.prefix(n))) }
        }
        assertBGADError(.format, containing: "unexpected") { _ = try Detector.decode(bytes + [0]) }
        var g = SeededRandom(seed: 9)
        for _ in 0..<24 {
            var flipped = bytes
            let i = g.below(bytes.count)
            flipped[i] ^= UInt8(1 << g.below(8))
            assertBGADError(.format) { _ = try Detector.decode(flipped) }
        }
        var foreign = bytes
        foreign[0] = UInt8(ascii: "X")
        assertBGADError(.format, containing: "not a bgad detector file") { _ = try Detector.decode(foreign) }
        // The Python package's format version 1 is refused by name.
        assertBGADError(.format, containing: "format version 1") { _ = try Detector.decode(self.file(version: 1, body: [1, 2, 3])) }
        assertBGADError(.format, containing: "newer") { _ = try Detector.decode(self.file(version: 3, body: [])) }
        assertBGADError(.format, containing: "truncated") { _ = try Detector.decode(self.file(version: 2, body: [], declaredLength: 1 << 62)) }
    }

    func testHostileLengthsAreRefusedBeforeAllocating() {
        let config = Array(#"{"image_size": 64}"#.utf8)
        let name = Array("lite0".utf8)
        var body = le(UInt32(config.count)) + config + [1] + le(UInt32(name.count)) + name + le(UInt32(0))
        // A 100-byte file claiming 2^62 bytes of weights (with a valid checksum).
        assertBGADError(.format, containing: "backbone weights") { _ = try Detector.decode(self.file(version: 2, body: body + self.le(UInt64(1) << 62))) }
        // Weights that are not a weight file.
        body += le(UInt64(4)) + [1, 2, 3, 4] + le(UInt64(0))
        assertBGADError(.format, containing: "embedded weights") { _ = try Detector.decode(self.file(version: 2, body: body)) }
        // A configuration length over the limit; a configuration that is not valid.
        assertBGADError(.format, containing: "configuration length") { _ = try Detector.decode(self.file(version: 2, body: self.le(UInt32(1 << 30)))) }
        let badConfig = Array(#"{"image_size": 8}"#.utf8)
        assertBGADError(.format, containing: "image_size") {
            _ = try Detector.decode(self.file(version: 2, body: self.le(UInt32(badConfig.count)) + badConfig + [0]))
        }
        assertBGADError(.format, containing: "flag") { _ = try Detector.decode(self.file(version: 2, body: self.le(UInt32(config.count)) + config + [7])) }
        // A well-formed unfitted file loads.
        XCTAssertNoThrow(try Detector.decode(file(version: 2, body: le(UInt32(config.count)) + config + [0])))
    }
}

// MARK: - The C ABI (bgad_detector_*), called as a C program would

import BGAD

/// `bgad_image` of `bgad.h`: a pointer and three int64.
private struct CImage {
    var pixels: UnsafePointer<UInt8>?
    var height: Int64
    var width: Int64
    var channels: Int64
}

/// Counts progress calls in `user_data` and cancels at the third.
private let cancelAtThree: BGADProgressCallback = { _, _, _, user in
    let counter = user!.assumingMemoryBound(to: Int.self)
    counter.pointee += 1
    return counter.pointee >= 3 ? 1 : 0
}

final class DetectorABITests: XCTestCase {
    var lastError: String { String(cString: bgad_last_error()!) }

    /// Runs `body` with C image descriptors over `images` (pixels borrowed for the call).
    private func withCImages<R>(_ images: [Image], _ body: ([CImage]) throws -> R) rethrows -> R {
        let copies = images.map { im -> UnsafeMutablePointer<UInt8> in
            let p = UnsafeMutablePointer<UInt8>.allocate(capacity: max(1, im.pixels.count))
            p.update(from: im.pixels, count: im.pixels.count)
            return p
        }
        defer { copies.forEach { $0.deallocate() } }
        let descriptors = zip(images, copies).map { im, p in
            CImage(pixels: p, height: Int64(im.height), width: Int64(im.width), channels: Int64(im.channels))
        }
        return try body(descriptors)
    }

    private func create(_ json: String) -> OpaquePointer? {
        var h: OpaquePointer? = nil
        XCTAssertEqual(json.withCString { bgad_detector_create($0, &h) }, 0, lastError)
        return h
    }

    private func fit(_ h: OpaquePointer?, _ normal: [CImage], _ anomalous: [CImage] = [], masks: [CImage]? = nil,
                     progress: BGADProgressCallback? = nil, user: UnsafeMutableRawPointer? = nil) -> Int32 {
        normal.withUnsafeBytes { n in
            anomalous.withUnsafeBytes { a in
                if let masks {
                    return masks.withUnsafeBytes { m in
                        bgad_detector_fit(h, n.baseAddress, Int64(normal.count), a.baseAddress, m.baseAddress, Int64(anomalous.count), progress, user)
                    }
                }
                return bgad_detector_fit(h, n.baseAddress, Int64(normal.count), a.baseAddress, nil, Int64(anomalous.count), progress, user)
            }
        }
    }

    func testCreateConfigAndFreeFollowTheConventions() throws {
        var h: OpaquePointer? = nil
        XCTAssertEqual(bgad_detector_create(nil, &h), 0)
        defer { _ = bgad_detector_free(h) }
        XCTAssertEqual(bgad_detector_free(nil), 0)
        var failed: OpaquePointer? = h
        XCTAssertEqual(#"{"image_size": 16}"#.withCString { bgad_detector_create($0, &failed) }, 1)
        XCTAssertTrue(lastError.contains("image_size"), lastError)
        XCTAssertNil(failed)  // a failed create writes NULL
        XCTAssertEqual(#"{"imagesize": 64"#.withCString { bgad_detector_create($0, nil) }, 1)
        var needed: Int64 = 0
        XCTAssertEqual(bgad_detector_config(h, nil, 0, &needed), 1)  // too small: the size is still reported
        XCTAssertGreaterThan(needed, 2)
        var buffer = [CChar](repeating: 0, count: Int(needed))
        XCTAssertEqual(bgad_detector_config(h, &buffer, needed, &needed), 0)
        let json = String(cString: buffer)
        XCTAssertEqual(try DetectorConfiguration(json: json), DetectorConfiguration())
        XCTAssertEqual(Int64(json.utf8.count + 1), needed)
        var fitted: Int32 = -1
        XCTAssertEqual(bgad_detector_is_fitted(h, &fitted), 0)
        XCTAssertEqual(fitted, 0)
        XCTAssertEqual(bgad_detector_is_fitted(nil, &fitted), 1)
        XCTAssertTrue(lastError.contains("NULL"), lastError)
        var score = 0.0, t1 = 0.0, t2 = 0.0
        XCTAssertEqual(bgad_detector_predict(h, nil, 0, &score, nil, nil), 1)
        XCTAssertTrue(lastError.contains("not fitted"), lastError)
        XCTAssertEqual(bgad_detector_thresholds(h, &t1, &t2), 1)
        var height: Int64 = 0, width: Int64 = 0
        XCTAssertEqual("/nonexistent.png".withCString { bgad_detector_predict_path(h, $0, &score, nil, nil, 0, &height, &width) }, 1)
        XCTAssertTrue(lastError.contains("not fitted"), lastError)
    }

    func testFitValidatesAtTheEdge() throws {
        let weights = try engineWeightFile()
        let h = create(String(DetectorTests.settings.dropLast()) + #", "weights": "\#(weights)"}"#)
        defer { _ = bgad_detector_free(h) }
        try withCImages(Array(DetectorTests.normals.prefix(4))) { normal in
            XCTAssertEqual(bgad_detector_fit(h, nil, 4, nil, nil, 0, nil, nil), 1)
            XCTAssertTrue(lastError.contains("normal is NULL"), lastError)
            XCTAssertEqual(fit(h, []), 1)
            XCTAssertTrue(lastError.contains("n_normal"), lastError)
            var bad = normal
            bad[1].channels = 2
            XCTAssertEqual(fit(h, bad), 1)
            XCTAssertTrue(lastError.contains("normal[1]") && lastError.contains("channels"), lastError)
            bad = normal
            bad[2].height = 1 << 40  // would overflow height × width × channels
            XCTAssertEqual(fit(h, bad), 1)
            XCTAssertTrue(lastError.contains("normal[2]"), lastError)
            bad = normal
            bad[0].width = -3
            XCTAssertEqual(fit(h, bad), 1)
            bad = normal
            bad[3].pixels = nil
            XCTAssertEqual(fit(h, bad), 1)
            XCTAssertTrue(lastError.contains("normal[3]: pixels is NULL"), lastError)
            let (a, m) = DetectorTests.anomalies[0]
            try withCImages([a, m]) { am in
                var mask = am[1]
                mask.height -= 1
                XCTAssertEqual(fit(h, normal, [am[0]], masks: [mask]), 1)
                XCTAssertTrue(lastError.contains("masks[0]"), lastError)
                XCTAssertEqual(fit(h, normal, [am[0]], masks: [am[0]]), 1)  // 3 channels
                XCTAssertTrue(lastError.contains("channels must be 1"), lastError)
                XCTAssertEqual(bgad_detector_fit(h, normal, 4, nil, nil, 1, nil, nil), 1)
                XCTAssertTrue(lastError.contains("anomalous is NULL"), lastError)
                var counter = 0
                XCTAssertEqual(fit(h, normal, [am[0]], masks: [am[1]], progress: cancelAtThree, user: &counter), 4)
                XCTAssertEqual(counter, 3)
                var fitted: Int32 = -1
                XCTAssertEqual(bgad_detector_is_fitted(h, &fitted), 0)
                XCTAssertEqual(fitted, 0)
                // A NULL mask entry = the whole image; then the fit succeeds.
                let whole = CImage(pixels: nil, height: 0, width: 0, channels: 0)
                XCTAssertEqual(fit(h, normal, [am[0]], masks: [whole]), 0, lastError)
                XCTAssertEqual(bgad_detector_is_fitted(h, &fitted), 0)
                XCTAssertEqual(fitted, 1)
            }
        }
        let missing = create(#"{"image_size": 64, "weights": "/nonexistent/w.bgadw"}"#)
        defer { _ = bgad_detector_free(missing) }
        try withCImages([DetectorTests.normals[0]]) { normal in
            XCTAssertEqual(fit(missing, normal), 2)
            XCTAssertTrue(lastError.contains("/nonexistent/w.bgadw"), lastError)
        }
    }

    func testFitFromPathsEqualsFitFromDecodedImages() throws {
        let weights = try engineWeightFile()
        let settings = String(DetectorTests.settings.dropLast()) + #", "weights": "\#(weights)"}"#
        let dir = NSTemporaryDirectory() + "bgad-abi-paths-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let normals = Array(DetectorTests.normals.prefix(6))
        let (a, m) = DetectorTests.anomalies[2]
        var normalPaths: [String] = []
        for (i, im) in normals.enumerated() {
            normalPaths.append(dir + "/n\(i).png")
            try PNG.write(im, path: normalPaths[i])
        }
        // A colour mask file: a pixel is a defect where any channel is non-zero.
        var colourMask = Image(height: m.height, width: m.width, channels: 3)
        for p in 0..<(m.height * m.width) where m.pixels[p] != 0 { colourMask.pixels[3 * p + 2] = 1 }
        try PNG.write(a, path: dir + "/a.png")
        try PNG.write(colourMask, path: dir + "/a_mask.png")

        let fromPaths = create(settings)
        defer { _ = bgad_detector_free(fromPaths) }
        let cPaths = (normalPaths + [dir + "/a.png", dir + "/a_mask.png"]).map { strdup($0) }
        defer { cPaths.forEach { free($0) } }
        let pointers = cPaths.map { UnsafePointer<CChar>($0) }
        let status = pointers.withUnsafeBufferPointer { p in
            bgad_detector_fit_paths(fromPaths, p.baseAddress, Int64(normals.count), p.baseAddress! + normals.count,
                                    p.baseAddress! + normals.count + 1, 1, nil, nil)
        }
        XCTAssertEqual(status, 0, lastError)
        let fromImages = try Detector(json: settings)
        try fromImages.fit(normal: normals, anomalous: [a], masks: [m])
        var needed: Int64 = 0
        _ = bgad_detector_to_bytes(fromPaths, nil, 0, &needed)
        var bytes = [UInt8](repeating: 0, count: Int(needed))
        XCTAssertEqual(bgad_detector_to_bytes(fromPaths, &bytes, needed, &needed), 0)
        XCTAssertEqual(bytes, try fromImages.encoded())  // same images, same mask, same detector
        // A missing file is named.
        var missing = pointers
        missing[1] = UnsafePointer(strdup(dir + "/none.png"))
        defer { free(UnsafeMutablePointer(mutating: missing[1])) }
        XCTAssertEqual(missing.withUnsafeBufferPointer { bgad_detector_fit_paths(fromPaths, $0.baseAddress, 2, nil, nil, 0, nil, nil) }, 2)
        XCTAssertTrue(lastError.contains("none.png"), lastError)
    }

    func testPredictBytesAndFilesThroughTheABI() throws {
        let weights = try engineWeightFile()
        let h = create(String(DetectorTests.settings.dropLast()) + #", "weights": "\#(weights)"}"#)
        defer { _ = bgad_detector_free(h) }
        let probes = [DetectorTests.normalImage(40, 90, channels: 3, seed: 7), DetectorTests.anomaly(64, 64, channels: 1, seed: 8).0]
        try withCImages(DetectorTests.normals) { normal in
            let (a, m) = DetectorTests.anomalies[1]
            try withCImages([a, m]) { am in XCTAssertEqual(fit(h, normal, [am[0]], masks: [am[1]]), 0, lastError) }
        }
        // The Swift API on the same state gives the reference numbers.
        var bytesNeeded: Int64 = 0
        XCTAssertEqual(bgad_detector_to_bytes(h, nil, 0, &bytesNeeded), 1)
        var bytes = [UInt8](repeating: 0, count: Int(bytesNeeded))
        XCTAssertEqual(bgad_detector_to_bytes(h, &bytes, bytesNeeded, &bytesNeeded), 0)
        let reference = try Detector.decode(bytes).predict(probes)
        try withCImages(probes) { images in
            var scores = [Double](repeating: 0, count: 2), decisions = [Int32](repeating: -1, count: 2)
            let map0 = UnsafeMutablePointer<Float>.allocate(capacity: 40 * 90)
            defer { map0.deallocate() }
            var maps: [UnsafeMutablePointer<Float>?] = [map0, nil]
            XCTAssertEqual(images.withUnsafeBytes { bgad_detector_predict(h, $0.baseAddress, 2, &scores, &decisions, &maps) }, 0, lastError)
            XCTAssertEqual(scores, reference.map { $0.score })
            XCTAssertEqual(decisions, reference.map { $0.isAnomalous ? 1 : 0 })
            XCTAssertEqual(Array(UnsafeBufferPointer(start: map0, count: 40 * 90)), reference[0].map!)
            XCTAssertEqual(images.withUnsafeBytes { bgad_detector_predict(h, $0.baseAddress, 2, &scores, nil, nil) }, 0)
            XCTAssertEqual(images.withUnsafeBytes { bgad_detector_predict(h, $0.baseAddress, 2, nil, nil, nil) }, 1)
            XCTAssertEqual(bgad_detector_predict(h, nil, 2, &scores, nil, nil), 1)
            XCTAssertEqual(bgad_detector_predict(h, nil, -1, &scores, nil, nil), 1)
        }
        // From bytes: the same numbers; bad buffers are errors.
        var other: OpaquePointer? = nil
        XCTAssertEqual(bgad_detector_from_bytes(bytes, Int64(bytes.count), &other), 0, lastError)
        XCTAssertEqual(bgad_detector_free(other), 0)
        XCTAssertEqual(bgad_detector_from_bytes(bytes, Int64(bytes.count - 1), &other), 3)
        XCTAssertEqual(bgad_detector_from_bytes(nil, 10, &other), 1)
        XCTAssertEqual(bgad_detector_from_bytes(bytes, -1, &other), 1)
        // Files: save, load, predict a PNG; a too-small map reports the size needed.
        let dir = NSTemporaryDirectory() + "bgad-abi-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + "/d.bgad", png = dir + "/p.png"
        try PNG.write(probes[0], path: png)
        XCTAssertEqual(file.withCString { bgad_detector_save(h, $0) }, 0, lastError)
        XCTAssertEqual(file.withCString { bgad_detector_load($0, &other) }, 0, lastError)
        defer { _ = bgad_detector_free(other) }
        var score = 0.0, decision: Int32 = -1, height: Int64 = 0, width: Int64 = 0
        var small = [Float](repeating: 0, count: 10)
        XCTAssertEqual(png.withCString { bgad_detector_predict_path(other, $0, &score, &decision, &small, 10, &height, &width) }, 1)
        XCTAssertEqual([height, width], [40, 90])
        var map = [Float](repeating: 0, count: 40 * 90)
        XCTAssertEqual(png.withCString { bgad_detector_predict_path(other, $0, &score, &decision, &map, 3600, &height, &width) }, 0, lastError)
        XCTAssertEqual(score, reference[0].score)
        XCTAssertEqual(decision, reference[0].isAnomalous ? 1 : 0)
        XCTAssertEqual(map, reference[0].map!)
        var t = (image: 0.0, pixel: 0.0)
        XCTAssertEqual(bgad_detector_thresholds(other, &t.image, &t.pixel), 0)
        XCTAssertEqual(t.image, try Detector.decode(bytes).thresholds().image)
        XCTAssertEqual((dir + "/missing.bgad").withCString { bgad_detector_load($0, &other) }, 2)
        XCTAssertEqual((dir + "/missing.png").withCString { bgad_detector_predict_path(h, $0, &score, nil, nil, 0, &height, &width) }, 2)
        XCTAssertEqual(png.withCString { bgad_detector_load($0, &other) }, 3)
        XCTAssertTrue(lastError.contains("not a bgad detector file"), lastError)
    }
}
