#if canImport(Glibc)
import Glibc
#endif

/// Runs `body(0) … body(count − 1)` concurrently, `body(0)` on the calling thread and the
/// others on fresh POSIX threads; returns when all have finished.
///
/// Used for coarse regions (a whole pass of the flow over a slice of the vectors), so the
/// cost of creating a thread (tens of µs) is negligible. During the region OpenBLAS is set
/// to one thread (every worker calls `sgemm` on its own slice) and restored afterwards.
public func runParallel(_ count: Int, _ body: @escaping (Int) -> Void) {
    if count <= 1 {
        body(0)
        return
    }
    let saved = blasThreadCount
    blasThreadCount = 1
    defer { blasThreadCount = saved }
    var threads: [pthread_t] = []
    var inline: [Int] = []
    for i in 1..<count {
        let task = Unmanaged.passRetained(ParallelTask(body, i)).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { raw in
            let t = Unmanaged<ParallelTask>.fromOpaque(raw!).takeRetainedValue()
            t.body(t.index)
            return nil
        }, task)
        if rc == 0 {
            threads.append(thread)
        } else {
            // No thread available: run this part on the calling thread instead.
            Unmanaged<ParallelTask>.fromOpaque(task).release()
            inline.append(i)
        }
    }
    body(0)
    for i in inline { body(i) }
    for t in threads { pthread_join(t, nil) }
}

/// The half-open range of `total` items that part `part` of `parts` handles (balanced).
@inline(__always)
public func partRange(_ part: Int, of parts: Int, total: Int) -> Range<Int> {
    (part * total / parts)..<((part + 1) * total / parts)
}

/// One part of a `runParallel` region, handed to its thread.
private final class ParallelTask {
    let body: (Int) -> Void
    let index: Int
    init(_ body: @escaping (Int) -> Void, _ index: Int) { self.body = body; self.index = index }
}
