// swift-tools-version:5.9
// An example Swift package that uses bgad's engine as a dependency (by path): it loads a
// saved detector and scores a PNG. See README.md.
import PackageDescription

let package = Package(
    name: "bgad-swift-example",
    dependencies: [
        .package(name: "bgad", path: "../.."),
    ],
    targets: [
        .executableTarget(
            name: "score",
            dependencies: [.product(name: "BGADCore", package: "bgad")],
            path: "Sources/score"
        ),
    ]
)
