import XCTest
@testable import BGADCore

/// The AVX-512 direct product `packedGemm` (and the paths that use it) against float64
/// references and against the OpenBLAS paths it replaces.
final class PackedGemmTests: XCTestCase {
    override func setUpWithError() throws {
        guard VectorISA.cpuHasAVX512 else { throw XCTSkip("this CPU has no AVX-512") }
    }

    /// `clamp(start + A·B)` in Double, with the start of `PackedGemmEpilogue`.
    func reference(m: Int, n: Int, k: Int, a: [Float], b: [Float], bias: [Float]?, table: [Float]?, index: [Int32]?,
                   table2: [Float]?, index2: [Int32]?, skip: [Float]?, clamp: Int) -> [Double] {
        var out = [Double](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var v = 0.0
                if let table, let index {
                    v = Double(table[Int(index[i]) * n + j])
                    if let table2, let index2 { v += Double(table2[Int(index2[i]) * n + j]) }
                } else if let bias {
                    v = Double(bias[j])
                }
                if let skip { v += Double(skip[i * n + j]) }
                for kk in 0..<k { v += Double(a[i * k + kk]) * Double(b[kk * n + j]) }
                if clamp >= 1 { v = v.isNaN ? 0 : max(v, 0) }
                if clamp == 2 { v = min(v, 6) }
                out[i * n + j] = v
            }
        }
        return out
    }

    /// Every panel width (48, 40, 32, 24, 16, 8 and the 56/64 splits), row counts below,
    /// at and past a tile of six, K from 1 to 300, each start and clamp.
    func testMatchesFloat64Reference() {
        let shapes: [(m: Int, n: Int, k: Int)] = [
            (1, 8, 1), (5, 16, 3), (6, 24, 7), (7, 32, 20), (13, 40, 9), (12, 48, 16), (23, 56, 5), (11, 64, 33),
            (37, 112, 56), (19, 296, 20), (9, 40, 296), (100, 96, 16), (3, 368, 2),
        ]
        for (s, (m, n, k)) in shapes.enumerated() {
            let a = randomFloats(m * k, seed: UInt64(10 * s + 1)).map { $0 * 2 }
            let b = randomFloats(k * n, seed: UInt64(10 * s + 2))
            let bias = randomFloats(n, seed: UInt64(10 * s + 3)).map { $0 * 3 }
            let rows = 4
            let table = randomFloats(rows * n, seed: UInt64(10 * s + 4)), table2 = randomFloats(rows * n, seed: UInt64(10 * s + 5))
            let index = (0..<m).map { Int32(($0 * 3) % rows) }, index2Cycle = (0..<m).map { Int32(($0 + 1) % rows) }
            // A grid's row parts: runs of 5 equal rows, so six-row tiles lie on one or two runs.
            let index2Runs = (0..<m).map { Int32(($0 / 5) % rows) }
            let skip = randomFloats(m * n, seed: UInt64(10 * s + 6))
            var packed = [Float](repeating: .nan, count: k * n)
            b.withUnsafeBufferPointer { PackedMatrix.pack($0.baseAddress!, rows: k, columns: n, ld: n, transposed: false,
                                                          into: &packed) }
            // Packing B as its transpose gives the same panels.
            let bt = (0..<(n * k)).map { b[($0 % k) * n + $0 / k] }
            var packedT = [Float](repeating: .nan, count: k * n)
            bt.withUnsafeBufferPointer { PackedMatrix.pack($0.baseAddress!, rows: k, columns: n, ld: k, transposed: true,
                                                           into: &packedT) }
            XCTAssertEqual(packed, packedT, "shape \(s)")
            for variant in 0..<6 {
                let clamp = variant % 3
                let useBias = variant == 1, useTable = variant >= 2, useTable2 = variant == 3 || variant == 5
                let useSkip = variant == 4
                let index2 = variant == 5 ? index2Runs : index2Cycle
                var c = [Float](repeating: .nan, count: m * n)
                bias.withUnsafeBufferPointer { bp in table.withUnsafeBufferPointer { tp in
                    table2.withUnsafeBufferPointer { t2 in index.withUnsafeBufferPointer { ip in
                        index2.withUnsafeBufferPointer { i2 in skip.withUnsafeBufferPointer { sp in
                            var e = PackedGemmEpilogue()
                            if useBias { e.bias = bp.baseAddress }
                            if useTable { e.table = tp.baseAddress; e.index = ip.baseAddress; e.tableStride = n }
                            if useTable2 { e.table2 = t2.baseAddress; e.index2 = i2.baseAddress }
                            if useSkip { e.skip = sp.baseAddress; e.skipStride = n }
                            e.clamp = clamp
                            packedGemm(m: m, n: n, k: k, a, lda: k, packed: packed, e, &c, ldc: n)
                        } }
                    } }
                } }
                let want = reference(m: m, n: n, k: k, a: a, b: b, bias: useBias ? bias : nil,
                                     table: useTable ? table : nil, index: useTable ? index : nil,
                                     table2: useTable2 ? table2 : nil, index2: useTable2 ? index2 : nil,
                                     skip: useSkip ? skip : nil, clamp: clamp)
                for i in 0..<(m * n) {
                    XCTAssertEqual(Double(c[i]), want[i], accuracy: 1e-5 * Double(k + 4),
                                   "shape \(s) (\(m)×\(n)×\(k)), variant \(variant), element \(i)")
                }
            }
        }
    }

    /// A row's values do not depend on the call's row count nor on the row's place in it
    /// (bit for bit): what makes the backbone's bands and the flow's worker split exact.
    func testRowsDoNotDependOnTheTiling() {
        let n = 40, k = 37, m = 29
        let a = randomFloats(m * k, seed: 7), b = randomFloats(k * n, seed: 8), bias = randomFloats(n, seed: 9)
        var packed = [Float](repeating: 0, count: k * n)
        PackedMatrix.pack(b, rows: k, columns: n, ld: n, transposed: false, into: &packed)
        var e = PackedGemmEpilogue()
        e.clamp = 2
        bias.withUnsafeBufferPointer { bp in
            e.bias = bp.baseAddress
            var whole = [Float](repeating: 0, count: m * n)
            packedGemm(m: m, n: n, k: k, a, lda: k, packed: packed, e, &whole, ldc: n)
            for (start, count) in [(0, 1), (3, 5), (2, 6), (11, 7), (5, 13), (28, 1), (17, 12)] {
                var part = [Float](repeating: 0, count: count * n)
                a.withUnsafeBufferPointer { ap in
                    packedGemm(m: count, n: n, k: k, ap.baseAddress! + start * k, lda: k, packed: packed, e, &part, ldc: n)
                }
                for i in 0..<(count * n) {
                    XCTAssertEqual(part[i].bitPattern, whole[start * n + i].bitPattern, "rows \(start)+\(count), \(i)")
                }
            }
        }
    }

    /// ReLU and ReLU6 turn NaN into 0, as the engine's other passes do; no clamp keeps it.
    func testClampsTurnNaNIntoZero() {
        let n = 16, k = 2, m = 7
        var a = [Float](repeating: 1, count: m * k)
        a[3 * k] = .nan
        let b = [Float](repeating: 1, count: k * n)
        var packed = [Float](repeating: 0, count: k * n)
        PackedMatrix.pack(b, rows: k, columns: n, ld: n, transposed: false, into: &packed)
        for clamp in 0...2 {
            var e = PackedGemmEpilogue()
            e.clamp = clamp
            var c = [Float](repeating: -1, count: m * n)
            packedGemm(m: m, n: n, k: k, a, lda: k, packed: packed, e, &c, ldc: n)
            XCTAssertEqual(c[3 * n].isNaN, clamp == 0)
            if clamp > 0 { XCTAssertEqual(c[3 * n], 0) }
            XCTAssertEqual(c[0], 2)
        }
    }

    /// The flow's own positional path (`logLikelihood(x:gridHeight:gridWidth:)`, separable
    /// shares in the epilogue) equals the explicit table + index call bit for bit, and the
    /// OpenBLAS path to float rounding, at a width the direct product takes (dim 40, hidden 296).
    func testFlowPositionalPathMatchesTheTablePath() throws {
        let flow = try ConditionalFlow(dim: 40, condDim: 128, blocks: 4, seed: 3)
        for name in flow.trainableParameterNames {
            let count = try flow.parameterCount(name)
            try flow.setParameter(name, randomFloats(count, seed: UInt64(name.count * 7919 + count)).map { $0 * 0.2 })
        }
        let h = 7, w = 9, p = h * w
        let x = randomFloats(p * 40, seed: 11).map { $0 * 2 }
        let table = positionalEncoding(height: h, width: w, dim: 128)
        let index = (0..<Int32(p)).map { $0 }
        var viaTable = [Float](repeating: 0, count: p), viaGrid = viaTable, blas = viaTable
        try flow.logLikelihood(x: x, count: p, condTable: table, condRows: p, condIndex: index, ell: &viaTable)
        try flow.logLikelihood(x: x, gridHeight: h, gridWidth: w, ell: &viaGrid)
        XCTAssertEqual(viaTable.map(\.bitPattern), viaGrid.map(\.bitPattern))
        let saved = VectorISA.useAVX512
        VectorISA.useAVX512 = false
        defer { VectorISA.useAVX512 = saved }
        try flow.logLikelihood(x: x, gridHeight: h, gridWidth: w, ell: &blas)
        XCTAssertGreaterThan(Set(viaGrid).count, p / 2)
        for i in 0..<p { XCTAssertEqual(viaGrid[i], blas[i], accuracy: 2e-5 * max(1, abs(blas[i])), "position \(i)") }
        // A second grid size, then the first again: the caches follow the size.
        var other = [Float](repeating: 0, count: 4 * 5)
        try flow.logLikelihood(x: x, gridHeight: 4, gridWidth: 5, ell: &other)
        VectorISA.useAVX512 = saved
        var again = [Float](repeating: 0, count: p)
        try flow.logLikelihood(x: x, gridHeight: h, gridWidth: w, ell: &again)
        XCTAssertEqual(again.map(\.bitPattern), viaGrid.map(\.bitPattern))
    }

    /// The AVX-512 depthwise kernels give the AVX2 kernels' values bit for bit (same taps,
    /// same order), borders and strides included.
    func testDepthwiseAVX512EqualsAVX2() {
        let saved = VectorISA.useAVX512
        defer { VectorISA.useAVX512 = saved }
        // Widths whose interior leaves 0–7 pixels after the groups of eight (the last ones go
        // as an overlapping group of four), rows shorter than four pixels.
        for (i, (h, w, c, k, s)) in [(9, 13, 32, 3, 1), (8, 21, 48, 5, 1), (11, 10, 64, 5, 2), (7, 30, 96, 3, 2),
                                      (2, 3, 16, 5, 1), (5, 7, 16, 3, 1), (6, 12, 32, 5, 1), (4, 19, 16, 3, 2),
                                      (3, 6, 48, 3, 1)].enumerated() {
            let x = randomFloats(h * w * c, seed: UInt64(30 + i)).map { $0 * 3 }
            let wts = randomFloats(k * k * c, seed: UInt64(40 + i)), bias = randomFloats(c, seed: UInt64(50 + i))
            let oh = (h + s - 1) / s, ow = (w + s - 1) / s
            var outs: [[Float]] = []
            for on in [true, false] {
                VectorISA.useAVX512 = on
                var out = [Float](repeating: .nan, count: oh * ow * c)
                depthwiseConvolutionReLU6(input: x, height: h, width: w, channels: c, kernel: k, stride: s,
                                          weights: wts, bias: bias, output: &out)
                outs.append(out)
            }
            XCTAssertEqual(outs[0].map(\.bitPattern), outs[1].map(\.bitPattern), "case \(i)")
            XCTAssertGreaterThan(outs[0].filter { $0 > 0 && $0 < 6 }.count, outs[0].count / 4)
        }
    }

    /// The AVX-512 inference coupling against the AVX2 kernel (the coupled values bit for
    /// bit: same exp and tanh per lane) and against a float64 evaluation of the formula
    /// (`s = α·tanh(0.1·q_s)`, `x2 ← x2·eˢ + 0.1·q_t`, `logdet += Σ s`), for active halves
    /// that are whole, part and more than one 16-lane unit, odd and even row counts, and
    /// pre-activations far beyond tanh's range.
    func testCouplingAVX512MatchesAVX2AndTheFormula() {
        let saved = VectorISA.useAVX512
        defer { VectorISA.useAVX512 = saved }
        for (t, len2) in [16, 20, 24, 28, 40, 56, 60, 160].enumerated() {
            for n in [1, 2, 7] {
                let block = CouplingBlock(dim: 2 * len2 + 1, condDim: 4, clamp: 1.9, offset: 0)
                let dim = block.dim, len1 = block.len1
                XCTAssertEqual(block.len2, len2)
                let x0 = randomFloats(n * dim, seed: UInt64(60 + t)).map { $0 * 3 }
                // 0.1·q up to ±40: tanh saturates, its exp argument is capped.
                let q = randomFloats(n * 2 * len2, seed: UInt64(70 + t)).map { $0 * 400 }
                var results: [(x: [Float], logdet: [Float])] = []
                for on in [true, false] {
                    VectorISA.useAVX512 = on
                    var x = x0
                    var logdet = [Float](repeating: 0.5, count: n)
                    block.couple(x: &x, q: q, count: n, logdet: &logdet)
                    results.append((x, logdet))
                }
                XCTAssertEqual(results[0].x.map(\.bitPattern), results[1].x.map(\.bitPattern), "len2 \(len2), n \(n)")
                for i in 0..<n {
                    var sum = 0.5
                    for j in 0..<len2 {
                        let sj = 1.9 * tanh(0.1 * Double(q[i * 2 * len2 + j]))
                        sum += sj
                        let scaled = Double(x0[i * dim + len1 + j]) * exp(sj), shift = 0.1 * Double(q[i * 2 * len2 + len2 + j])
                        // Float rounding of both terms (they may nearly cancel).
                        XCTAssertEqual(Double(results[0].x[i * dim + len1 + j]), scaled + shift,
                                       accuracy: 2e-6 * (1 + abs(scaled) + abs(shift)))
                    }
                    for j in 0..<len1 { XCTAssertEqual(results[0].x[i * dim + j], x0[i * dim + j]) }
                    XCTAssertEqual(Double(results[0].logdet[i]), sum, accuracy: 2e-6 * (1 + abs(sum)), "len2 \(len2)")
                    XCTAssertEqual(results[0].logdet[i], results[1].logdet[i], accuracy: 1e-6 * (1 + abs(results[1].logdet[i])))
                }
            }
        }
    }

    /// `BGAD_SIMD`-style switches: AVX-512 follows the AVX2 switch (off with the baseline).
    func testSwitches() {
        let saved2 = VectorISA.useAVX2, saved512 = VectorISA.useAVX512
        defer { VectorISA.useAVX2 = saved2; VectorISA.useAVX512 = saved512 }
        VectorISA.useAVX2 = true
        VectorISA.useAVX512 = true
        XCTAssertTrue(VectorISA.useAVX512)
        VectorISA.useAVX2 = false
        XCTAssertFalse(VectorISA.useAVX512)
        VectorISA.useAVX2 = true
        VectorISA.useAVX512 = false
        XCTAssertFalse(VectorISA.useAVX512)
    }
}
