/// The module's vector helpers. Everything in `BGADKernelsAVX2` is compiled for AVX2 + FMA
/// (Haswell and later, see Package.swift): nothing in it may run unless the CPU has both.
/// `BGADCore` checks that once (`VectorISA`) and otherwise never calls in here. No function
/// of the module is `@inlinable`, so none can be inlined into code built for the baseline.

@inline(__always)
func ld(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

@inline(__always)
func st(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
}

/// `min(max(v, 0), 6)` per lane as compare-and-mask + `vminps`; NaN lanes become 0.
@inline(__always)
func relu6(_ v: SIMD8<Float>) -> SIMD8<Float> {
    let zero = SIMD8<Float>(repeating: 0), six = SIMD8<Float>(repeating: 6)
    let p = zero.replacing(with: v, where: zero .< v)
    return six.replacing(with: p, where: p .< six)
}
