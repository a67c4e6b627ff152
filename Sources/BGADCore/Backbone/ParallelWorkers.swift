#if canImport(Glibc)
import Glibc
#endif
import Synchronization

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
        var polls = 0
        while generation.load(ordering: .acquiring) == gen {
            polls += 1
            if polls > 1 << 14 { sched_yield() }
        }
    }
}
