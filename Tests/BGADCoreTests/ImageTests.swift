import XCTest
import BGADCore

/// PNG encode/decode in memory, errors, and the gray conversion.
final class ImageTests: XCTestCase {
    func testEncodeDecodeRoundTripIsBitExactForGrayAndRGB() throws {
        var state: UInt64 = 1
        for (h, w, c) in [(1, 1, 1), (7, 13, 1), (5, 9, 3), (64, 33, 3)] {
            var px = [UInt8](repeating: 0, count: h * w * c)
            for i in 0..<px.count { state = state &* 6364136223846793005 &+ 1442695040888963407; px[i] = UInt8(truncatingIfNeeded: state >> 56) }
            let image = try Image(height: h, width: w, channels: c, pixels: px)
            for level in [0, 6, 9] {
                let bytes = try PNG.encode(image, compressionLevel: level)
                XCTAssertEqual(Array(bytes.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
                let back = try bytes.withUnsafeBufferPointer { (b) throws(BGADError) in try PNG.decode(b) }
                XCTAssertEqual(back, image)
            }
        }
    }

    func testGrayDecodingOfRGBUsesPillowLuma() throws {
        // (R, G, B) → (19595 R + 38470 G + 7471 B + 32768) >> 16, worked by hand:
        // (255, 0, 0) → 76, (0, 255, 0) → 150, (0, 0, 255) → 29, (10, 20, 30) → 18.
        let image = try Image(height: 1, width: 4, channels: 3, pixels: [255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30])
        let bytes = try PNG.encode(image)
        let gray = try bytes.withUnsafeBufferPointer { (b) throws(BGADError) in try PNG.decode(b, mode: .gray) }
        XCTAssertEqual(gray.pixels, [76, 150, 29, 18])
        XCTAssertEqual(image.grayscale().pixels, [76, 150, 29, 18])
        let rgb = try PNG.encode(gray).withUnsafeBufferPointer { (b) throws(BGADError) in try PNG.decode(b, mode: .rgb) }
        XCTAssertEqual(rgb.pixels, [76, 76, 76, 150, 150, 150, 29, 29, 29, 18, 18, 18])
    }

    func testTruncatedAndForeignDataGiveFormatErrors() throws {
        let image = Image(height: 20, width: 20, channels: 3, fill: 99)
        let bytes = try PNG.encode(image)
        for n in [0, 5, 8, 20, 33, 40, bytes.count - 13, bytes.count - 1] {
            let prefix = Array(bytes.prefix(n))
            XCTAssertThrowsError(try prefix.withUnsafeBufferPointer { (b) throws(BGADError) in try PNG.decode(b) }) { error in
                XCTAssertEqual((error as? BGADError)?.kind, .format, "prefix \(n)")
            }
        }
        let text = Array("definitely not a PNG file".utf8)
        XCTAssertThrowsError(try text.withUnsafeBufferPointer { (b) throws(BGADError) in try PNG.decode(b) }) { error in
            XCTAssertEqual((error as? BGADError)?.kind, .format)
        }
    }

    func testMissingFileIsAnIOError() {
        XCTAssertThrowsError(try PNG.read(path: "/nonexistent/dir/x.png")) { error in
            XCTAssertEqual((error as? BGADError)?.kind, .io)
        }
    }

    func testAtomicWriteThenRead() throws {
        let path = "/tmp/bgad-image-test-\(getpid()).png"
        let image = try Image(height: 2, width: 3, channels: 1, pixels: [0, 1, 2, 253, 254, 255])
        try PNG.write(image, path: path)
        XCTAssertEqual(try PNG.read(path: path), image)
        unlink(path)
    }

    func testFloatViewRoundTrip() throws {
        let image = try Image(height: 1, width: 3, channels: 1, pixels: [0, 128, 255])
        XCTAssertEqual(image.floatPixels(), [0, 128 / 255, 1])
        XCTAssertEqual(try Image(height: 1, width: 3, channels: 1, floatPixels: image.floatPixels()), image)
    }
}
