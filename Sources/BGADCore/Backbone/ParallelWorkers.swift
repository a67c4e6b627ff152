#if canImport(Glibc)
import Glibc
#endif

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

/// A reusable barrier for a fixed number of threads (pthread).
final class Barrier {
    private var b = pthread_barrier_t()
    init(_ count: Int) { pthread_barrier_init(&b, nil, UInt32(count)) }
    deinit { pthread_barrier_destroy(&b) }
    /// Blocks until `count` threads have called `wait`.
    func wait() { pthread_barrier_wait(&b) }
}
