@testable import BGADCore

/// The kernel builds this CPU can run (`VectorISA.useAVX2` values): the baseline always,
/// AVX2 + FMA when the CPU has them.
var kernelBuilds: [Bool] { VectorISA.cpuHasAVX2FMA ? [false, true] : [false] }

/// Runs `body` with the AVX2 kernels switched on or off, restoring the setting after.
func withKernels<T>(avx2: Bool, _ body: () throws -> T) rethrows -> T {
    let saved = VectorISA.useAVX2
    defer { VectorISA.useAVX2 = saved }
    VectorISA.useAVX2 = avx2
    return try body()
}
