import XCTest
import BGADCore

/// `Detector.exportedTensors`: the fitted detector's numbers for the ONNX exporter are the
/// engine's own — the weight file's tensors, the positional condition, the calibration, the
/// flows' parameters — with consistent names and shapes. (The graph built from them is
/// checked against `predict` in python/tests/test_onnx.py.)
final class DetectorTensorsTests: XCTestCase {
    func testUnfittedDetectorHasNoTensors() throws {
        let d = try Detector(json: DetectorTests.settings)
        XCTAssertThrowsError(try d.exportedTensors()) { e in
            XCTAssertTrue((e as? BGADError)?.message.contains("not fitted") ?? false, "\(e)")
        }
    }

    func testTensorsAreTheEnginesNumbers() throws {
        let weights = try engineWeightFile()
        let d = try Detector(json: DetectorTests.settingsWithWeights())
        try d.fit(normal: DetectorTests.normals, anomalous: DetectorTests.anomalies.map { $0.0 },
                  masks: DetectorTests.anomalies.map { $0.1 })
        let list = try d.exportedTensors()
        var byName: [String: (shape: [Int], values: [Float])] = [:]
        for t in list {
            let v = try t.values()
            XCTAssertEqual(v.count, t.shape.reduce(1, *), t.name)
            XCTAssertNil(byName[t.name], "\(t.name) listed twice")
            byName[t.name] = (t.shape, v)
        }
        // The backbone: the weight file's tensors in file order, under their names.
        let file = try EfficientNetLiteWeightFile.read(path: weights)
        XCTAssertEqual(byName["backbone.stem.weight"]?.values, file.tensors[0])
        XCTAssertEqual(byName["backbone.stem.bias"]?.values, file.tensors[1])
        let b0 = EfficientNetLite.Variant.lite0.blocks[0]  // no expansion: depthwise first
        XCTAssertEqual(b0.expansion, 1)
        XCTAssertNil(byName["backbone.blocks.0.expand.weight"])
        XCTAssertEqual(byName["backbone.blocks.0.depthwise.weight"]?.values, file.tensors[2])
        XCTAssertEqual(byName["backbone.blocks.1.expand.weight"]?.values, file.tensors[6])
        XCTAssertEqual(byName["backbone.blocks.1.stride"]?.values, [2])
        // Levels 8 and 16 of a 64² model: grids 8×8 and 4×4 and Lite0's blocks 4 and 10.
        XCTAssertEqual(byName["config.strides"]?.values, [8, 16])
        XCTAssertEqual(byName["backbone.level_blocks"]?.values, [4, 10])
        for (l, g) in [(0, 8), (1, 4)] {
            XCTAssertEqual(byName["levels.\(l).grid"]?.values, [Float(g), Float(g)])
            XCTAssertEqual(byName["levels.\(l).condition"]?.values, positionalEncoding(height: g, width: g, dim: 128))
            XCTAssertEqual(byName["levels.\(l).map.rows.lower"]?.values.count, 64)
            XCTAssertEqual(byName["levels.\(l).map.cols.upper"]?.values.last, Float(g - 1))
        }
        // Two blocks per flow (settings), each with its seven FrEIA tensors and the folded affine.
        XCTAssertNotNil(byName["levels.1.flow.module_list.1.w_perm"])
        XCTAssertNil(byName["levels.1.flow.module_list.2.w_perm"])
        XCTAssertEqual(byName["levels.0.flow.module_list.0.affine.matrix"]?.shape, [40, 40])
        XCTAssertEqual(byName["levels.1.flow.module_list.0.subnet.0.weight"]?.shape, [2 * (56 + 128), 56 + 128])
        // The calibration and thresholds.
        let cal = try d.calibration()
        XCTAssertEqual(byName["calibration.references"]?.values, cal.references)
        XCTAssertEqual(byName["calibration.max_normality"]?.values, [cal.maxNormality])
        XCTAssertEqual(byName["calibration.image_threshold"]?.values, [Float(cal.imageThreshold)])
        XCTAssertEqual(byName["calibration.pixel_threshold"]?.values, [cal.pixelThreshold])
        XCTAssertEqual(byName["preprocess.offset"]?.values, [127])
        XCTAssertEqual(byName["preprocess.scale"]?.values, [128])
    }
}
