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

    /// Creates a buffer holding `capacity` floats, all zero.
    public init(capacity: Int = 0) {
        self.capacity = max(capacity, 1)
        pointer = FloatBuffer.allocate(self.capacity)
        pointer.initialize(repeating: 0, count: self.capacity)
    }

    deinit { free(pointer) }

    /// Ensures room for `count` floats and returns the start of the storage.
    @discardableResult
    public func reserve(_ count: Int) -> UnsafeMutablePointer<Float> {
        if count > capacity {
            free(pointer)
            capacity = count
            pointer = FloatBuffer.allocate(count)
            pointer.initialize(repeating: 0, count: count)
        }
        return pointer
    }

    /// Sets the first `count` floats to zero (after reserving them).
    public func zero(_ count: Int) {
        reserve(count).update(repeating: 0, count: count)
    }

    private static func allocate(_ count: Int) -> UnsafeMutablePointer<Float> {
        var raw: UnsafeMutableRawPointer?
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        if posix_memalign(&raw, 64, bytes) != 0 || raw == nil {
            // Allocation failure of a workspace is not recoverable by the caller's input.
            fatalError("bgad: cannot allocate \(bytes) bytes")
        }
        return raw!.bindMemory(to: Float.self, capacity: max(count, 1))
    }
}
