import @@KIT@@
import CoreML
import XCTest

/// The golden test devicekit generated for @@MODEL_NAME@@ (Product > Test in Xcode, or
/// `xcodebuild test -scheme @@APP@@ -destination 'platform=iOS,id=UDID'`). Golden/ holds golden_face.png, the
/// model input devicekit made from it (golden_input.bin) and golden.json (the reference outputs on that input
/// and the gate verify used). The embedded model must meet the gate with each compute-unit setting.
final class GoldenTests: XCTestCase {
    private func resource(_ name: String) throws -> Data {
        let bundle = Bundle(for: GoldenTests.self)
        let parts = name.split(separator: ".")
        guard let url = bundle.url(forResource: String(parts[0]), withExtension: String(parts[1])) else {
            throw XCTSkip("\(name) is not in the test bundle")
        }
        return try Data(contentsOf: url)
    }

    private func check(_ units: MLComputeUnits, _ label: String) throws {
        let golden = try GoldenCheck(json: try resource("golden.json"))
        if let why = golden.unavailable { throw XCTSkip("no golden data: \(why)") }
        let landmarker = try @@CLASS@@(computeUnits: units)
        let outputs = try landmarker.allOutputs(try landmarker.inputFromBytes(try resource("golden_input.bin")))
        let result = golden.compare(golden.reference.map { outputs[$0.0] ?? [] }, spec: landmarker.spec)
        XCTAssertTrue(golden.passes(result), "\(label): \(result.json()) fails the gate (landmarks \(String(describing: golden.meanPxLimit)) px)")
    }

    func testCpuOnlyMatchesTheReference() throws { try check(.cpuOnly, "cpuOnly") }

    func testAllUnitsMatchTheReference() throws { try check(.all, "all") }

    func testCpuAndNeuralEngineMatchesTheReference() throws { try check(.cpuAndNeuralEngine, "cpuAndNeuralEngine") }
}
