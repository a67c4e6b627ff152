import BGADCore

/// Library-wide entry points: version, ABI version, last error, threads.

/// Statically allocated version string (never freed).
private let versionCString: UnsafeMutablePointer<CChar> = strdupStatic(bgadVersionString)

private func strdupStatic(_ s: String) -> UnsafeMutablePointer<CChar> {
    let utf8 = Array(s.utf8CString)
    let p = UnsafeMutablePointer<CChar>.allocate(capacity: utf8.count)
    p.initialize(from: utf8, count: utf8.count)
    return p
}

@_cdecl("bgad_version")
public func bgad_version() -> UnsafePointer<CChar> {
    UnsafePointer(versionCString)
}

@_cdecl("bgad_abi_version")
public func bgad_abi_version() -> Int32 {
    bgadABIVersion
}

@_cdecl("bgad_last_error")
public func bgad_last_error() -> UnsafePointer<CChar>? {
    if let p = pthreadLastError() { return p }
    return UnsafePointer(noErrorCString)
}

private let noErrorCString: UnsafeMutablePointer<CChar> = strdupStatic("")

@_cdecl("bgad_set_num_threads")
public func bgad_set_num_threads(_ n: Int32) -> Int32 {
    guarded { () throws(BGADError) in
        // The engine splits work over at most 64 threads; more only costs OpenBLAS buffers
        // (and under an address-space limit made its next call hang).
        guard n >= 1, n <= 64 else { throw .invalid("number of threads must lie in 1...64, got \(n)") }
        blasThreadCount = Int(n)
    }
}

@_cdecl("bgad_get_num_threads")
public func bgad_get_num_threads() -> Int32 {
    Int32(blasThreadCount)
}

@_cdecl("bgad_gemm_counters")
public func bgad_gemm_counters(_ calls: UnsafeMutablePointer<Int64>?, _ nanoseconds: UnsafeMutablePointer<Int64>?,
                               _ reset: Int32) -> Int32 {
    let (c, ns) = GEMMCounters.read()
    calls?.pointee = Int64(c)
    nanoseconds?.pointee = Int64(ns)
    if reset != 0 { GEMMCounters.reset() }
    return 0
}

private let avx512CString: UnsafeMutablePointer<CChar> = strdupStatic("avx512")
private let avx2CString: UnsafeMutablePointer<CChar> = strdupStatic("avx2")
private let baselineCString: UnsafeMutablePointer<CChar> = strdupStatic("baseline")

@_cdecl("bgad_vector_kernels")
public func bgad_vector_kernels() -> UnsafePointer<CChar> {
    UnsafePointer(VectorISA.useAVX512 ? avx512CString : VectorISA.useAVX2 ? avx2CString : baselineCString)
}
