import XCTest
@testable import BGADCore
#if canImport(Glibc)
import Glibc
#endif

/// Regression tests of issue #19 (hardening): files are judged by their header before they
/// are read, a model file cannot make the loader build or draw what it does not hold, one
/// fact is not stored twice unchecked, saves take the usual file mode and clean up after
/// killed writers, PNG bombs are refused, and SHA-256 names the backbone weights.
final class HardeningTests: XCTestCase {
    private let dir = "/tmp/bgad-hardening-\(getpid())"

    override func setUp() { mkdir(dir, 0o755) }

    override func tearDown() {
        if let d = opendir(dir) {
            while let e = readdir(d) {
                let name = String(decoding: directoryEntryName(e), as: UTF8.self)
                if name != "." && name != ".." { unlink("\(dir)/\(name)") }
            }
            closedir(d)
        }
        rmdir(dir)
    }

    private func error(_ body: () throws -> Void) -> BGADError? {
        do { try body(); return nil } catch { return error as? BGADError }
    }

    private func seconds(_ body: () -> Void) -> Double {
        var a = timespec(), b = timespec()
        clock_gettime(CLOCK_MONOTONIC, &a)
        body()
        clock_gettime(CLOCK_MONOTONIC, &b)
        return Double(b.tv_sec - a.tv_sec) + Double(b.tv_nsec - a.tv_nsec) * 1e-9
    }

    /// Asserts that `body` fails with a `.format` error whose message contains `text` (when
    /// given) within `limit` seconds (`why` says what a slow refusal would mean).
    private func assertRefusedQuickly(containing text: String? = nil, within limit: Double, _ why: String = "",
                                      _ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) {
        var e: BGADError?
        let t = seconds { e = self.error(body) }
        XCTAssertEqual(e?.kind, .format, file: file, line: line)
        if let text { XCTAssertTrue(e?.message.contains(text) ?? false, e?.message ?? "no error", file: file, line: line) }
        XCTAssertLessThan(t, limit, why, file: file, line: line)
    }

    /// A sparse file of `size` bytes starting with `head`.
    private func sparseFile(_ name: String, head: [UInt8], size: Int) -> String {
        let path = "\(dir)/\(name)"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        XCTAssertGreaterThanOrEqual(fd, 0)
        head.withUnsafeBytes { _ = write(fd, $0.baseAddress!, head.count) }
        XCTAssertEqual(ftruncate(fd, off_t(size)), 0)
        close(fd)
        return path
    }

    private func le64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
    private func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }

    private func smallModel(_ c: TrainingConfiguration? = nil) throws -> BGADModel {
        var cfg = c ?? TrainingConfiguration()
        if c == nil { cfg.blocks = 2; cfg.conditionDimension = 8 }
        return try BGADModel(channels: [4, 6], configuration: cfg)
    }

    /// A model file around `payload` with a valid header and checksum.
    private func modelFile(_ payload: [UInt8], version: UInt32 = 2) -> [UInt8] {
        ModelFile.magic + le32(version) + le32(0) + le64(UInt64(payload.count)) + le32(crc32(payload)) + le32(0) + payload
    }

    // MARK: - Defect 1: a huge file with a valid magic is judged by its header

    func testHugeFilesWithAValidMagicAreRefusedFromTheirHeader() {
        let huge = 1_900_000_000  // 1.9 GB, under readFile's 2 GiB limit: only the header can refuse it
        // Model file: a consistent header declaring 1.9 GB is over the model budget.
        let model = sparseFile("huge.bgad", head: ModelFile.magic + le32(2) + le32(0) + le64(UInt64(huge - 32)), size: huge)
        assertRefusedQuickly(containing: "more than the \(ModelFile.maximumFileSize)", within: 0.5, "the 1.9 GB file was read") {
            _ = try ModelFile.load(from: model)
        }
        // A header declaring another length than the file's: refused as truncated, unread.
        let lying = sparseFile("lying.bgad", head: ModelFile.magic + le32(2) + le32(0) + le64(1000), size: huge)
        assertRefusedQuickly(containing: "trailing", within: 0.5) { _ = try ModelFile.load(from: lying) }
        // Detector file.
        let det = sparseFile("huge.bgaddet", head: DetectorFile.magic + le32(2) + le32(0) + le64(UInt64(huge - 28)), size: huge)
        assertRefusedQuickly(containing: "more than", within: 0.5) { _ = try Detector.load(from: det) }
        // Weight file: the magic names the variant, whose file size is exact.
        let weights = sparseFile("huge.bgadw", head: EfficientNetLiteWeightFile.magic(.lite0) + le32(1) + le32(0)
                                 + le64(UInt64(huge - 32)), size: huge)
        assertRefusedQuickly(containing: "\(EfficientNetLiteWeightFile.payloadSize(.lite0))", within: 0.5) {
            _ = try EfficientNetLiteWeightFile.read(path: weights)
        }
        assertRefusedQuickly(within: 0.5) { _ = try DetectorBackbones.load(name: "lite0", path: weights) }
        // A foreign file is refused by its magic whatever its size.
        let foreign = sparseFile("foreign", head: Array("NOTAMODEL".utf8), size: huge)
        assertRefusedQuickly(within: 0.5) { _ = try ModelFile.load(from: foreign) }
    }

    func testAllocationsThatCannotBeGrantedAreOutOfMemoryErrors() {
        XCTAssertEqual(error { try requireAllocatable(1 << 50, "a petabyte") }?.kind, .outOfMemory)
        XCTAssertNil(error { try requireAllocatable(1 << 20, "a megabyte") })
        XCTAssertEqual(error { _ = try FloatBuffer(capacity: 1 << 50) }?.kind, .outOfMemory)
    }

    // MARK: - Defects 2 and 3: flows are built only once the file is known to hold them

    /// The payload of a model file with `channels` levels, no calibration, one flow header
    /// per level (blocks, condition width, clamp from `cfg`) and no tensors.
    private func payloadWithoutTensors(_ cfg: TrainingConfiguration, channels: [Int]) throws -> [UInt8] {
        var w = ByteWriter()
        w.u32(UInt32(TrainingConfiguration.parameterNames.count))
        for n in TrainingConfiguration.parameterNames { w.string(n); w.string(try cfg.get(n)) }
        w.u32(UInt32(channels.count))
        for c in channels { w.u32(UInt32(c)) }
        w.u8(0)
        for _ in channels { w.u32(UInt32(cfg.blocks)); w.u32(UInt32(cfg.conditionDimension)); w.f32(Float(cfg.clamp)); w.u32(0) }
        w.u8(0)
        return w.bytes
    }

    func testAFileDeclaringALargeFlowWithoutItsTensorsIsRefusedBeforeBuildingIt() throws {
        var cfg = TrainingConfiguration()
        cfg.blocks = 16; cfg.conditionDimension = 1024
        // A few hundred bytes with a valid checksum declaring 16 blocks of a 2048-channel flow
        // (hundreds of MB, 16 Haar rotations of 2048² before the fix).
        let file = modelFile(try payloadWithoutTensors(cfg, channels: [2048]))
        XCTAssertLessThan(file.count, 2000)
        assertRefusedQuickly(containing: "bytes are left", within: 0.2, "the flow was built") { _ = try ModelFile.decode(file) }
    }

    func testAChangedChannelCountIsRefusedWithoutDrawingRotations() throws {
        let model = try smallModel()
        var bytes = try ModelFile.encode(model)
        // The level count follows the hyper-parameters; find level 0's channel count (4) after it.
        var r = ByteReader(bytes: Array(bytes[32...]), position: 0)
        for _ in 0..<Int(try r.u32()) { _ = try r.string(); _ = try r.string() }
        XCTAssertEqual(try r.u32(), 2)
        let at = 32 + r.position
        XCTAssertEqual(Array(bytes[at..<(at + 4)]), le32(4))
        bytes.replaceSubrange(at..<(at + 4), with: le32(4096))
        let payload = Array(bytes[32...])
        bytes.replaceSubrange(24..<28, with: le32(crc32(payload)))
        assertRefusedQuickly(containing: "level 0", within: 0.2, "a 4096-channel flow was built") { _ = try ModelFile.decode(bytes) }
    }

    func testFlowsForStoredParametersDrawNothing() throws {
        let f = try ConditionalFlow.forStoredParameters(dim: 64, condDim: 8, blocks: 2, clamp: 1.9)
        for n in f.parameterNames { XCTAssertTrue(try f.parameter(n).allSatisfy { $0 == 0 }, n) }
        // A stored model still round-trips bit for bit (every tensor set from the file).
        let model = try smallModel()
        let back = try ModelFile.decode(try ModelFile.encode(model))
        for (a, b) in zip(back.flows, model.flows) {
            for n in a.parameterNames { XCTAssertEqual(try a.parameter(n), try b.parameter(n), n) }
        }
        // Tensors missing, duplicated, unknown or misshapen are named.
        var cfg = TrainingConfiguration(); cfg.blocks = 1; cfg.conditionDimension = 4
        var w = ByteWriter()
        let bytes = try payloadWithoutTensors(cfg, channels: [2])
        w.bytes = Array(bytes.dropLast(5))  // drop the tensor count (0) and the history flag
        w.u32(1); w.string("module_list.0.nonsense"); w.u32(1); w.u32(1); w.f32(0)
        w.u8(0)
        w.bytes += [UInt8](repeating: 0, count: 400)  // enough bytes for the flow's floats
        XCTAssertTrue(error { _ = try ModelFile.decode(self.modelFile(w.bytes)) }?.message.contains("unknown parameter") ?? false)
    }

    // MARK: - Defect 18: the flow architecture is held twice; both copies must agree

    func testAClampThatDisagreesWithTheHyperParametersIsRefused() throws {
        let model = try smallModel()
        let good = try ModelFile.encode(model)
        // The flow header's clamp (the f32 right after level 0's blocks and condition width).
        var w = ByteWriter()
        w.u32(2); w.u32(8); w.f32(1.9)
        let payload = Array(good[32...])
        let pattern = w.bytes
        let at = try XCTUnwrap((0...(payload.count - pattern.count)).first { Array(payload[$0..<($0 + pattern.count)]) == pattern })
        var altered = payload
        var c = ByteWriter(); c.f32(2.5)
        altered.replaceSubrange((at + 8)..<(at + 12), with: c.bytes)
        let e = error { _ = try ModelFile.decode(self.modelFile(altered)) }
        XCTAssertEqual(e?.kind, .format)
        XCTAssertTrue(e?.message.contains("clamp = 2.5") ?? false, e?.message ?? "")
        // The hyper-parameter text's clamp altered instead.
        var cfgText = ByteWriter(); cfgText.string("clamp"); cfgText.string("1.9")
        let t = try XCTUnwrap((0...(payload.count - cfgText.bytes.count)).first { Array(payload[$0..<($0 + cfgText.bytes.count)]) == cfgText.bytes })
        var text = payload
        text[t + cfgText.bytes.count - 1] = UInt8(ascii: "7")  // "1.9" → "1.7"
        XCTAssertTrue(error { _ = try ModelFile.decode(self.modelFile(text)) }?.message.contains("inconsistent") ?? false)
        XCTAssertNoThrow(try ModelFile.decode(good))
    }

    func testAKnobChangedAfterTheFlowsWereBuiltDoesNotChangeTheSavedFlows() throws {
        let model = try smallModel()
        try model.setParameter("clamp", "1.5")   // takes effect at the next fit
        try model.setParameter("blocks", "3")
        let back = try ModelFile.decode(try ModelFile.encode(model))
        XCTAssertEqual(back.flows.map { $0.clamp }, model.flows.map { $0.clamp })
        XCTAssertEqual(back.flows.map { $0.blockCount }, [2, 2])
        XCTAssertEqual(Float(back.configuration.clamp), model.flows[0].clamp, "the file stores the flows' architecture")
        // Saved again, it is the same file (no drift across save/reload).
        XCTAssertEqual(try ModelFile.encode(back), try ModelFile.encode(ModelFile.decode(ModelFile.encode(back))))
    }

    // MARK: - Defect 6: a detector file's configuration is validated

    func testDetectorConfigurationsOutOfRangeOrMalformedAreFormatErrors() throws {
        func file(_ json: [UInt8]) -> [UInt8] {
            let body = le32(UInt32(json.count)) + json + [0]
            let head = DetectorFile.magic + le32(2) + le32(0) + le64(UInt64(body.count)) + body
            return head + le32(head.withUnsafeBufferPointer { crc32($0) })
        }
        let bad: [(String, String)] = [
            (#"{"feature_batch": 0}"#, "feature_batch"), (#"{"image_size": 200000}"#, "image_size"),
            (#"{"image_size": "big"}"#, "image_size"), (#"{"batch_size": 0}"#, "batch_size"),
            (#"{"image_size": 64"#, "JSON"), (#"[1, 2]"#, "object"), (#"{"strides": [8, 8]}"#, "strides"),
            (#"{"nonsense": 1}"#, "nonsense"), (#"{"clamp": -1}"#, "clamp"), (#"{"lr": 1e999}"#, "lr"),
            (String(repeating: "[", count: 5000), "nesting"),
        ]
        for (json, word) in bad {
            let e = error { _ = try Detector.decode(file(Array(json.utf8))) }
            XCTAssertEqual(e?.kind, .format, json)
            XCTAssertTrue(e?.message.contains(word) ?? false, "\(json): \(e?.message ?? "accepted")")
        }
        XCTAssertEqual(error { _ = try Detector.decode(file([0xFF, 0xFE, 0x7B])) }?.kind, .format)  // not UTF-8
        XCTAssertNoThrow(try Detector.decode(file(Array(#"{"image_size": 64}"#.utf8))))
    }

    // MARK: - Defects 9 and 16: the mode of saved files; stale temporaries

    private func mode(_ path: String) -> mode_t {
        var st = stat()
        XCTAssertEqual(stat(path, &st), 0)
        return st.st_mode & 0o777
    }

    func testNewFilesTakeTheUmaskAndExistingFilesKeepTheirMode() throws {
        let old = umask(0o027)
        defer { umask(old) }
        XCTAssertEqual(currentUmask(), 0o027)
        XCTAssertEqual(umask(0o027), 0o027, "reading the mask leaves it as it was")
        let path = "\(dir)/mode.bgad"
        try writeFileAtomically(path, [1, 2, 3])
        XCTAssertEqual(mode(path), 0o640)
        chmod(path, 0o604)
        try writeFileAtomically(path, [4, 5])
        XCTAssertEqual(mode(path), 0o604, "an existing file keeps its mode")
        XCTAssertEqual(try readFile(path), [4, 5])
        // A folder the user may not write to: an `.io` error naming the path.
        if getuid() != 0 {
            let e = error { try writeFileAtomically("/proc/bgad-test.bgad", [1]) }
            XCTAssertEqual(e?.kind, .io)
        }
        let e = error { try writeFileAtomically("\(dir)/missing/x.bgad", [1]) }
        XCTAssertEqual(e?.kind, .io)
        XCTAssertTrue(e?.message.contains("\(dir)/missing/x.bgad") ?? false)
    }

    func testTheNextSaveRemovesOldTemporariesOfItsPathOnly() throws {
        let path = "\(dir)/model.bgad"
        func make(_ name: String, age: Int) {
            let p = "\(dir)/\(name)"
            let fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            close(fd)
            var times = [timespec(tv_sec: time(nil) - age, tv_nsec: 0), timespec(tv_sec: time(nil) - age, tv_nsec: 0)]
            XCTAssertEqual(utimensat(AT_FDCWD, p, &times, 0), 0)
        }
        make("model.bgad.tmp-Ab3dE9", age: staleTemporaryAge + 100)   // a killed save's leftover
        make("model.bgad.tmp-Zz9yX1", age: 10)                        // a save that may still run
        make("other.bgad.tmp-Ab3dE9", age: staleTemporaryAge + 100)   // another path's
        make("model.bgad.tmp-toolong1", age: staleTemporaryAge + 100) // not a temporary name
        try writeFileAtomically(path, [9])
        XCTAssertNotEqual(access("\(dir)/model.bgad.tmp-Ab3dE9", F_OK), 0)
        XCTAssertEqual(access("\(dir)/model.bgad.tmp-Zz9yX1", F_OK), 0)
        XCTAssertEqual(access("\(dir)/other.bgad.tmp-Ab3dE9", F_OK), 0)
        XCTAssertEqual(access("\(dir)/model.bgad.tmp-toolong1", F_OK), 0)
        // A relative path cleans its own folder too.
        var cwd = [CChar](repeating: 0, count: 4096)
        XCTAssertNotNil(getcwd(&cwd, cwd.count))
        defer { chdir(cwd) }
        XCTAssertEqual(chdir(dir), 0)
        make("rel.bgad.tmp-Qq1234", age: staleTemporaryAge + 100)
        try writeFileAtomically("rel.bgad", [1])
        XCTAssertNotEqual(access("\(dir)/rel.bgad.tmp-Qq1234", F_OK), 0)
    }

    func testSymlinksPlantedAtTemporaryNamesAreNeverFollowed() throws {
        let victim = "\(dir)/victim"
        try writeFileAtomically(victim, Array("precious".utf8))
        let path = "\(dir)/out.png"
        // The old predictable name (`PATH.tmp-<pid>`) and, for good measure, a spread of names
        // with the temporary prefix: none is used through the link.
        XCTAssertEqual(symlink(victim, "\(path).tmp-\(getpid())"), 0)
        for k in 0..<10 { XCTAssertEqual(symlink(victim, "\(path).tmp-AAAAA\(k)"), 0) }
        for _ in 0..<50 { try writeFileAtomically(path, [1, 2, 3]) }
        XCTAssertEqual(try readFile(victim), Array("precious".utf8))
        XCTAssertEqual(try readFile(path), [1, 2, 3])
        var st = stat()
        XCTAssertEqual(lstat(path, &st), 0)
        XCTAssertEqual(st.st_mode & S_IFMT, S_IFREG, "the result is a file of its own, not a link")
    }

    // MARK: - Defect 17: decompression bombs

    func testPNGBombsAreRefusedBeforeInflatingAndLargeRealImagesPass() throws {
        // 12000 × 12000 gray zeros: 144 MB raw from a file of ~140 kB (1000:1).
        let side = 12000
        let bomb = try PNG.encode(Image(height: side, width: side, channels: 1), compressionLevel: 9)
        XCTAssertLessThan(bomb.count, 1 << 20)
        assertRefusedQuickly(containing: "decompression bomb", within: 0.5) {
            _ = try bomb.withUnsafeBufferPointer { try PNG.decode($0) }
        }
        // Under the budget's floor any ratio passes (an all-black 8192 × 8192 mask's raw data is 64 MiB).
        let h8 = PNG.Header(height: 8192, width: 8192, bitDepth: 8, colorType: 0, interlaced: false)
        XCTAssertNoThrow(try PNG.validate(h8, byteCount: 70_000, channels: 1))
        // Above it, a plausibly compressed 16-bit RGB photograph passes (keep 16-bit decodable).
        let h16 = PNG.Header(height: 4000, width: 6000, bitDepth: 16, colorType: 2, interlaced: false)
        XCTAssertNoThrow(try PNG.validate(h16, byteCount: 60_000_000, channels: 3))
        XCTAssertThrowsError(try PNG.validate(h16, byteCount: 1_000_000, channels: 3))
    }

    // MARK: - Defect 7: SHA-256 of the backbone weights

    func testSHA256MatchesTheFIPSVectors() {
        XCTAssertEqual(SHA256.hex([]), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hex(Array("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(SHA256.hex([UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)),
                       "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }
}
