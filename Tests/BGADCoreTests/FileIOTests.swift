import XCTest
@testable import BGADCore
#if canImport(Glibc)
import Glibc
#endif

/// The engine's one file reader and atomic writer: special files and oversized files are
/// refused before anything is allocated, paths with NUL are refused, concurrent writers of one
/// path never share a temporary file.
final class FileIOTests: XCTestCase {
    private func kind(_ body: () throws -> Void) -> BGADError.Kind? {
        do { try body(); return nil } catch { return (error as? BGADError)?.kind }
    }

    func testSpecialFilesAreRefusedWithoutReadingThem() throws {
        // /dev/zero would never end; a directory and a FIFO are not files to read.
        XCTAssertEqual(kind { _ = try readFile("/dev/zero") }, .io)
        XCTAssertEqual(kind { _ = try readFile("/tmp") }, .io)
        let fifo = "/tmp/bgad-fifo-\(getpid())"
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        defer { unlink(fifo) }
        XCTAssertEqual(kind { _ = try readFile(fifo) }, .io)  // returns at once: no writer is awaited
        XCTAssertEqual(kind { _ = try ModelFile.load(from: "/dev/zero") }, .io)
        XCTAssertEqual(kind { _ = try readFile("/nonexistent/file") }, .io)
    }

    func testFilesOverTheLimitAreRefusedBeforeTheyAreRead() throws {
        let path = "/tmp/bgad-big-\(getpid())"
        try writeFileAtomically(path, [UInt8](repeating: 7, count: 1000))
        defer { unlink(path) }
        XCTAssertEqual(try readFile(path, limit: 1000).count, 1000)
        do { _ = try readFile(path, limit: 999); XCTFail("no error") } catch {
            XCTAssertEqual(error.kind, .io)
            XCTAssertTrue(error.message.contains("1000 bytes"), error.message)
        }
    }

    func testPathsWithNULAreRefused() {
        let stem = "/tmp/bgad-nul-\(getpid())-a.png"
        unlink(stem)
        XCTAssertEqual(kind { try writeFileAtomically(stem + "\u{0}.x", [1, 2]) }, .invalidArgument)
        XCTAssertEqual(kind { _ = try readFile(stem + "\u{0}b") }, .invalidArgument)
        XCTAssertEqual(kind { _ = try readFile("") }, .invalidArgument)
        XCTAssertFalse(FileManagerFree.exists(stem), "nothing is written under the cut-off name")
    }

    func testConcurrentWritersOfOnePathAllSucceedAndLeaveAWholeFile() throws {
        let path = "/tmp/bgad-concurrent-\(getpid())"
        defer { unlink(path) }
        let payloads = (0..<8).map { k in [UInt8](repeating: UInt8(k), count: 50_000 + k) }
        var failures = [String](repeating: "", count: 8)
        DispatchQueue.concurrentPerform(iterations: 8) { k in
            for _ in 0..<20 {
                do { try writeFileAtomically(path, payloads[k]) } catch { failures[k] = "\(error)" }
            }
        }
        XCTAssertEqual(failures, [String](repeating: "", count: 8))
        let back = try readFile(path)
        XCTAssertTrue(payloads.contains(back), "the file is one writer's whole payload")
        // no temporary file is left behind
        let dir = try XCTUnwrap(opendir("/tmp"))
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            let name = String(decoding: directoryEntryName(entry), as: UTF8.self)
            XCTAssertFalse(name.hasPrefix("bgad-concurrent-\(getpid()).tmp-"), name)
        }
    }
}

/// `access(2)` without Foundation.
private enum FileManagerFree {
    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }
}

/// The byte writer and reader every file format uses, and the one finite-value scan.
final class BytesAndValidationTests: XCTestCase {
    func testWriterLaysOutLittleEndianFieldsAndTheReaderReadsThemBack() throws {
        var w = ByteWriter()
        w.u8(0xAB); w.u32(0x0102_0304); w.u64(0x1122_3344_5566_7788); w.f32(1.5); w.f64(-2.25)
        w.string("é"); w.floats([1, -0.0, .infinity])
        // IEEE 754: 1.5f = 0x3FC00000, −2.25 = 0xC002000000000000, −0.0f = 0x80000000, +inf = 0x7F800000
        XCTAssertEqual(w.bytes, [0xAB, 4, 3, 2, 1, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11,
                                 0, 0, 0xC0, 0x3F, 0, 0, 0, 0, 0, 0, 0x02, 0xC0,
                                 2, 0, 0, 0, 0xC3, 0xA9,
                                 0, 0, 0x80, 0x3F, 0, 0, 0, 0x80, 0, 0, 0x80, 0x7F])
        var r = ByteReader(bytes: w.bytes, position: 0, context: "test file")
        XCTAssertEqual(try r.u8(), 0xAB)
        XCTAssertEqual(try r.u32(), 0x0102_0304)
        XCTAssertEqual(try r.u64(), 0x1122_3344_5566_7788)
        XCTAssertEqual(try r.f32(), 1.5)
        XCTAssertEqual(try r.f64(), -2.25)
        XCTAssertEqual(try r.string(), "é")
        let f = try r.floats(3)
        XCTAssertEqual(f.map { $0.bitPattern }, [Float(1).bitPattern, (-Float(0)).bitPattern, Float.infinity.bitPattern])
        XCTAssertEqual(r.position, w.bytes.count)
    }

    func testEveryReadPastTheEndIsAFormatErrorNamingTheContext() {
        func fails(_ bytes: [UInt8] = [1, 0, 0], _ body: (inout ByteReader) throws(BGADError) -> Void) -> String? {
            var r = ByteReader(bytes: bytes, position: 0, context: "test file")
            do { try body(&r); return nil } catch { return error.kind == .format ? error.message : "wrong kind" }
        }
        XCTAssertEqual(fails { r throws(BGADError) in _ = try r.u32() }, "test file is truncated or corrupt: a field runs past the end")
        XCTAssertEqual(fails { r throws(BGADError) in _ = try r.floats(1) }, "test file is truncated or corrupt: a tensor runs past the end")
        XCTAssertEqual(fails { r throws(BGADError) in _ = try r.floats(-1) }, "test file is truncated or corrupt: a tensor runs past the end")
        XCTAssertEqual(fails { r throws(BGADError) in try r.skip(4, "the blob") }, "test file is truncated or corrupt: the blob runs past the end")
        XCTAssertEqual(fails([1, 0, 0, 0]) { r throws(BGADError) in _ = try r.count(max: 0, "level count") }, "test file: level count 1 is out of range")
        // a string whose declared length passes the bytes left
        XCTAssertEqual(fails { r throws(BGADError) in r.position = 0; _ = try r.string() }, "test file is truncated or corrupt: a field runs past the end")
        XCTAssertNil(fails { r throws(BGADError) in _ = try r.raw(3) })
    }

    func testCrc32OfASliceIsTheCrcOfItsBytes() {
        let bytes = Array("xx123456789yy".utf8)
        XCTAssertEqual(crc32(bytes[2..<11]), 0xCBF4_3926)  // the standard check value of "123456789"
    }

    func testFirstNonFiniteFindsTheFirstBadValueInEveryBlockPosition() throws {
        for n in [0, 1, 5, 1023, 1024, 1025, 3000] {
            XCTAssertNil(firstNonFinite([Float](repeating: 1, count: n)))
            XCTAssertNil(firstNonFinite([Double](repeating: -1e300, count: n)))
        }
        for (n, bad) in [(1, 0), (1024, 1023), (1025, 1024), (3000, 2047), (3000, 2999)] {
            for v in [Float.nan, .infinity, -.infinity] {
                var x = [Float](repeating: 0.5, count: n)
                x[bad] = v
                if bad + 1 < n { x[n - 1] = .nan }  // only the first bad value is reported
                XCTAssertEqual(firstNonFinite(x), bad)
                x.withUnsafeBufferPointer { XCTAssertEqual(firstNonFinite($0.baseAddress!, count: n), bad) }
            }
        }
        XCTAssertEqual(firstNonFinite([1.0, 2.0, .nan] as [Double]), 2)
        XCTAssertEqual(firstNonFinite([1, 2, 3, 4].lazy.map { $0 == 3 ? Float.infinity : Float($0) }), 2)  // not contiguous
        do {
            try requireFinite([1, .infinity] as [Float], "scores")
            XCTFail("no error")
        } catch { XCTAssertEqual(error.message, "scores: element 1 is infinite") }
        do {
            try requireFinite([Double.nan], "maps")
            XCTFail("no error")
        } catch { XCTAssertEqual(error.message, "maps: element 0 is NaN") }
    }
}
