#if canImport(Glibc)
import Glibc
#endif
import CCPUFeatures

/// Which build of the engine's hot vector kernels runs.
///
/// The backbone's depthwise convolution and its bias/ReLU6 passes, and the flow's coupling
/// (tanh, exp) and condition add + ReLU, exist twice: in `BGADCore`, built for the x86-64
/// baseline (SSE2), and in `BGADKernelsAVX2`, built for AVX2 + FMA. The AVX2 build runs
/// when the CPU has both (CPUID, checked once) and the environment variable `BGAD_SIMD` is
/// not `baseline`. On CPUs with AVX-512 the narrow matrix products also run a direct
/// AVX-512 kernel instead of OpenBLAS (`useAVX512`; `BGAD_SIMD=avx2` keeps OpenBLAS). All
/// give the same results up to float rounding (FMA rounds once where the baseline rounds
/// twice; the direct product sums in another order than OpenBLAS).
public enum VectorISA {
    /// Whether this CPU (and OS) supports AVX2 and FMA.
    public static let cpuHasAVX2FMA: Bool = bgad_cpu_has_avx2_fma() != 0

    /// Whether the AVX2 + FMA kernels are used. Starts as `cpuHasAVX2FMA` unless
    /// `BGAD_SIMD=baseline`; setting it to true on a CPU without them has no effect.
    public static var useAVX2: Bool {
        get { avx2Enabled }
        set { avx2Enabled = newValue && cpuHasAVX2FMA }
    }

    private static var avx2Enabled: Bool = {
        if let v = getenv("BGAD_SIMD"), String(cString: v) == "baseline" { return false }
        return cpuHasAVX2FMA
    }()

    /// Whether this CPU (and OS) supports the AVX-512 set of `BGADKernelsAVX512` (x86-64-v4).
    public static let cpuHasAVX512: Bool = bgad_cpu_has_avx512() != 0

    /// Whether the AVX-512 direct product (`packedGemm`) replaces OpenBLAS for the narrow
    /// layers (the backbone's 1×1 convolutions, the flow blocks' three products). True when
    /// the CPU has the set, the AVX2 kernels are on (`useAVX2`) and `BGAD_SIMD` is neither
    /// `baseline` nor `avx2`. Setting it to true on a CPU without the set has no effect.
    public static var useAVX512: Bool {
        get { avx512Enabled && avx2Enabled }
        set { avx512Enabled = newValue && cpuHasAVX512 }
    }

    private static var avx512Enabled: Bool = {
        if let v = getenv("BGAD_SIMD"), ["baseline", "avx2"].contains(String(cString: v)) { return false }
        return cpuHasAVX512
    }()
}
