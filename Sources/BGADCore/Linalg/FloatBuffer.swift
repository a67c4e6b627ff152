#if canImport(Glibc)
import Glibc
#endif

/// An owned, growable, 64-byte aligned buffer of `Float`s: a workspace reused across calls.
///
/// `reserve(_:)` grows the storage only when a larger size is asked for, so hot loops that
/// call it once per step allocate nothing after the first step. The contents are not
/// preserved when the buffer grows. Not thread-safe.
public final class FloatBuffer {
    /// Start of the storage; valid until the next growing `reserve(_:)`.
    public private(set) var pointer: UnsafeMutablePointer<Float>
    /// Number of `Float`s the storage holds.
    public private(set) var capacity: Int

    /// Creates an empty buffer (room for one float).
    public init() {
        capacity = 1
        var raw: UnsafeMutableRawPointer?
        if posix_memalign(&raw, 64, 64) != 0 || raw == nil { fatalError("bgad: out of memory (64 bytes)") }
        pointer = raw!.bindMemory(to: Float.self, capacity: 1)
        pointer.initialize(repeating: 0, count: 1)
    }

    /// Creates a buffer holding `capacity` floats, all zero; fails with `outOfMemory`.
    public convenience init(capacity: Int) throws(BGADError) {
        self.init()
        try reserve(capacity)
    }

    deinit { free(pointer) }

    /// Ensures room for `count` floats and returns the start of the storage; fails with
    /// `outOfMemory` (and keeps the old storage) when the memory cannot be allocated.
    @discardableResult
    public func reserve(_ count: Int) throws(BGADError) -> UnsafeMutablePointer<Float> {
        if count > capacity {
            let (bytes, overflow) = count.multipliedReportingOverflow(by: MemoryLayout<Float>.stride)
            var raw: UnsafeMutableRawPointer?
            if overflow || posix_memalign(&raw, 64, bytes) != 0 || raw == nil {
                throw BGADError(.outOfMemory, "cannot allocate a workspace of \(count) floats")
            }
            free(pointer)
            capacity = count
            pointer = raw!.bindMemory(to: Float.self, capacity: count)
            pointer.initialize(repeating: 0, count: count)
        }
        return pointer
    }
}
