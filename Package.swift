// swift-tools-version:5.9
// The Swift package for users: `.package(url: "https://github.com/polyracer/polyracer", ...)`,
// then `import PolyRacer`. The Rust library (core + uniffi layer, V8 linked
// statically) is a prebuilt XCFramework attached to a GitHub release
// (release.yml); its URL and checksum below are written by
// ci/swift-package-manifest.py in the release workflow. Until a release has
// written them, the XCFramework comes from a local build instead
// (ci/swift-xcframework.sh on macOS writes bindings-swift/PolyRacerFFI.xcframework).
// Development and tests use bindings-swift/Package.swift.
import PackageDescription

let releasedFFI = (version: "", checksum: "")

let ffi: Target = releasedFFI.checksum.isEmpty
    ? .binaryTarget(name: "PolyRacerFFI", path: "bindings-swift/PolyRacerFFI.xcframework")
    : .binaryTarget(
        name: "PolyRacerFFI",
        url: "https://github.com/polyracer/polyracer/releases/download/v\(releasedFFI.version)/PolyRacerFFI.xcframework.zip",
        checksum: releasedFFI.checksum
    )

let package = Package(
    name: "PolyRacer",
    // macOS only: rusty_v8 142 has no iOS build of V8.
    platforms: [.macOS(.v12)],
    products: [
        .library(name: "PolyRacer", targets: ["PolyRacer"]),
    ],
    targets: [
        ffi,
        .target(
            name: "PolyRacer",
            dependencies: ["PolyRacerFFI"],
            path: "bindings-swift/Sources/PolyRacer",
            linkerSettings: [.linkedLibrary("c++")]
        ),
    ]
)
