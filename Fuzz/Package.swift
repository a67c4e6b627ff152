// swift-tools-version:5.9
// Fuzz targets of bgad (libFuzzer through swiftc's `-sanitize=fuzzer`): the PNG decoder, the
// model-file reader and the detector-file reader. A package of its own, so the main package
// and `swift test` are untouched; built and run by `make fuzz` (see ../docs/ROBUSTNESS.md):
//
//   swift build -c release --scratch-path ../.build-fuzz \
//     -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library -Xcc -fsanitize=fuzzer-no-link,address
//   ../.build-fuzz/release/FuzzPNG Corpus/png -max_total_time=60
import PackageDescription

let package = Package(
    name: "bgad-fuzz",
    dependencies: [.package(name: "bgad", path: "..")],
    targets: [
        .target(name: "FuzzSupport", dependencies: [.product(name: "BGADCore", package: "bgad")]),
        .executableTarget(name: "FuzzPNG", dependencies: ["FuzzSupport", .product(name: "BGADCore", package: "bgad")]),
        .executableTarget(name: "FuzzModelFile", dependencies: ["FuzzSupport", .product(name: "BGADCore", package: "bgad")]),
        .executableTarget(name: "FuzzDetectorFile", dependencies: ["FuzzSupport", .product(name: "BGADCore", package: "bgad")]),
    ]
)
