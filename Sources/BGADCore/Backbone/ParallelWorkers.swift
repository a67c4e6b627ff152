#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Runs `body(worker)` for `worker` in `0..<workers` on that many POSIX threads (the
/// calling thread runs worker 0) and returns when all have finished.
func runOnWorkers(_ workers: Int, _ body: @escaping (Int) -> Void) {
    if workers <= 1 {
        body(0)
        return
    }
    final class Job {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }
    var threads: [pthread_t] = []
    var inline: [Int] = [0]
    for w in 1..<workers {
        let job = Unmanaged.passRetained(Job { body(w) }).toOpaque()
        var tid = pthread_t()
        let rc = pthread_create(&tid, nil, { ctx in
            let job = Unmanaged<Job>.fromOpaque(ctx!).takeRetainedValue()
            job.body()
            return nil
        }, job)
        if rc == 0 {
            threads.append(tid)
        } else {  // could not start a thread: do its share here
            Unmanaged<Job>.fromOpaque(job).release()
            inline.append(w)
        }
    }
    for w in inline { body(w) }
    for t in threads { pthread_join(t, nil) }
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
/// one. After about a million polls a waiter yields its core on every poll, so an
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
        var polls = 0
        while generation.load(ordering: .acquiring) == gen {
            polls += 1
            if polls > 1 << 20 { sched_yield() }
        }
    }
}
