#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Runs `body(0) … body(count − 1)` concurrently, `body(0)` on the calling thread, and
/// returns when all have finished.
///
/// The other parts run on the process's persistent worker threads (`WorkerPool`): they
/// are created once, stay on their cores, and wait for work spinning for a short while
/// before they sleep, so a parallel region costs microseconds, not the creation and first
/// scheduling of a thread (which on a VM can leave a new thread queued behind its creator
/// for a millisecond). When the pool is already in use — a region started inside another,
/// or from another thread at the same time — the parts run on fresh threads instead.
public func runThreads(_ count: Int, _ body: @escaping (Int) -> Void) {
    if count <= 1 {
        body(0)
        return
    }
    if WorkerPool.shared.run(count, body) { return }
    runOnFreshThreads(count, body)
}

/// `runThreads` on newly created POSIX threads (the pool's fallback).
func runOnFreshThreads(_ count: Int, _ body: @escaping (Int) -> Void) {
    var threads: [pthread_t] = []
    var inline: [Int] = []
    for i in 1..<count {
        let task = Unmanaged.passRetained(ThreadTask { body(i) }).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { raw in
            Unmanaged<ThreadTask>.fromOpaque(raw!).takeRetainedValue().body()
            return nil
        }, task)
        if rc == 0 {
            threads.append(thread)
        } else {
            // No thread available: run this part on the calling thread instead.
            Unmanaged<ThreadTask>.fromOpaque(task).release()
            inline.append(i)
        }
    }
    body(0)
    for i in inline { body(i) }
    for t in threads { pthread_join(t, nil) }
}

/// A closure handed to a thread.
final class ThreadTask {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}

/// The process's persistent worker threads behind `runThreads`.
///
/// One region at a time: a caller publishes the job and bumps `generation`; every pool
/// thread runs its part (if its index is below the job's part count) and then acknowledges
/// by decrementing `pending`; the caller runs part 0 and waits until all have acknowledged.
/// An idle thread polls `generation` for about `spinNanoseconds`, then sleeps on a
/// condition variable. After `fork` the child starts with an empty pool.
final class WorkerPool: @unchecked Sendable {
    /// The pool of this process.
    static let shared = WorkerPool()
    /// Most threads the pool keeps (parts beyond run on fresh threads).
    static let maxThreads = 63
    /// How long an idle thread polls for new work before it sleeps.
    static let spinNanoseconds = 300_000

    private let generation = Atomic<Int>(0)
    private let pending = Atomic<Int>(0)
    private let inUse = Atomic<Bool>(false)
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let wake: UnsafeMutablePointer<pthread_cond_t>
    // Written by the caller before `generation` is bumped, read by the threads after.
    nonisolated(unsafe) private var job: ((Int) -> Void)?
    nonisolated(unsafe) private var parts = 0
    nonisolated(unsafe) private var threadCount = 0

    private init() {
        mutex = .allocate(capacity: 1)
        wake = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(wake, nil)
        pthread_atfork(nil, nil, { WorkerPool.shared.resetAfterFork() })
    }

    /// Runs the region on the pool; false (nothing run) when the pool is busy.
    func run(_ count: Int, _ body: @escaping (Int) -> Void) -> Bool {
        guard count - 1 <= WorkerPool.maxThreads,
              inUse.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return false }
        defer { inUse.store(false, ordering: .releasing) }
        while threadCount < count - 1 {
            guard startThread(index: threadCount + 1, seen: generation.load(ordering: .acquiring)) else { return false }
            threadCount += 1
        }
        job = body
        parts = count
        pending.store(threadCount, ordering: .relaxed)
        pthread_mutex_lock(mutex)
        generation.wrappingAdd(1, ordering: .releasing)
        pthread_cond_broadcast(wake)
        pthread_mutex_unlock(mutex)
        body(0)
        spinWait { pending.load(ordering: .acquiring) > 0 }
        job = nil
        return true
    }

    /// Starts pool thread `index`; it waits for the generation after `seen`.
    private func startThread(index: Int, seen: Int) -> Bool {
        let task = Unmanaged.passRetained(ThreadTask { WorkerPool.shared.loop(index: index, seen: seen) }).toOpaque()
        var thread = pthread_t()
        guard pthread_create(&thread, nil, { raw in
            Unmanaged<ThreadTask>.fromOpaque(raw!).takeRetainedValue().body()
            return nil
        }, task) == 0 else {
            Unmanaged<ThreadTask>.fromOpaque(task).release()
            return false
        }
        pthread_detach(thread)
        return true
    }

    /// A pool thread: waits for each new generation, runs its part, acknowledges.
    private func loop(index: Int, seen initial: Int) {
        var seen = initial
        while true {
            var current = generation.load(ordering: .acquiring)
            if current == seen {
                let start = monotonicNanoseconds()
                var polls = 0
                while current == seen {
                    polls += 1
                    if polls & 1023 == 0 {
                        if monotonicNanoseconds() - start > WorkerPool.spinNanoseconds { break }
                        // More threads than free cores: let the busy ones run.
                        if polls > 1 << 14 { sched_yield() }
                    }
                    current = generation.load(ordering: .acquiring)
                }
                if current == seen {
                    pthread_mutex_lock(mutex)
                    current = generation.load(ordering: .acquiring)
                    while current == seen {
                        pthread_cond_wait(wake, mutex)
                        current = generation.load(ordering: .acquiring)
                    }
                    pthread_mutex_unlock(mutex)
                }
            }
            seen = current
            if index < parts, let job { job(index) }
            pending.wrappingSubtract(1, ordering: .releasing)
        }
    }

    /// In a forked child only the forking thread exists: forget the parent's threads.
    private func resetAfterFork() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(wake, nil)
        threadCount = 0
        inUse.store(false, ordering: .relaxed)
        pending.store(0, ordering: .relaxed)
    }
}

/// A mutex (pthread) guarding shared engine state.
final class Mutex {
    private var m = pthread_mutex_t()
    init() { pthread_mutex_init(&m, nil) }
    deinit { pthread_mutex_destroy(&m) }
    /// Runs `body` while holding the lock.
    func locked<T>(_ body: () throws(BGADError) -> T) throws(BGADError) -> T {
        pthread_mutex_lock(&m)
        defer { pthread_mutex_unlock(&m) }
        return try body()
    }
}

/// A reusable barrier for a fixed number of threads that spins while it waits.
///
/// The backbone's bands meet once per block, every few hundred microseconds; a sleeping
/// barrier (futex) costs tens of microseconds per wake-up on a VM, a spinning one well under
/// one. After 16,384 polls (tens of microseconds) a waiter yields its core on every poll, so an
/// oversubscribed machine does not burn a core for nothing.
final class Barrier {
    private let count: Int
    private let arrived = Atomic<Int>(0)
    private let generation = Atomic<Int>(0)
    init(_ count: Int) { self.count = count }
    /// Blocks until `count` threads have called `wait`.
    func wait() {
        let gen = generation.load(ordering: .acquiring)
        if arrived.wrappingAdd(1, ordering: .acquiringAndReleasing).newValue == count {
            arrived.store(0, ordering: .relaxed)
            generation.store(gen &+ 1, ordering: .releasing)
            return
        }
        spinWait { generation.load(ordering: .acquiring) == gen }
    }
}

/// Polls `waiting` until it is false; after 16,384 polls (tens of microseconds) yields the
/// core on every poll, so that on an oversubscribed machine the threads being waited for run.
@inline(__always)
func spinWait(while waiting: () -> Bool) {
    var polls = 0
    while waiting() {
        polls += 1
        if polls > 1 << 14 { sched_yield() }
    }
}
