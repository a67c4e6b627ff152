import XCTest
@testable import BGADCore
#if canImport(Glibc)
import Glibc
#endif

/// The flow's training: gradients against finite differences of the Double reference
/// (`ReferenceFlow`), the worker split, the losses, Adam and a training run; the global
/// affine's fold, forward and inverse in `CouplingBlock`.
extension FlowTests {
    /// Gradients of L = Σ w_i ℓ_i against central differences of the Double reference for
    /// sampled entries of every tensor of every block, and for every input element.
    func checkGradients(dim: Int) throws {
        let condDim = 5, n = 6, rows = 2, blocks = 2
        let flow = try makeFlow(dim: dim, condDim: condDim, blocks: blocks, seed: 40 + UInt64(dim))
        let ref = try ReferenceFlow(flow)
        let x = gaussianFloats(n * dim, seed: 21)
        let table = gaussianFloats(rows * condDim, seed: 22)
        let index: [Int32] = [0, 1, 1, 0, 1, 0]
        let w = gaussianFloats(n, seed: 23)
        var ell = [Float](repeating: 0, count: n)
        try flow.forwardForTraining(x: x, count: n, condTable: table, condRows: rows, condIndex: index, ell: &ell)
        try flow.backward(gradEll: w)
        func loss(_ r: ReferenceFlow, _ xs: [Double]) -> Double {
            var l = 0.0
            for i in 0..<n {
                let xi = Array(xs[(i * dim)..<((i + 1) * dim)])
                let ci = (0..<condDim).map { Double(table[Int(index[i]) * condDim + $0]) }
                l += Double(w[i]) * r.ell(xi, ci)
            }
            return l
        }
        let xd = x.map(Double.init)
        let h = 1e-6
        var rng = SeededRandom(seed: 77)
        var worst = 0.0
        for k in 0..<blocks {
            for name in ["subnet.0.weight", "subnet.0.bias", "subnet.2.weight", "subnet.2.bias", "global_scale", "global_offset"] {
                let full = "module_list.\(k).\(name)"
                let grad = try flow.parameterGradient(full).map(Double.init)
                let scale = grad.map(abs).max()!
                XCTAssertGreaterThan(scale, 1e-4, "\(full): gradient vanishes, the test would be weak")
                // Sampled entries, always including the largest one and (for W1) condition columns.
                var picks = Set((0..<8).map { _ in Int(rng.next() % UInt64(grad.count)) })
                picks.insert(grad.firstIndex(of: grad.max()!)!)
                if name == "subnet.0.weight" { picks.insert(grad.count - 1) }
                for i in picks {
                    var rp = ref, rm = ref
                    rp.perturb(block: k, tensor: name, index: i, by: h)
                    rm.perturb(block: k, tensor: name, index: i, by: -h)
                    let fd = (loss(rp, xd) - loss(rm, xd)) / (2 * h)
                    worst = max(worst, abs(grad[i] - fd) / (abs(fd) + 1e-2 * scale))
                    XCTAssertEqual(grad[i], fd, accuracy: 2e-4 * abs(fd) + 2e-6 * scale, "\(full)[\(i)]")
                }
            }
        }
        let gx = flow.inputGradient.map(Double.init)
        XCTAssertEqual(gx.count, n * dim)
        let scale = gx.map(abs).max()!
        for i in 0..<(n * dim) {
            var xp = xd, xm = xd
            xp[i] += h; xm[i] -= h
            let fd = (loss(ref, xp) - loss(ref, xm)) / (2 * h)
            worst = max(worst, abs(gx[i] - fd) / (abs(fd) + 1e-2 * scale))
            XCTAssertEqual(gx[i], fd, accuracy: 2e-4 * abs(fd) + 2e-6 * scale, "x[\(i)]")
        }
        print("gradient check C = \(dim): worst relative error \(worst)")
    }

    func testGradientsMatchFiniteDifferencesOddDim() throws { try checkGradients(dim: 5) }
    func testGradientsMatchFiniteDifferencesEvenDim() throws { try checkGradients(dim: 8) }
    /// C = 21: len2 = 10, one full group of 8 channels plus an overlapping tail group.
    func testGradientsMatchFiniteDifferencesWideDim() throws { try checkGradients(dim: 21) }

    /// The multi-threaded passes (vectors split over workers, partial gradients reduced) give
    /// the single-threaded results, which the finite-difference tests check.
    func testWorkerSplitMatchesSingleWorker() throws {
        let dim = 9, condDim = 6, n = 1500, rows = 37
        let flow = try makeFlow(dim: dim, condDim: condDim, blocks: 3, seed: 5)
        let x = gaussianFloats(n * dim, seed: 31)
        let table = gaussianFloats(rows * condDim, seed: 32)
        var rng = SeededRandom(seed: 33)
        let index: [Int32] = (0..<n).map { _ in Int32(rng.next() % UInt64(rows)) }
        let saved = blasThreadCount
        defer { blasThreadCount = saved }
        func passes(threads: Int) throws -> (ell: [Float], z: [Float], back: [Float], grads: [[Float]], gx: [Float]) {
            blasThreadCount = threads
            var ell = [Float](repeating: 0, count: n), z = [Float](repeating: 0, count: n * dim)
            var ld = [Float](repeating: 0, count: n), back = z
            try flow.logLikelihood(x: x, count: n, condTable: table, condRows: rows, condIndex: index, ell: &ell)
            try flow.forward(x: x, count: n, condTable: table, condRows: rows, condIndex: index, z: &z, logdet: &ld)
            try flow.inverse(z: z, count: n, condTable: table, condRows: rows, condIndex: index, x: &back, logdet: &ld)
            _ = try flow.computeGradients(x: x, count: n, condTable: table, condRows: rows, condIndex: index)
            let grads = try flow.trainableParameterNames.map { name throws in try flow.parameterGradient(name) }
            return (ell, z, back, grads, flow.inputGradient)
        }
        let one = try passes(threads: 1)
        let two = try passes(threads: 2)
        XCTAssertEqual(flow.workers.count, 2, "the two-thread pass should have used two workers")
        func close(_ a: [Float], _ b: [Float], _ what: String) {
            let scale = a.map(abs).max() ?? 0
            XCTAssertEqual(a.count, b.count)
            for i in 0..<a.count where abs(a[i] - b[i]) > 1e-5 * scale + 1e-6 {
                XCTFail("\(what)[\(i)]: \(a[i]) vs \(b[i])"); return
            }
        }
        close(one.ell, two.ell, "ell")
        close(one.z, two.z, "z")
        close(one.back, two.back, "inverse")
        close(one.gx, two.gx, "input gradient")
        for (i, g) in one.grads.enumerated() { close(g, two.grads[i], flow.trainableParameterNames[i]) }
        for i in 0..<(n * dim) { XCTAssertEqual(two.back[i], x[i], accuracy: 1e-4) }
    }

    func testMaximumLikelihoodLossAndGradient() {
        let ell: [Float] = [-3, -0.5, 0, 2, 40, -40]
        var g: [Float] = []
        let loss = maximumLikelihoodLoss(ell: ell, gradEll: &g)
        let expected = ell.map { l in -log(1 / (1 + exp(-Double(l)))) }.reduce(0, +) / 6
        XCTAssertEqual(Double(loss), expected, accuracy: 1e-6)
        for (i, l) in ell.enumerated() {
            let h = 1e-4
            let f = { (v: Double) in -log(1 / (1 + exp(-v))) / 6 }
            XCTAssertEqual(Double(g[i]), (f(Double(l) + h) - f(Double(l) - h)) / (2 * h), accuracy: 1e-6)
        }
    }

    /// Adam's first two steps against PyTorch's rule worked by hand for one scalar.
    func testAdamFollowsPyTorchRule() throws {
        let flow = try ConditionalFlow(dim: 2, condDim: 1, blocks: 1, seed: 3)
        let x: [Float] = [0.3, -0.7, 1.1, 0.4], table: [Float] = [0.5]
        let name = "module_list.0.global_offset"
        let p0 = try flow.parameter(name).map(Double.init)
        _ = try flow.computeGradients(x: x, count: 2, condTable: table, condRows: 1, condIndex: [0, 0])
        let g1 = try flow.parameterGradient(name).map(Double.init)
        flow.adamStep(learningRate: 0.01)
        let p1 = try flow.parameter(name).map(Double.init)
        for i in 0..<2 {
            // m̂ = g, v̂ = g² → step = lr·g/(|g| + 1e-8).
            XCTAssertEqual(p1[i], p0[i] - 0.01 * g1[i] / (abs(g1[i]) + 1e-8), accuracy: 1e-7)
        }
        _ = try flow.computeGradients(x: x, count: 2, condTable: table, condRows: 1, condIndex: [0, 0])
        let g2 = try flow.parameterGradient(name).map(Double.init)
        flow.adamStep(learningRate: 0.01)
        let p2 = try flow.parameter(name).map(Double.init)
        for i in 0..<2 {
            let m = 0.9 * 0.1 * g1[i] + 0.1 * g2[i], v = 0.999 * 0.001 * g1[i] * g1[i] + 0.001 * g2[i] * g2[i]
            let mHat = m / (1 - 0.81), denom = (v.squareRoot() / (1 - 0.999 * 0.999).squareRoot()) + 1e-8
            XCTAssertEqual(p2[i], p1[i] - 0.01 * mHat / denom, accuracy: 1e-6)
        }
    }

    /// Adam's first two steps on EVERY parameter of a flow large enough for the update to
    /// run 8 lanes at a time in slices over 2 threads, against PyTorch's rule in Double.
    func testAdamFollowsPyTorchRuleOnEveryParameterInParallel() throws {
        let saved = blasThreadCount
        blasThreadCount = 2
        defer { blasThreadCount = saved }
        let dim = 24, n = 600
        let flow = try ConditionalFlow(dim: dim, condDim: 128, blocks: 4, seed: 5)
        XCTAssertGreaterThan(flow.trainableCount, 2 * 65536)
        let x = randomFloats(n * dim, seed: 11), table = randomFloats(16 * 128, seed: 12)
        let index = (0..<n).map { Int32($0 % 16) }
        let names = flow.parameterNames.filter { !$0.hasSuffix("w_perm") }
        func values() throws -> [[Double]] { try names.map { try flow.parameter($0).map(Double.init) } }
        func grads() throws -> [[Double]] { try names.map { try flow.parameterGradient($0).map(Double.init) } }
        let p0 = try values()
        _ = try flow.computeGradients(x: x, count: n, condTable: table, condRows: 16, condIndex: index)
        let g1 = try grads()
        flow.adamStep(learningRate: 0.01)
        let p1 = try values()
        _ = try flow.computeGradients(x: x, count: n, condTable: table, condRows: 16, condIndex: index)
        let g2 = try grads()
        flow.adamStep(learningRate: 0.01)
        let p2 = try values()
        var checked = 0
        for t in 0..<names.count {
            for i in 0..<p0[t].count {
                let a = g1[t][i], b = g2[t][i]
                let e1 = p0[t][i] - 0.01 * a / (abs(a) + 1e-8)
                XCTAssertEqual(p1[t][i], e1, accuracy: 1e-6 + 1e-6 * abs(e1), "\(names[t])[\(i)] step 1")
                let m = 0.9 * 0.1 * a + 0.1 * b, v = 0.999 * 0.001 * a * a + 0.001 * b * b
                let e2 = p1[t][i] - 0.01 * (m / 0.19) / (v.squareRoot() / (1 - 0.999 * 0.999).squareRoot() + 1e-8)
                XCTAssertEqual(p2[t][i], e2, accuracy: 1e-5 + 1e-6 * abs(e2), "\(names[t])[\(i)] step 2")
                checked += 1
            }
        }
        XCTAssertEqual(checked, flow.trainableCount)
    }

    /// Maximum-likelihood training on a correlated 8-D Gaussian reaches its entropy (±5 %).
    func testTrainingReachesGaussianEntropy() throws {
        let dim = 8, n = 512
        // Σ = A·Aᵀ with a lower-triangular A; entropy H = ½·log((2πe)^d·det Σ) = d/2·log(2πe) + Σ log A_ii.
        var rng = SeededRandom(seed: 2024)
        var a = [Double](repeating: 0, count: dim * dim)
        for i in 0..<dim {
            for j in 0...i { a[i * dim + j] = i == j ? 0.4 + 0.3 * Double(i % 3) : 0.8 * rng.gaussian() }
        }
        let mean = (0..<dim).map { Double($0) * 0.2 - 0.5 }
        let entropy = Double(dim) / 2 * log(2 * Double.pi * exp(1.0)) + (0..<dim).map { log(a[$0 * dim + $0]) }.reduce(0, +)
        func sample(_ count: Int) -> [Float] {
            var out = [Float](repeating: 0, count: count * dim)
            for s in 0..<count {
                let e = (0..<dim).map { _ in rng.gaussian() }
                for i in 0..<dim {
                    var v = mean[i]
                    for j in 0...i { v += a[i * dim + j] * e[j] }
                    out[s * dim + i] = Float(v)
                }
            }
            return out
        }
        let flow = try ConditionalFlow(dim: dim, condDim: 4, blocks: 4, seed: 9)
        let table: [Float] = [0.1, -0.2, 0.3, 0.4]
        let index = [Int32](repeating: 0, count: n)
        var ell = [Float](repeating: 0, count: n)
        let gradEll = [Float](repeating: -Float(dim) / Float(n), count: n)   // L = mean(−log p) = −C·mean(ℓ)
        for step in 0..<1500 {
            let x = sample(n)
            try flow.forwardForTraining(x: x, count: n, condTable: table, condRows: 1, condIndex: index, ell: &ell)
            try flow.backward(gradEll: gradEll)
            flow.adamStep(learningRate: step < 1000 ? 3e-3 : 1e-3)
        }
        let test = sample(4096)
        var testEll = [Float](repeating: 0, count: 4096)
        try flow.logLikelihood(x: test, count: 4096, condTable: table, condRows: 1,
                               condIndex: [Int32](repeating: 0, count: 4096), ell: &testEll)
        let nll = -testEll.map { Double($0) * Double(dim) }.reduce(0, +) / 4096
        XCTAssertEqual(nll, entropy, accuracy: 0.05 * abs(entropy), "entropy \(entropy)")
        XCTAssertGreaterThan(abs(entropy), 1)
    }

    /// The maximum-likelihood loss with labels and weights (the trainer's form) against its
    /// definition in Double: `(1/n_normal)·Σ_normal w·log(1 + e^{−ℓ})`, `dL/dℓ = −w·σ(−ℓ)/n_normal`
    /// for normal vectors, 0 for abnormal ones — extreme ℓ included (no overflow).
    func testMaximumLikelihoodLossWithLabelsAndWeights() {
        let ell: [Float] = [-3, 0.7, -800, 2, 60, -12.5, 0, 750]
        let labels: [UInt8] = [0, 1, 0, 0, 1, 0, 0, 0]
        let weights: [Float] = [1.5, 9, 0.25, 2, 3, 1, 0.5, 4]
        var grads = [Double](repeating: .nan, count: ell.count)
        let loss = ell.withUnsafeBufferPointer { e in
            labels.withUnsafeBufferPointer { l in
                weights.withUnsafeBufferPointer { w in
                    maximumLikelihoodLoss(ell: e, labels: l, weights: w) { i, g in grads[i] = g }
                }
            }
        }
        let normals = labels.filter { $0 == 0 }.count
        var expected = 0.0
        for i in 0..<ell.count where labels[i] == 0 {
            let l = Double(ell[i])
            // log(1 + e^{−ℓ}) written as ℓ⁻ + log(1 + e^{−|ℓ|}) only to stay finite at ℓ = −800.
            expected += Double(weights[i]) * (max(-l, 0) + log(1 + exp(-abs(l))))
            let sigmoidNeg = 1 / (1 + exp(l))
            XCTAssertEqual(grads[i], -Double(weights[i]) * sigmoidNeg / Double(normals), accuracy: 1e-15, "ℓ[\(i)]")
        }
        XCTAssertEqual(loss, expected / Double(normals), accuracy: 1e-12 * expected)
        for i in 0..<ell.count where labels[i] != 0 { XCTAssertEqual(grads[i], 0) }
        // No normal vector: 0, every gradient 0.
        let none = ell.withUnsafeBufferPointer { e in
            [UInt8](repeating: 1, count: ell.count).withUnsafeBufferPointer { l in
                maximumLikelihoodLoss(ell: e, labels: l, weights: nil) { _, g in XCTAssertEqual(g, 0) }
            }
        }
        XCTAssertEqual(none, 0)
    }

    /// `CouplingBlock`'s folded global affine against its definition in Double:
    /// `y = (u ⊙ σ + o)·Wpᵀ` with `σ = 0.2·log(1 + e^{g/2})`, `logdet += Σ log σ`; its
    /// inverse gives `u` back and takes the log-determinant back to where it was.
    func testGlobalAffineFoldMatchesDefinitionAndInverts() throws {
        let dim = 11, n = 5
        let flow = try makeFlow(dim: dim, condDim: 3, blocks: 2, seed: 17)
        let k = 1, block = flow.blocks[k]
        let g = try flow.parameter("module_list.\(k).global_scale").map(Double.init)
        let o = try flow.parameter("module_list.\(k).global_offset").map(Double.init)
        let wp = try flow.parameter("module_list.\(k).w_perm").map(Double.init)
        let u = gaussianFloats(n * dim, seed: 4, scale: 2)
        var affine = [Float](repeating: 0, count: block.affineSize)
        affine.withUnsafeMutableBufferPointer {
            block.prepareAffine(params: flow.params.pointer, wp: flow.rotation(k), affine: $0.baseAddress!)
        }
        var y = [Float](repeating: 0, count: n * dim), ld = [Float](repeating: 0.25, count: n)
        block.applyAffine(affine, u: u, count: n, y: &y, logdet: &ld)
        let sigma = g.map { 0.2 * log(1 + exp($0 / 2)) }
        let logSum = sigma.map { log($0) }.reduce(0, +)
        XCTAssertGreaterThan(sigma.map { abs(log($0)) }.max()!, 0.1, "σ ≠ 1 in this test")
        XCTAssertGreaterThan(o.map(abs).max()!, 0.1, "o ≠ 0 in this test")
        for i in 0..<n {
            for j in 0..<dim {
                var acc = 0.0
                for c in 0..<dim { acc += (Double(u[i * dim + c]) * sigma[c] + o[c]) * wp[j * dim + c] }
                XCTAssertEqual(Double(y[i * dim + j]), acc, accuracy: 1e-5 * (1 + abs(acc)), "y[\(i), \(j)]")
            }
            XCTAssertEqual(Double(ld[i]), 0.25 + logSum, accuracy: 1e-5)
        }
        var back = [Float](repeating: 0, count: n * dim)
        block.invertAffine(affine, params: flow.params.pointer, wp: flow.rotation(k), y: y, count: n, u: &back, logdet: &ld)
        for i in 0..<(n * dim) { XCTAssertEqual(back[i], u[i], accuracy: 1e-4) }
        for i in 0..<n { XCTAssertEqual(ld[i], 0.25, accuracy: 1e-5) }
        // The exporters' copy is the same fold.
        let folded = block.foldedAffine(params: flow.params.pointer, wp: flow.rotation(k))
        XCTAssertEqual(folded.m, Array(affine[0..<(dim * dim)]))
        XCTAssertEqual(folded.ob, Array(affine[(dim * dim)..<(dim * dim + dim)]))
        XCTAssertEqual(Double(folded.logSum), logSum, accuracy: 1e-5)
    }
}
