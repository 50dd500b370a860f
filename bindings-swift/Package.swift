// swift-tools-version:5.9
// The Swift package `PolyRacer`: `import PolyRacer`.
//
// The Rust library (polyracer core + uniffi layer, V8 linked statically) is a
// binary target: on Apple platforms the XCFramework built by
// `ci/swift-xcframework.sh` (macOS) at PolyRacerFFI.xcframework; on Linux a
// system library, so build it first and point the linker at it:
//   cargo build --release -p polyracer-swift
//   swift build -Xlinker -L../target/release
import PackageDescription

#if os(Linux)
let ffiTarget: Target = .systemLibrary(name: "PolyRacerFFI", path: "Sources/PolyRacerFFI")
let platformLinker: [LinkerSetting] = [.linkedLibrary("dl"), .linkedLibrary("pthread"), .linkedLibrary("m")]
#else
let ffiTarget: Target = .binaryTarget(name: "PolyRacerFFI", path: "PolyRacerFFI.xcframework")
let platformLinker: [LinkerSetting] = [.linkedLibrary("c++")]
#endif

let package = Package(
    name: "PolyRacer",
    // macOS only: rusty_v8 142 has no iOS build of V8.
    platforms: [.macOS(.v12)],
    products: [
        .library(name: "PolyRacer", targets: ["PolyRacer"]),
    ],
    targets: [
        ffiTarget,
        .target(
            name: "PolyRacer",
            dependencies: ["PolyRacerFFI"],
            path: "Sources/PolyRacer",
            linkerSettings: platformLinker
        ),
        .executableTarget(
            name: "PolyRacerQuickstart",
            dependencies: ["PolyRacer"],
            path: "Examples/Quickstart"
        ),
        .testTarget(
            name: "PolyRacerTests",
            dependencies: ["PolyRacer"],
            path: "Tests/PolyRacerTests"
        ),
    ]
)
