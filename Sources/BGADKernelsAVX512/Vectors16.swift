/// The module's 16-float loads and stores (unaligned), shared by the depthwise and coupling
/// kernels. `PackedGemmAVX512.swift` keeps its own generic pair private: made visible to
/// the module, the stdlib calls inside it were no longer inlined there (4× slower product).

/// 16 floats at `p`.
@_transparent
func load16(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
}

/// Stores `v` at `p`.
@_transparent
func store16(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD16<Float>.self)
}
