// swift-tools-version:5.9
// The drop-in Swift package: @@CLASS@@ on CoreML with the model as a resource.
import PackageDescription

let package = Package(
    name: "@@KIT@@",
    platforms: [.iOS(.v@@IOS_MAJOR@@), .macOS(.v@@MACOS_MAJOR@@)],  // the model's deployment target (manifest)
    products: [
        .library(name: "@@KIT@@", targets: ["@@KIT@@"])
    ],
    targets: [
        .target(
            name: "@@KIT@@",
            resources: [.copy("Resources/@@MODEL_ASSET@@")]
        )
    ]
)
