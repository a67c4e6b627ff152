import BGADCore

/// Opaque C handles of the engine's objects, the one way: a handle is a retained Swift
/// object (`Unmanaged.passRetained(...).toOpaque()`), looked up without changing its count,
/// and released once by the matching `*_free` entry point (NULL accepted).

/// A new handle holding `object` (one retain, released by `releaseHandle`).
func retainedHandle<T: AnyObject>(_ object: T) -> OpaquePointer {
    OpaquePointer(Unmanaged.passRetained(object).toOpaque())
}

/// The object behind `handle`; a NULL handle is the error "`what` is NULL".
func object<T: AnyObject>(_ handle: OpaquePointer?, _ type: T.Type, _ what: String) throws(BGADError) -> T {
    guard let handle else { throw .invalid("\(what) is NULL") }
    return Unmanaged<T>.fromOpaque(UnsafeRawPointer(handle)).takeUnretainedValue()
}

/// The body of a `*_free` entry point: releases the handle made by `retainedHandle`; NULL
/// is accepted and ignored. Always BGAD_OK.
func releaseHandle<T: AnyObject>(_ handle: OpaquePointer?, _ type: T.Type) -> Int32 {
    guarded { () throws(BGADError) in
        guard let handle else { return }
        Unmanaged<T>.fromOpaque(UnsafeRawPointer(handle)).release()
    }
}
