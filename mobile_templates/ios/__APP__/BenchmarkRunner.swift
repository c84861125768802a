import @@KIT@@
import CoreML
import CoreVideo
import Foundation
import UIKit

/// DEVICE_PROTOCOL.md's benchmark on iOS (protocol 2): DEVICEKIT_RUN, DEVICEKIT_FRAMES, DEVICEKIT_WARMUP,
/// DEVICEKIT_COMPUTE_UNITS and DEVICEKIT_GOLDEN from the environment; model.mlmodelc or model.mlpackage from
/// Documents/devicekit/<RUN>/ (the bundled model when absent); with DEVICEKIT_GOLDEN=1 the model first runs on
/// golden_input.bin there and golden_result.json is written; then frames.csv, device.json, and done.json last.
/// The screen is held on during the run (the caller sets isIdleTimerDisabled). Every failure ends in done.json
/// with status "error".
final class BenchmarkRunner {
    let runId: String
    let frames: Int
    let warmup: Int
    let computeUnits: String
    let golden: Bool

    init(runId: String, frames: Int, warmup: Int, computeUnits: String, golden: Bool = false) {
        self.runId = runId
        self.frames = frames
        self.warmup = warmup
        self.computeUnits = computeUnits
        self.golden = golden
    }

    static func fromEnvironment(_ env: [String: String]) -> BenchmarkRunner? {
        guard let run = env["DEVICEKIT_RUN"] else { return nil }
        return BenchmarkRunner(runId: run, frames: Int(env["DEVICEKIT_FRAMES"] ?? "") ?? 100,
                               warmup: Int(env["DEVICEKIT_WARMUP"] ?? "") ?? 10,
                               computeUnits: env["DEVICEKIT_COMPUTE_UNITS"] ?? "all",
                               golden: env["DEVICEKIT_GOLDEN"] == "1")
    }

    /// Runs the benchmark and returns a line for the screen.
    func run() -> String {
        guard BenchmarkWriter.validRunId(runId),
              let docs = FileManager.default.urls(for: .documentDirectory, in: .userDomainMask).first else {
            return "invalid DEVICEKIT_RUN"
        }
        let dir = docs.appendingPathComponent("devicekit").appendingPathComponent(runId)
        let writer = BenchmarkWriter(runDir: dir)
        var rows: [FrameTiming] = []
        do {
            let units = try BenchmarkRunner.units(computeUnits)
            guard frames >= 1, warmup >= 0 else { throw BenchmarkError.bad("frames must be >= 1 and warmup >= 0") }
            let thermalStart = ProcessInfo.processInfo.thermalState.rawValue
            let landmarker = try BenchmarkRunner.load(dir: dir, units: units)
            landmarker.smoothing = true
            if golden {
                let check = try GoldenCheck(json: try Data(contentsOf: dir.appendingPathComponent("golden.json")))
                let input = try landmarker.inputFromBytes(try Data(contentsOf: dir.appendingPathComponent("golden_input.bin")))
                let outs = try landmarker.allOutputs(input)
                try writer.writeGolden(check.compare(check.reference.map { outs[$0.0] ?? [] }, spec: landmarker.spec))
            }
            let frame = try BenchmarkRunner.syntheticFrame(width: 480, height: 640)
            let crop = CropBox.fromDetection(landmarker.spec, x: 140, y: 220, w: 200, h: 200)
            var firstFrameUs = 0
            for i in 0..<(warmup + frames) {
                let a = DispatchTime.now().uptimeNanoseconds
                let input = try landmarker.prepare(frame, crop: crop)
                let b = DispatchTime.now().uptimeNanoseconds
                let raw = try landmarker.infer(input)
                let c = DispatchTime.now().uptimeNanoseconds
                let decoder = LandmarkDecoder(spec: landmarker.spec)
                _ = decoder.toImage(decoder.dequantize(raw), box: crop)
                let d = DispatchTime.now().uptimeNanoseconds
                if i == 0 { firstFrameUs = Int((d - a) / 1000) }
                if i >= warmup {
                    rows.append(FrameTiming(frame: i - warmup, startNs: a, preprocessUs: Int((b - a) / 1000),
                                            inferenceUs: Int((c - b) / 1000), postprocessUs: Int((d - c) / 1000),
                                            totalUs: Int((d - a) / 1000)))
                }
            }
            try writer.writeFrames(rows)
            #if DEBUG
            let buildType = "debug"
            #else
            let buildType = "release"
            #endif
            // CoreML picks a unit per op among those allowed and does not say which ran: the accelerator recorded
            // is the allowed set, and the note says so.
            let accelerator = ["cpuOnly": "cpu", "cpuAndGPU": "gpu", "cpuAndNeuralEngine": "ane"][computeUnits] ?? "all"
            try writer.writeDevice(DeviceFacts(
                model: BenchmarkRunner.machine(), manufacturer: "Apple", os: "ios " + UIDevice.current.systemVersion,
                soc: BenchmarkRunner.machine(), delegate: computeUnits, threads: 1, thermalStart: thermalStart,
                thermalEnd: ProcessInfo.processInfo.thermalState.rawValue, loadUs: landmarker.loadUs,
                compileUs: landmarker.compileUs, firstFrameUs: firstFrameUs, peakRssKb: BenchmarkRunner.peakRssKb(),
                runtime: "coreml ios " + UIDevice.current.systemVersion, buildType: buildType, accelerator: accelerator,
                acceleratorNote: accelerator == "cpu" ? nil : "CoreML chooses per op among the allowed compute units (\(computeUnits)); it does not report which ran"))
            try writer.writeDone(ok: true, frames: rows.count, error: nil)
            return "benchmark done: \(rows.count) frames"
        } catch {
            try? writer.writeFrames(rows)
            try? writer.writeDone(ok: false, frames: rows.count, error: "\(error)")
            return "benchmark failed: \(error)"
        }
    }

    enum BenchmarkError: Error, CustomStringConvertible {
        case bad(String)
        var description: String {
            switch self {
            case .bad(let s): return s
            }
        }
    }

    static func units(_ name: String) throws -> MLComputeUnits {
        switch name {
        case "all": return .all
        case "cpuOnly": return .cpuOnly
        case "cpuAndGPU": return .cpuAndGPU
        case "cpuAndNeuralEngine": return .cpuAndNeuralEngine
        default: throw BenchmarkError.bad("unknown DEVICEKIT_COMPUTE_UNITS \(name) (all, cpuOnly, cpuAndGPU, cpuAndNeuralEngine)")
        }
    }

    static func load(dir: URL, units: MLComputeUnits) throws -> @@CLASS@@ {
        for name in ["model.mlmodelc", "model.mlpackage"] {
            let url = dir.appendingPathComponent(name)
            if FileManager.default.fileExists(atPath: url.path) {
                return try @@CLASS@@(modelURL: url, computeUnits: units)
            }
        }
        return try @@CLASS@@(computeUnits: units)
    }

    /// A fixed 32BGRA frame: smooth gradients with a brighter disc where the crop is.
    static func syntheticFrame(width: Int, height: Int) throws -> CVPixelBuffer {
        var buffer: CVPixelBuffer?
        let status = CVPixelBufferCreate(kCFAllocatorDefault, width, height, kCVPixelFormatType_32BGRA, nil, &buffer)
        guard status == kCVReturnSuccess, let frame = buffer else { throw BenchmarkError.bad("cannot allocate a frame") }
        CVPixelBufferLockBaseAddress(frame, [])
        defer { CVPixelBufferUnlockBaseAddress(frame, []) }
        guard let base = CVPixelBufferGetBaseAddress(frame) else { throw BenchmarkError.bad("no frame memory") }
        let stride = CVPixelBufferGetBytesPerRow(frame)
        let p = base.assumingMemoryBound(to: UInt8.self)
        for y in 0..<height {
            for x in 0..<width {
                let dx = x - 240
                let dy = y - 330
                let disc = dx * dx + dy * dy < 10000 ? 80 : 0
                let o = y * stride + x * 4
                p[o] = UInt8(min(255, (x + y) * 255 / (width + height) / 2 + disc))
                p[o + 1] = UInt8(min(255, y * 255 / height / 2 + disc))
                p[o + 2] = UInt8(min(255, x * 255 / width / 2 + disc))
                p[o + 3] = 255
            }
        }
        return frame
    }

    /// The hardware model identifier, e.g. iPhone15,2.
    static func machine() -> String {
        var info = utsname()
        uname(&info)
        return withUnsafeBytes(of: &info.machine) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    /// Peak resident memory of this process in kB.
    static func peakRssKb() -> Int? {
        var info = mach_task_basic_info()
        var count = mach_msg_type_number_t(MemoryLayout<mach_task_basic_info>.size / MemoryLayout<natural_t>.size)
        let kr = withUnsafeMutablePointer(to: &info) {
            $0.withMemoryRebound(to: integer_t.self, capacity: Int(count)) {
                task_info(mach_task_self_, task_flavor_t(MACH_TASK_BASIC_INFO), $0, &count)
            }
        }
        return kr == KERN_SUCCESS ? Int(info.resident_size_max / 1024) : nil
    }
}
