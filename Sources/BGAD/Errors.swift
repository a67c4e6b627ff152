import BGADCore
#if canImport(Glibc)
import Glibc
#endif

/// Thread-local last-error message and the guard every entry point runs its body in.
///
/// The message lives in a `malloc`ed C string owned by the thread (a pthread key with a
/// destructor), so the pointer returned by `bgad_last_error` stays valid until the next
/// failing call on the same thread.

private let lastErrorKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key) { ptr in free(ptr) }
    return key
}()

/// Stores `message` as this thread's last error.
func setLastError(_ message: String) {
    let old = pthread_getspecific(lastErrorKey)
    let copy = strdup(message)
    pthread_setspecific(lastErrorKey, copy)
    free(old)
}

/// Status code of success.
let BGAD_OK: Int32 = 0

/// Runs `body`; on a thrown `BGADError` records its message and returns its status code.
/// Returns 0 when `body` completes.
@inline(__always)
func guarded(_ body: () throws(BGADError) -> Void) -> Int32 {
    do {
        try body()
        return BGAD_OK
    } catch {
        setLastError(error.message)
        return error.kind.rawValue
    }
}

/// Fails with `invalidArgument` naming `name` when `pointer` is null.
@inline(__always)
func require<T>(_ pointer: UnsafePointer<T>?, _ name: String) throws(BGADError) -> UnsafePointer<T> {
    guard let p = pointer else { throw .invalid("\(name) is NULL") }
    return p
}

/// Fails with `invalidArgument` naming `name` when `pointer` is null.
@inline(__always)
func require<T>(_ pointer: UnsafeMutablePointer<T>?, _ name: String) throws(BGADError) -> UnsafeMutablePointer<T> {
    guard let p = pointer else { throw .invalid("\(name) is NULL") }
    return p
}

/// Fails unless `value` is a non-negative size; returns it as `Int`.
@inline(__always)
func requireSize(_ value: Int64, _ name: String) throws(BGADError) -> Int {
    guard value >= 0 else { throw .invalid("\(name) must be ≥ 0, got \(value)") }
    return Int(value)
}

/// Product of sizes, failing on overflow (a corrupt or hostile size must not wrap).
func checkedProduct(_ sizes: [Int], _ name: String) throws(BGADError) -> Int {
    var p = 1
    for s in sizes {
        let (r, o) = p.multipliedReportingOverflow(by: s)
        if o { throw .invalid("\(name): size \(sizes) overflows") }
        p = r
    }
    return p
}

/// This thread's last error message, or nil if none was recorded.
func pthreadLastError() -> UnsafePointer<CChar>? {
    guard let p = pthread_getspecific(lastErrorKey) else { return nil }
    return UnsafePointer(p.assumingMemoryBound(to: CChar.self))
}

/// Copies `bytes` into a caller buffer with the two-call pattern (needed always set).
func twoCall<T>(_ bytes: [T], _ buffer: UnsafeMutablePointer<T>?, _ capacity: Int64,
                _ needed: UnsafeMutablePointer<Int64>?, _ what: String) throws(BGADError) {
    try require(needed, "needed").pointee = Int64(bytes.count)
    let cap = try requireSize(capacity, "capacity")
    guard cap >= bytes.count else { throw .invalid("\(what) needs \(bytes.count) bytes, the buffer holds \(cap)") }
    let b = try require(buffer, "buffer")
    bytes.withUnsafeBufferPointer { b.update(from: $0.baseAddress!, count: bytes.count) }
}

/// A C image's sizes (height, width, channels 1 or 3) checked, and its byte count (not 0).
func imageDims(_ h: Int64, _ w: Int64, _ c: Int64) throws(BGADError) -> (Int, Int, Int, Int) {
    let hh = try requireSize(h, "height"), ww = try requireSize(w, "width"), cc = try requireSize(c, "channels")
    guard cc == 1 || cc == 3 else { throw .invalid("channels must be 1 or 3, got \(cc)") }
    let n = try checkedProduct([hh, ww, cc], "image")
    guard n > 0 else { throw .invalid("empty image \(hh)×\(ww)") }
    return (hh, ww, cc, n)
}
