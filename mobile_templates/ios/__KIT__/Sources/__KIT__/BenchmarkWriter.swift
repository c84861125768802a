import Foundation

/// One measured frame (times in microseconds, start on a monotonic clock).
public struct FrameTiming {
    public let frame: Int
    public let startNs: UInt64
    public let preprocessUs: Int
    public let inferenceUs: Int
    public let postprocessUs: Int
    public let totalUs: Int

    public init(frame: Int, startNs: UInt64, preprocessUs: Int, inferenceUs: Int, postprocessUs: Int, totalUs: Int) {
        self.frame = frame
        self.startNs = startNs
        self.preprocessUs = preprocessUs
        self.inferenceUs = inferenceUs
        self.postprocessUs = postprocessUs
        self.totalUs = totalUs
    }
}

/// device.json of DEVICE_PROTOCOL.md (protocol 2): runtime ("coreml ios 17.4"), buildType ("release" or
/// "debug"), accelerator (what ran, or the compute units CoreML was allowed) and why it differs from the ask.
public struct DeviceFacts {
    public let model: String
    public let manufacturer: String
    public let os: String
    public let soc: String
    public let delegate: String
    public let threads: Int
    public let thermalStart: Int?
    public let thermalEnd: Int?
    public let loadUs: Int
    public let compileUs: Int
    public let firstFrameUs: Int
    public let peakRssKb: Int?
    public let runtime: String
    public let buildType: String
    public let accelerator: String
    public let acceleratorNote: String?

    public init(model: String, manufacturer: String, os: String, soc: String, delegate: String, threads: Int,
                thermalStart: Int?, thermalEnd: Int?, loadUs: Int, compileUs: Int, firstFrameUs: Int, peakRssKb: Int?,
                runtime: String, buildType: String, accelerator: String, acceleratorNote: String?) {
        self.model = model
        self.manufacturer = manufacturer
        self.os = os
        self.soc = soc
        self.delegate = delegate
        self.threads = threads
        self.thermalStart = thermalStart
        self.thermalEnd = thermalEnd
        self.loadUs = loadUs
        self.compileUs = compileUs
        self.firstFrameUs = firstFrameUs
        self.peakRssKb = peakRssKb
        self.runtime = runtime
        self.buildType = buildType
        self.accelerator = accelerator
        self.acceleratorNote = acceleratorNote
    }
}

/// Writes a run's result files in DEVICE_PROTOCOL.md's order (golden_result.json when asked for, frames.csv,
/// device.json, done.json last), each atomically (a temporary file and a rename), with the same bytes
/// as devicekit's Python writer.
public struct BenchmarkWriter {
    public static let protocolVersion = 2
    public static let framesHeader = "frame,start_ns,preprocess_us,inference_us,postprocess_us,total_us"
    public let runDir: URL

    public init(runDir: URL) {
        self.runDir = runDir
    }

    public func writeFrames(_ rows: [FrameTiming]) throws {
        var s = BenchmarkWriter.framesHeader + "\n"
        for r in rows {
            s += "\(r.frame),\(r.startNs),\(r.preprocessUs),\(r.inferenceUs),\(r.postprocessUs),\(r.totalUs)\n"
        }
        try write("frames.csv", s)
    }

    public func writeDevice(_ d: DeviceFacts) throws {
        var fields: [(String, String)] = [
            ("protocol", String(BenchmarkWriter.protocolVersion)),
            ("model", BenchmarkWriter.quote(d.model)),
            ("manufacturer", BenchmarkWriter.quote(d.manufacturer)),
            ("os", BenchmarkWriter.quote(d.os)),
            ("soc", BenchmarkWriter.quote(d.soc)),
            ("delegate", BenchmarkWriter.quote(d.delegate)),
            ("threads", String(d.threads)),
            ("thermal_start", d.thermalStart.map { String($0) } ?? "null"),
            ("thermal_end", d.thermalEnd.map { String($0) } ?? "null"),
            ("load_us", String(d.loadUs)),
            ("first_frame_us", String(d.firstFrameUs)),
            ("peak_rss_kb", d.peakRssKb.map { String($0) } ?? "null"),
            ("runtime", BenchmarkWriter.quote(d.runtime)),
            ("build_type", BenchmarkWriter.quote(d.buildType)),
            ("accelerator", BenchmarkWriter.quote(d.accelerator)),
            ("compile_us", String(d.compileUs))
        ]
        if let note = d.acceleratorNote { fields.append(("accelerator_note", BenchmarkWriter.quote(note))) }
        try write("device.json", BenchmarkWriter.object(fields))
    }

    /// golden_result.json (protocol 2), before frames.csv when the golden check was asked for.
    public func writeGolden(_ r: GoldenResult) throws {
        try write("golden_result.json", r.json())
    }

    public func writeDone(ok: Bool, frames: Int, error: String?) throws {
        let fields: [(String, String)] = [
            ("protocol", String(BenchmarkWriter.protocolVersion)),
            ("status", BenchmarkWriter.quote(ok ? "ok" : "error")),
            ("frames", String(frames)),
            ("error", error.map { BenchmarkWriter.quote($0) } ?? "null")
        ]
        try write("done.json", BenchmarkWriter.object(fields))
    }

    private func write(_ name: String, _ text: String) throws {
        try FileManager.default.createDirectory(at: runDir, withIntermediateDirectories: true)
        // .atomic writes a temporary file and renames it over the target.
        try Data(text.utf8).write(to: runDir.appendingPathComponent(name), options: .atomic)
    }

    /// A run id as devicekit makes them: [A-Za-z0-9_-]{1,64}.
    public static func validRunId(_ run: String) -> Bool {
        if run.isEmpty || run.count > 64 { return false }
        let allowed = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
        return run.unicodeScalars.allSatisfy { allowed.contains($0) }
    }

    /// JSON object with Python json.dumps' separators.
    public static func object(_ fields: [(String, String)]) -> String {
        return "{" + fields.map { quote($0.0) + ": " + $0.1 }.joined(separator: ", ") + "}"
    }

    /// A JSON string as Python's json.dumps writes it (ASCII only, \uXXXX escapes of UTF-16 units).
    public static func quote(_ s: String) -> String {
        var out = "\""
        for unit in s.utf16 {
            switch unit {
            case 0x22: out += "\\\""
            case 0x5C: out += "\\\\"
            case 0x0A: out += "\\n"
            case 0x0D: out += "\\r"
            case 0x09: out += "\\t"
            case 0x08: out += "\\b"
            case 0x0C: out += "\\f"
            case 0x20...0x7E: out += String(UnicodeScalar(UInt8(unit)))
            default: out += String(format: "\\u%04x", Int(unit))
            }
        }
        return out + "\""
    }
}
