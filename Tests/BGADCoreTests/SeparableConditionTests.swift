import XCTest
@testable import BGADCore

/// The separable form of the positional condition (`SeparableGrid`): detected exactly on
/// the rows a batch uses, and giving the same loss and gradients as the general per-row
/// path.
final class SeparableConditionTests: XCTestCase {
    func testDetectsTheGridOfAPositionalEncoding() {
        let pe = positionalEncoding(height: 5, width: 7, dim: 16)
        let used: [Int32] = [0, 3, 9, 34, 17]
        let grid = pe.withUnsafeBufferPointer { SeparableGrid.detect(table: $0.baseAddress!, rows: 35, dim: 16, used: used, usedCount: 5) }
        XCTAssertEqual(grid?.width, 7)
        XCTAssertEqual(grid?.height, 5)
    }

    func testRejectsTablesWithoutTheStructure() {
        let random = randomFloats(35 * 16, seed: 4)
        let all = (0..<35).map { Int32($0) }
        XCTAssertNil(random.withUnsafeBufferPointer { SeparableGrid.detect(table: $0.baseAddress!, rows: 35, dim: 16, used: all, usedCount: 35) })
        // One used row off the grid's pattern: rejected; the same row unused: accepted.
        var pe = positionalEncoding(height: 5, width: 7, dim: 16)
        pe[20 * 16 + 3] += 1e-3
        XCTAssertNil(pe.withUnsafeBufferPointer { SeparableGrid.detect(table: $0.baseAddress!, rows: 35, dim: 16, used: all, usedCount: 35) })
        let others = all.filter { $0 != 20 }
        XCTAssertEqual(pe.withUnsafeBufferPointer { SeparableGrid.detect(table: $0.baseAddress!, rows: 35, dim: 16, used: others, usedCount: 34) }?.width, 7)
        // Odd condition width: no halves.
        let odd = positionalEncoding(height: 5, width: 7, dim: 16).enumerated().filter { $0.offset % 16 != 15 }.map(\.element)
        XCTAssertNil(odd.withUnsafeBufferPointer { SeparableGrid.detect(table: $0.baseAddress!, rows: 35, dim: 15, used: all, usedCount: 35) })
    }

    /// Loss, every parameter gradient and the input gradient agree with the general path,
    /// for an odd and an even C, on a batch that visits most grid positions several times.
    func testSameGradientsAsTheGeneralPath() throws {
        for dim in [5, 24] {
            let (h, w, n) = (6, 9, 400)
            let pe = positionalEncoding(height: h, width: w, dim: 32)
            let x = randomFloats(n * dim, seed: UInt64(dim))
            var state: UInt64 = 7
            let index: [Int32] = (0..<n).map { _ in
                state = state &* 6364136223846793005 &+ 1442695040888963407
                return Int32((state >> 33) % UInt64(h * w))
            }
            let fast = try ConditionalFlow(dim: dim, condDim: 32, blocks: 3, seed: 9)
            let slow = try ConditionalFlow(dim: dim, condDim: 32, blocks: 3, seed: 9)
            slow.separableConditions = false
            let lossFast = try fast.computeGradients(x: x, count: n, condTable: pe, condRows: h * w, condIndex: index)
            XCTAssertEqual(fast.tape.grid?.width, w, "the separable path was taken")
            let lossSlow = try slow.computeGradients(x: x, count: n, condTable: pe, condRows: h * w, condIndex: index)
            XCTAssertNil(slow.tape.grid)
            XCTAssertEqual(lossFast, lossSlow, accuracy: 1e-5 * abs(lossSlow))
            for name in fast.parameterNames where !name.hasSuffix("w_perm") {
                let a = try fast.parameterGradient(name), b = try slow.parameterGradient(name)
                let scale = b.map(abs).max()! + 1e-12
                for i in 0..<a.count {
                    XCTAssertEqual(a[i], b[i], accuracy: 1e-4 * scale, "C = \(dim): \(name)[\(i)]")
                }
            }
            let ga = fast.inputGradient, gb = slow.inputGradient
            let scale = gb.map(abs).max()!
            for i in 0..<ga.count { XCTAssertEqual(ga[i], gb[i], accuracy: 1e-4 * scale) }
            // Three training steps stay together.
            for _ in 0..<3 {
                try fast.trainStep(x: x, count: n, condTable: pe, condRows: h * w, condIndex: index, learningRate: 1e-3)
                try slow.trainStep(x: x, count: n, condTable: pe, condRows: h * w, condIndex: index, learningRate: 1e-3)
            }
            for name in fast.parameterNames {
                let a = try fast.parameter(name), b = try slow.parameter(name)
                for i in 0..<a.count { XCTAssertEqual(a[i], b[i], accuracy: 1e-4, "C = \(dim) after training: \(name)[\(i)]") }
            }
        }
    }
}
