import XCTest
@testable import BGADCore
@testable import BGADKernelsAVX2
#if canImport(Glibc)
import Glibc
#endif

/// An independent Double-precision forward pass of the flow, written from the docs/FLOW.md
/// equations (one vector at a time, no folding, no shared condition), used as the reference.
struct ReferenceFlow {
    var dim: Int, condDim: Int, blocks: Int, clamp: Double
    /// Per block: W1 (hid × in), b1, W2 (out × hid), b2, g, o, Wp (C × C).
    var tensors: [[String: [Double]]]

    init(_ flow: ConditionalFlow) throws {
        dim = flow.dim; condDim = flow.condDim; blocks = flow.blockCount; clamp = Double(flow.clamp)
        tensors = []
        for k in 0..<blocks {
            var t: [String: [Double]] = [:]
            for s in ["subnet.0.weight", "subnet.0.bias", "subnet.2.weight", "subnet.2.bias", "global_scale", "global_offset", "w_perm"] {
                t[s] = try flow.parameter("module_list.\(k).\(s)").map(Double.init)
            }
            tensors.append(t)
        }
    }

    /// z and logdet of one vector.
    func forward(_ x: [Double], _ c: [Double]) -> (z: [Double], logdet: Double) {
        let len1 = dim - dim / 2, len2 = dim / 2, inDim = len1 + condDim, hid = 2 * inDim, out = 2 * len2
        var v = x
        var logdet = 0.0
        for k in 0..<blocks {
            let t = tensors[k]
            let w1 = t["subnet.0.weight"]!, b1 = t["subnet.0.bias"]!, w2 = t["subnet.2.weight"]!, b2 = t["subnet.2.bias"]!
            let g = t["global_scale"]!, o = t["global_offset"]!, wp = t["w_perm"]!
            let h = Array(v[0..<len1]) + c
            var r = [Double](repeating: 0, count: hid)
            for i in 0..<hid {
                var acc = b1[i]
                for j in 0..<inDim { acc += w1[i * inDim + j] * h[j] }
                r[i] = max(acc, 0)
            }
            var a = [Double](repeating: 0, count: out)
            for i in 0..<out {
                var acc = b2[i]
                for j in 0..<hid { acc += w2[i * hid + j] * r[j] }
                a[i] = 0.1 * acc
            }
            var u = v
            for j in 0..<len2 {
                let s = clamp * tanh(a[j])
                u[len1 + j] = v[len1 + j] * exp(s) + a[len2 + j]
                logdet += s
            }
            var y = [Double](repeating: 0, count: dim)
            for kk in 0..<dim {
                let sigma = 0.1 * 2 * log(1 + exp(0.5 * g[kk]))
                logdet += log(sigma)
                u[kk] = u[kk] * sigma + o[kk]
            }
            for j in 0..<dim {
                var acc = 0.0
                for kk in 0..<dim { acc += u[kk] * wp[j * dim + kk] }
                y[j] = acc
            }
            v = y
        }
        return (v, logdet)
    }

    /// ℓ = log p / C.
    func ell(_ x: [Double], _ c: [Double]) -> Double {
        let (z, ld) = forward(x, c)
        let sq = z.reduce(0) { $0 + $1 * $1 }
        return (-0.5 * Double(dim) * log(2 * Double.pi) - 0.5 * sq + ld) / Double(dim)
    }

    mutating func perturb(block k: Int, tensor: String, index: Int, by h: Double) {
        tensors[k][tensor]![index] += h
    }
}

/// Gaussian floats from a fixed seed (test data).
func gaussianFloats(_ n: Int, seed: UInt64, scale: Double = 1) -> [Float] {
    var rng = SeededRandom(seed: seed)
    return (0..<n).map { _ in Float(rng.gaussian() * scale) }
}

final class FlowTests: XCTestCase {
    /// A flow with non-trivial g and o (so σ ≠ 1, o ≠ 0 are exercised).
    func makeFlow(dim: Int, condDim: Int, blocks: Int, seed: UInt64) throws -> ConditionalFlow {
        let flow = try ConditionalFlow(dim: dim, condDim: condDim, blocks: blocks, seed: seed)
        var rng = SeededRandom(seed: seed &+ 99)
        for k in 0..<blocks {
            let g = try flow.parameter("module_list.\(k).global_scale").map { $0 + Float(rng.uniform(bound: 3)) }
            try flow.setParameter("module_list.\(k).global_scale", g)
            let o = (0..<dim).map { _ in Float(rng.uniform(bound: 0.5)) }
            try flow.setParameter("module_list.\(k).global_offset", o)
            // Larger second-layer weights so that s and t are far from zero.
            let w2 = try flow.parameter("module_list.\(k).subnet.2.weight").map { $0 * 8 }
            try flow.setParameter("module_list.\(k).subnet.2.weight", w2)
        }
        return flow
    }

    func testPositionalEncodingMatchesFormula() {
        let pe = positionalEncoding(height: 3, width: 5)
        XCTAssertEqual(pe.count, 15 * 128)
        for h in 0..<3 {
            for w in 0..<5 {
                let row = (h * 5 + w) * 128
                for k in 0..<32 {
                    let f = exp(-Double(2 * k) * log(10000.0) / 64)
                    XCTAssertEqual(Double(pe[row + 2 * k]), sin(Double(w) * f), accuracy: 1e-6)
                    XCTAssertEqual(Double(pe[row + 2 * k + 1]), cos(Double(w) * f), accuracy: 1e-6)
                    XCTAssertEqual(Double(pe[row + 64 + 2 * k]), sin(Double(h) * f), accuracy: 1e-6)
                    XCTAssertEqual(Double(pe[row + 65 + 2 * k]), cos(Double(h) * f), accuracy: 1e-6)
                }
            }
        }
    }

    /// `exp` to 3e-7 relative over its whole clamped range, `tanh` to 3e-7 absolute, and
    /// the exact values at 0 and in saturation.
    func checkExpAndTanh(_ expV: (SIMD8<Float>) -> SIMD8<Float>, _ tanhV: (SIMD8<Float>) -> SIMD8<Float>,
                         _ name: String) {
        var worstExp = 0.0, worstTanh = 0.0
        var x = -87.0
        while x < 88 {
            let v = SIMD8<Float>((0..<8).map { Float(x + Double($0) * 0.0137) })
            let e = expV(v), t = tanhV(v * 0.05)
            for i in 0..<8 {
                let xi = Double(v[i])
                worstExp = max(worstExp, abs(Double(e[i]) / exp(xi) - 1))
                worstTanh = max(worstTanh, abs(Double(t[i]) - tanh(xi * Double(Float(0.05)))))
            }
            x += 0.1
        }
        XCTAssertLessThan(worstExp, 3e-7, name)
        XCTAssertLessThan(worstTanh, 3e-7, name)
        XCTAssertEqual(expV(SIMD8<Float>(repeating: 0))[0], 1, name)
        XCTAssertEqual(tanhV(SIMD8<Float>(repeating: 30))[3], 1, name)
        XCTAssertEqual(tanhV(SIMD8<Float>(repeating: -30))[3], -1, name)
    }

    func testVectorExpAndTanhAreAccurate() {
        checkExpAndTanh(expVector, tanhVector, "baseline")
    }

    func testRotationsAreSpecialOrthogonalAndSeeded() throws {
        for dim in [2, 5, 8, 24] {
            var rng = SeededRandom(seed: UInt64(dim))
            let q = haarRotation(dim: dim, random: &rng).map(Double.init)
            for i in 0..<dim {
                for j in 0..<dim {
                    var dot = 0.0
                    for c in 0..<dim { dot += q[i * dim + c] * q[j * dim + c] }
                    XCTAssertEqual(dot, i == j ? 1 : 0, accuracy: 1e-6)
                }
            }
            // det = +1: the product of U's diagonal of an LU without pivots is not robust,
            // so use the sign function on the (column-major) transpose, same determinant.
            XCTAssertEqual(determinantSign(columnMajor: q, n: dim), 1)
        }
        let a = try ConditionalFlow(dim: 6, condDim: 4, blocks: 2, seed: 7)
        let b = try ConditionalFlow(dim: 6, condDim: 4, blocks: 2, seed: 7)
        let c = try ConditionalFlow(dim: 6, condDim: 4, blocks: 2, seed: 8)
        for name in a.parameterNames { XCTAssertEqual(try a.parameter(name), try b.parameter(name)) }
        XCTAssertNotEqual(try a.parameter("module_list.1.w_perm"), try c.parameter("module_list.1.w_perm"))
    }

    func testInitialisationFollowsFrEIA() throws {
        let flow = try ConditionalFlow(dim: 5, condDim: 4, blocks: 2, seed: 1)
        XCTAssertEqual(flow.parameterNames.count, 14)
        XCTAssertEqual(try flow.parameterShape("module_list.0.subnet.0.weight"), [14, 7])
        XCTAssertEqual(try flow.parameterShape("module_list.0.subnet.2.weight"), [4, 14])
        XCTAssertEqual(try flow.parameterShape("module_list.1.global_scale"), [1, 5])
        XCTAssertEqual(try flow.parameterShape("module_list.1.w_perm"), [5, 5])
        for g in try flow.parameter("module_list.0.global_scale") {
            XCTAssertEqual(g, Float(2 * log(exp(5.0) - 1)), accuracy: 1e-5)
            XCTAssertEqual(CouplingBlock.globalScale(g), 1, accuracy: 1e-6)
        }
        let w1 = try flow.parameter("module_list.0.subnet.0.weight")
        XCTAssertLessThanOrEqual(w1.map(abs).max()!, Float(1 / 7.0.squareRoot()))
        XCTAssertGreaterThan(w1.map(abs).max()!, Float(0.8 / 7.0.squareRoot()))
        XCTAssertEqual(try flow.parameter("module_list.0.global_offset"), [0, 0, 0, 0, 0])
    }

    /// Forward, log p and inverse agree with the Double reference; inverse(forward(x)) = x.
    func checkForwardAndInverse(dim: Int, condDim: Int = 6) throws {
        let n = 9, rows = 3
        let flow = try makeFlow(dim: dim, condDim: condDim, blocks: 3, seed: UInt64(dim))
        let ref = try ReferenceFlow(flow)
        let x = gaussianFloats(n * dim, seed: 5, scale: 1.5)
        let table = gaussianFloats(rows * condDim, seed: 6)
        let index: [Int32] = (0..<n).map { Int32(($0 * 2) % rows) }
        var z = [Float](repeating: 0, count: n * dim), ld = [Float](repeating: 0, count: n), ell = ld
        try flow.forward(x: x, count: n, condTable: table, condRows: rows, condIndex: index, z: &z, logdet: &ld)
        try flow.logLikelihood(x: x, count: n, condTable: table, condRows: rows, condIndex: index, ell: &ell)
        for i in 0..<n {
            let xi = (0..<dim).map { Double(x[i * dim + $0]) }
            let ci = (0..<condDim).map { Double(table[Int(index[i]) * condDim + $0]) }
            let (zr, ldr) = ref.forward(xi, ci)
            for j in 0..<dim { XCTAssertEqual(Double(z[i * dim + j]), zr[j], accuracy: 1e-4) }
            XCTAssertEqual(Double(ld[i]), ldr, accuracy: 1e-4)
            XCTAssertEqual(Double(ell[i]), ref.ell(xi, ci), accuracy: 1e-5)
        }
        XCTAssertGreaterThan(ld.map(abs).max()!, 0.5, "log-det should be far from 0 in this test")
        var back = [Float](repeating: 0, count: n * dim), ldInv = [Float](repeating: 0, count: n)
        try flow.inverse(z: z, count: n, condTable: table, condRows: rows, condIndex: index, x: &back, logdet: &ldInv)
        for i in 0..<(n * dim) { XCTAssertEqual(back[i], x[i], accuracy: 1e-4) }
        for i in 0..<n { XCTAssertEqual(ldInv[i], -ld[i], accuracy: 1e-4) }
        // Training forward gives the same ℓ (to float rounding: inference may sum its products
        // in another order, `packedGemm`).
        var ellT = [Float](repeating: 0, count: n)
        try flow.forwardForTraining(x: x, count: n, condTable: table, condRows: rows, condIndex: index, ell: &ellT)
        for i in 0..<n { XCTAssertEqual(ellT[i], ell[i], accuracy: 1e-6 * max(1, abs(ell[i]))) }
    }

    func testForwardInverseMatchReferenceOddDim() throws { try checkForwardAndInverse(dim: 5) }
    func testForwardInverseMatchReferenceEvenDim() throws { try checkForwardAndInverse(dim: 8) }
    func testForwardInverseMatchReferenceWideDim() throws { try checkForwardAndInverse(dim: 21) }

    /// Both kernel builds of the coupling (len2 ≥ 8: 10 = one group + an overlapping tail,
    /// 17 = two groups + tail) against the Double reference, forward, inverse and gradients.
    func testBothKernelBuildsMatchTheReference() throws {
        for avx2 in kernelBuilds {
            try withKernels(avx2: avx2) {
                try checkForwardAndInverse(dim: 21)
                try checkForwardAndInverse(dim: 34)
                try checkGradients(dim: 34)
            }
        }
    }

    /// The AVX-512 direct product (packed weights, condition add and ReLU in its epilogue) in
    /// the flow's inference against the Double reference: dims whose three products it takes
    /// (16 with a 32-wide hidden layer; 40 with 72), both with AVX-512 on and off.
    func testPackedInferenceMatchesTheReference() throws {
        guard VectorISA.cpuHasAVX512 else { throw XCTSkip("this CPU has no AVX-512") }
        let saved = VectorISA.useAVX512
        defer { VectorISA.useAVX512 = saved }
        for on in [true, false] {
            VectorISA.useAVX512 = on
            try checkForwardAndInverse(dim: 16, condDim: 8)
            try checkForwardAndInverse(dim: 40, condDim: 16)
        }
    }

    /// The AVX2 exp and tanh (FMA polynomial) are as accurate as the baseline ones.
    func testAVX2ExpAndTanhAreAccurate() throws {
        guard VectorISA.cpuHasAVX2FMA else { throw XCTSkip("this CPU has no AVX2 + FMA") }
        checkExpAndTanh(expAVX2, tanhAVX2, "AVX2")
    }

    func testBadInputsThrow() throws {
        XCTAssertThrowsError(try ConditionalFlow(dim: 1))
        XCTAssertThrowsError(try ConditionalFlow(dim: 4, condDim: 0))
        XCTAssertThrowsError(try ConditionalFlow(dim: 4, blocks: 0))
        XCTAssertThrowsError(try ConditionalFlow(dim: 4, clamp: .nan))
        let flow = try ConditionalFlow(dim: 4, condDim: 2, blocks: 2)
        var ell: [Float] = [0, 0]
        let table: [Float] = [1, 2]
        XCTAssertThrowsError(try flow.logLikelihood(x: [1, 2, .nan, 4, 1, 2, 3, 4], count: 2, condTable: table, condRows: 1, condIndex: [0, 0], ell: &ell))
        XCTAssertThrowsError(try flow.logLikelihood(x: [1, 2, 3, 4, 1, 2, 3, 4], count: 2, condTable: [1, .infinity], condRows: 1, condIndex: [0, 0], ell: &ell))
        XCTAssertThrowsError(try flow.logLikelihood(x: [1, 2, 3, 4, 1, 2, 3, 4], count: 2, condTable: table, condRows: 1, condIndex: [0, 1], ell: &ell))
        XCTAssertThrowsError(try flow.logLikelihood(x: [1, 2, 3, 4, 1, 2, 3, 4], count: 2, condTable: table, condRows: 1, condIndex: [0, -1], ell: &ell))
        XCTAssertThrowsError(try flow.backward(gradEll: [1, 1]))  // no forwardForTraining yet
        XCTAssertThrowsError(try flow.setParameter("module_list.0.subnet.0.bias", [1, 2]))
        XCTAssertThrowsError(try flow.setParameter("module_list.2.subnet.0.bias", [Float](repeating: 0, count: 8)))
        XCTAssertThrowsError(try flow.setParameter("module_list.0.nope", [1]))
        XCTAssertThrowsError(try flow.setParameter("module_list.0.global_offset", [1, 2, .nan, 4]))
        XCTAssertThrowsError(try flow.setParameter("module_list.0.w_perm", [Float](repeating: 0.5, count: 16)))
        XCTAssertThrowsError(try flow.parameterGradient("module_list.0.w_perm"))
    }
}

/// log|det| of an n × n matrix (column-major) by LU with partial pivoting, in Double.
func logAbsDeterminant(columnMajor m: [Double], n: Int) -> Double {
    var a = m
    var total = 0.0
    for k in 0..<n {
        var piv = k
        for i in k..<n where abs(a[k * n + i]) > abs(a[k * n + piv]) { piv = i }
        if piv != k { for j in 0..<n { a.swapAt(j * n + k, j * n + piv) } }
        let d = a[k * n + k]
        total += log(abs(d))
        for i in (k + 1)..<max(n, k + 1) {
            let f = a[k * n + i] / d
            for j in (k + 1)..<n { a[j * n + i] -= f * a[j * n + k] }
        }
    }
    return total
}
