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
