import CBLAS
#if canImport(Glibc)
import Glibc
#endif

/// Parallel regions (`runParallel`, `runSlices`) and the engine's thread count, which is
/// OpenBLAS's (`bgad_set_num_threads`).

/// Number of threads OpenBLAS uses (at least 1).
public var blasThreadCount: Int {
    get { Int(openblas_get_num_threads()) }
    set { openblas_set_num_threads(Int32(max(1, newValue))) }
}

/// Runs `body(0) … body(count − 1)` concurrently (`runThreads`, `body(0)` on the calling
/// thread); returns when all have finished. During the region OpenBLAS is set to one
/// thread (every worker calls `sgemm` on its own slice) and restored afterwards.
public func runParallel(_ count: Int, _ body: @escaping (Int) -> Void) {
    guard count > 1 else { return runThreads(count, body) }
    BLASOverride.enter()
    defer { BLASOverride.leave() }
    runThreads(count, body)
}

/// Process-wide override of OpenBLAS's thread count to 1 while any `runParallel` region runs
/// (regions of different objects may overlap in different threads); the user's setting is
/// restored when the last region ends.
enum BLASOverride {
    nonisolated(unsafe) static var mutex: UnsafeMutablePointer<pthread_mutex_t> = {
        let m = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        pthread_mutex_init(m, nil)
        return m
    }()
    nonisolated(unsafe) static var active = 0
    nonisolated(unsafe) static var saved = 1

    static func enter() {
        pthread_mutex_lock(mutex)
        if active == 0 {
            saved = blasThreadCount
            blasThreadCount = 1
        }
        active += 1
        pthread_mutex_unlock(mutex)
    }

    static func leave() {
        pthread_mutex_lock(mutex)
        active -= 1
        if active == 0 { blasThreadCount = saved }
        pthread_mutex_unlock(mutex)
    }

    /// The thread count the user configured (not the temporary 1 of an active region).
    static var configured: Int {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return active > 0 ? saved : blasThreadCount
    }
}

/// Number of threads the engine may use: the BLAS thread setting (`bgad_set_num_threads`),
/// ignoring the temporary single-thread setting inside parallel regions.
public var engineThreadCount: Int { BLASOverride.configured }

/// Runs `body(range)` on `runThreads` for balanced slices of `0..<total`: at most
/// `maxParts` slices, none shorter than `minimum` items (one slice at least).
public func runSlices(total: Int, minimum: Int, maxParts: Int = engineThreadCount,
                      _ body: @escaping (Range<Int>) -> Void) {
    let parts = max(1, min(maxParts, total / minimum))
    runThreads(parts) { body(partRange($0, of: parts, total: total)) }
}

/// The half-open range of `total` items that part `part` of `parts` handles (balanced).
@inline(__always)
public func partRange(_ part: Int, of parts: Int, total: Int) -> Range<Int> {
    (part * total / parts)..<((part + 1) * total / parts)
}
