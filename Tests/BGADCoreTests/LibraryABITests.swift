import XCTest
import BGAD
import BGADCore

/// Library-level C entry points at the edges of their ranges: never a silent overflow or an
/// unbounded thread count.
final class LibraryABITests: XCTestCase {
    func testThreadCountIsBounded() {
        let saved = bgad_get_num_threads()
        defer { _ = bgad_set_num_threads(saved) }
        XCTAssertEqual(bgad_set_num_threads(0), 1)
        XCTAssertEqual(bgad_set_num_threads(65), 1)
        XCTAssertTrue(String(cString: bgad_last_error()!).contains("1...64"))
        XCTAssertEqual(bgad_set_num_threads(Int32.max), 1)
        XCTAssertEqual(bgad_set_num_threads(64), 0)
        XCTAssertEqual(bgad_get_num_threads(), 64)
    }

    func testFeatureShapeOfHugeInputsIsAnErrorNotANegativeSize() {
        var c: Int64 = 0, h: Int64 = 0, w: Int64 = 0
        XCTAssertEqual(bgad_backbone_feature_shape(Int64.max, Int64.max, 8, &c, &h, &w), 1)
        XCTAssertEqual(bgad_backbone_feature_shape(1 << 31, 16, 8, &c, &h, &w), 1)
        XCTAssertEqual(bgad_backbone_feature_shape(256, 300, 8, &c, &h, &w), 0)
        XCTAssertEqual([c, h, w], [40, 32, 38])
    }
}
