import XCTest
import Synchronization
@testable import BGADCore

/// The persistent worker pool behind every parallel region (`runThreads`): each part runs
/// exactly once per region, also when regions nest or come from several threads at once
/// (those fall back to fresh threads), and the spinning barrier holds every part back
/// until all have arrived.
final class ParallelTests: XCTestCase {
    /// Counts of how often each part ran, shared by the parts of a region.
    final class Counts: @unchecked Sendable {
        let runs: UnsafeMutablePointer<Int>
        let n: Int
        init(_ n: Int) { self.n = n; runs = .allocate(capacity: n); runs.initialize(repeating: 0, count: n) }
        deinit { runs.deallocate() }
    }

    func testEveryPartRunsOncePerRegion() {
        for parts in [2, 3, 5] {
            let counts = Counts(parts)
            for _ in 0..<2000 { runThreads(parts) { i in counts.runs[i] += 1 } }
            for i in 0..<parts { XCTAssertEqual(counts.runs[i], 2000, "part \(i) of \(parts)") }
        }
    }

    func testRegionsAfterTheWorkersFellAsleep() {
        // Longer than the pool's spin period: the threads must wake from their sleep.
        let counts = Counts(2)
        for _ in 0..<3 {
            usleep(UInt32(WorkerPool.spinNanoseconds / 1000 * 3))
            runThreads(2) { i in counts.runs[i] += 1 }
        }
        XCTAssertEqual(counts.runs[0], 3)
        XCTAssertEqual(counts.runs[1], 3)
    }

    func testNestedRegionsFallBackToFreshThreads() {
        let total = Atomic<Int>(0)
        runThreads(2) { _ in
            runThreads(3) { _ in total.wrappingAdd(1, ordering: .relaxed) }
        }
        XCTAssertEqual(total.load(ordering: .relaxed), 6)
    }

    func testConcurrentCallersFromSeveralThreads() {
        let total = Atomic<Int>(0)
        // Four plain threads each run 300 regions of 2 parts; only one region at a time can
        // have the pool, the others run on fresh threads.
        runOnFreshThreads(4) { _ in
            for _ in 0..<300 { runThreads(2) { _ in total.wrappingAdd(1, ordering: .relaxed) } }
        }
        XCTAssertEqual(total.load(ordering: .relaxed), 4 * 300 * 2)
    }

    func testBarrierHoldsEveryPartUntilAllArrive() {
        let parts = 3, rounds = 500
        let barrier = Barrier(parts)
        let arrived = Atomic<Int>(0)
        let violations = Atomic<Int>(0)
        runThreads(parts) { _ in
            for r in 0..<rounds {
                arrived.wrappingAdd(1, ordering: .relaxed)
                barrier.wait()
                // Past the barrier of round r every part has arrived r + 1 times.
                if arrived.load(ordering: .relaxed) < (r + 1) * parts { violations.wrappingAdd(1, ordering: .relaxed) }
                barrier.wait()
            }
        }
        XCTAssertEqual(arrived.load(ordering: .relaxed), parts * rounds)
        XCTAssertEqual(violations.load(ordering: .relaxed), 0)
    }
}
