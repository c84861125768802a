import Foundation

/// One measured frame (times in microseconds, start on a monotonic clock).
public struct FrameTiming {
    public let frame: Int
    public let startNs: UInt64
    public let preprocessUs: Int
    public let inferenceUs: Int
    public let postprocessUs: Int
    public let totalUs: Int
}

/// Writes a run's result files in DEVICE_PROTOCOL.md's order (frames.csv, device.json,
/// done.json last), each atomically (a temporary file and a rename), with the same bytes
/// as devicekit's Python writer.
public struct BenchmarkWriter {
    public static let protocolVersion = 1
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

    public func writeDevice(model: String, manufacturer: String, os: String, soc: String, delegate: String,
                            threads: Int, thermalStart: Int?, thermalEnd: Int?, loadUs: Int, firstFrameUs: Int,
                            peakRssKb: Int?) throws {
        let fields: [(String, String)] = [
            ("protocol", String(BenchmarkWriter.protocolVersion)),
            ("model", BenchmarkWriter.quote(model)),
            ("manufacturer", BenchmarkWriter.quote(manufacturer)),
            ("os", BenchmarkWriter.quote(os)),
            ("soc", BenchmarkWriter.quote(soc)),
            ("delegate", BenchmarkWriter.quote(delegate)),
            ("threads", String(threads)),
            ("thermal_start", thermalStart.map { String($0) } ?? "null"),
            ("thermal_end", thermalEnd.map { String($0) } ?? "null"),
            ("load_us", String(loadUs)),
            ("first_frame_us", String(firstFrameUs)),
            ("peak_rss_kb", peakRssKb.map { String($0) } ?? "null")
        ]
        try write("device.json", BenchmarkWriter.object(fields))
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
