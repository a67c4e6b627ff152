// swift-tools-version:5.9
// bgad: BGAD supervised anomaly detection (CVPR 2023) as a Swift engine behind a C ABI.
//
// Data flow (see docs/ARCHITECTURE.md): images → backbone → flows → scores → metrics.
// - BGADCore: the engine, pure Swift + Glibc (no Foundation).
// - BGADKernelsAVX2: the hot vector kernels of the backbone and the flow again, built for AVX2 + FMA; BGADCore
//   calls them only when CPUID (CCPUFeatures) says the CPU has both.
// - BGADKernelsAVX512: the direct matrix product of the narrow layers (1×1 convolutions, flow
//   subnets), built for AVX-512; BGADCore calls it only when CPUID says the CPU has that set.
// - BGAD: the C ABI only (`@_cdecl` entry points), built as `libbgad.so`.
// Products: `bgad` (libbgad.so, the C ABI) and `BGADCore` (the engine for Swift packages).
// Build the shared library for Python with:
//   swift build -c release -Xswiftc -static-stdlib
import PackageDescription

/// Haswell is the first x86-64 generation with AVX2 and FMA (the `x86-64-v3` level).
#if arch(x86_64)
let avx2Flags = ["-target-cpu", "haswell"]
/// Skylake-AVX512 is the first with the AVX-512 F/BW/DQ/VL set (the `x86-64-v4` level).
let avx512Flags = ["-target-cpu", "skylake-avx512"]
#else
let avx2Flags: [String] = []
let avx512Flags: [String] = []
#endif

let package = Package(
    name: "bgad",
    products: [
        .library(name: "bgad", type: .dynamic, targets: ["BGAD"]),
        // The engine as a Swift library for other packages (e.g. examples/swift): `Detector`,
        // `DetectorConfiguration`, `PNG`, `Image`, `BGADModel`, ... (`import BGADCore`).
        .library(name: "BGADCore", targets: ["BGADCore"]),
    ],
    targets: [
        .systemLibrary(
            name: "CBLAS",
            path: "CInterop/CBLAS",
            providers: [.apt(["libopenblas-dev"])]
        ),
        .systemLibrary(
            name: "CPNG",
            path: "CInterop/CPNG",
            pkgConfig: "libpng",
            providers: [.apt(["libpng-dev"])]
        ),
        // libpng behind setjmp (C): its longjmp errors never cross a Swift frame.
        .target(
            name: "CPNGShim",
            path: "CInterop/PNGShim",
            cSettings: [.unsafeFlags(["-O2"])],
            linkerSettings: [.linkedLibrary("png16")]
        ),
        // The version (top-level VERSION) and ABI version (bgad.h), read by the C compiler.
        .target(
            name: "CBuildInfo",
            path: "CInterop/BuildInfo"
        ),
        // CPUID: which vector instructions the CPU has (C, for the compiler's builtin).
        .target(
            name: "CCPUFeatures",
            path: "CInterop/CPUFeatures",
            cSettings: [.unsafeFlags(["-O2"])]
        ),
        // Hot kernels built for AVX2 + FMA (x86-64-v3); BGADCore calls them only when the
        // CPU has both (checked at run time), so the library still runs on any x86-64.
        .target(
            name: "BGADKernelsAVX2",
            swiftSettings: [.unsafeFlags(["-Ounchecked", "-wmo"] + avx2Flags)]
        ),
        // The direct matrix product of the narrow layers, built for AVX-512 (x86-64-v4);
        // BGADCore calls it only when the CPU and OS support that set (checked at run time).
        .target(
            name: "BGADKernelsAVX512",
            swiftSettings: [.unsafeFlags(["-Ounchecked", "-wmo"] + avx512Flags)]
        ),
        .target(
            name: "BGADCore",
            dependencies: ["CBLAS", "CPNG", "CPNGShim", "CCPUFeatures", "CBuildInfo", "BGADKernelsAVX2", "BGADKernelsAVX512"],
            swiftSettings: [.unsafeFlags(["-Ounchecked", "-wmo"], .when(configuration: .release))]
        ),
        .target(
            name: "BGAD",
            dependencies: ["BGADCore"],
            swiftSettings: [.unsafeFlags(["-wmo"], .when(configuration: .release))]
        ),
        .testTarget(
            name: "BGADCoreTests",
            dependencies: ["BGADCore", "BGADKernelsAVX2", "BGADKernelsAVX512", "BGAD"]
        ),
    ]
)
