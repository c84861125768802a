import Foundation

/// One output's error against the golden reference.
public struct OutputError {
    public let name: String
    public let maxAbs: Double
    public let relL2: Double

    public init(name: String, maxAbs: Double, relL2: Double) {
        self.name = name
        self.maxAbs = maxAbs
        self.relL2 = relL2
    }
}

/// golden_result.json of DEVICE_PROTOCOL.md (protocol 2): this device's outputs against golden.json.
public struct GoldenResult {
    public let outputs: [OutputError]
    public let landmarksPxMean: Double?
    public let landmarksPxMax: Double?

    public init(outputs: [OutputError], landmarksPxMean: Double?, landmarksPxMax: Double?) {
        self.outputs = outputs
        self.landmarksPxMean = landmarksPxMean
        self.landmarksPxMax = landmarksPxMax
    }

    private static func num(_ x: Double?) -> String {
        guard let x = x, x.isFinite else { return "null" }
        return "\(x)"
    }

    public func json() -> String {
        let outs = "[" + outputs.map {
            BenchmarkWriter.object([("name", BenchmarkWriter.quote($0.name)), ("max_abs", GoldenResult.num($0.maxAbs)),
                                    ("rel_l2", GoldenResult.num($0.relL2))])
        }.joined(separator: ", ") + "]"
        return BenchmarkWriter.object([("protocol", String(BenchmarkWriter.protocolVersion)), ("outputs", outs),
                                       ("landmarks_px_mean", GoldenResult.num(landmarksPxMean)),
                                       ("landmarks_px_max", GoldenResult.num(landmarksPxMax))])
    }
}

/// The golden check (the same arithmetic as GoldenCheck.kt): errors of every output, and the landmarks'
/// distance in model-input pixels, against golden.json; golden.json's gate says what passes.
public struct GoldenCheck {
    public let doc: [String: Any]

    public enum GoldenError: Error, CustomStringConvertible {
        case bad(String)
        public var description: String {
            switch self {
            case .bad(let s): return s
            }
        }
    }

    public init(json: Data) throws {
        guard let doc = try JSONSerialization.jsonObject(with: json) as? [String: Any] else {
            throw GoldenError.bad("golden.json is not an object")
        }
        self.doc = doc
    }

    /// Why there is no golden data (the model could not be run when it was packaged), or nil.
    public var unavailable: String? { doc["unavailable"] as? String }

    public var meanPxLimit: Double? { (doc["gate"] as? [String: Any])?["landmarks_mean_px"] as? Double }
    public var relL2Limit: Double? { (doc["gate"] as? [String: Any])?["rel_l2"] as? Double }

    /// The crop of golden_face.png that golden_input.bin was made from.
    public var crop: CropBox? {
        guard let c = (doc["image"] as? [String: Any])?["crop"] as? [Double], c.count == 4 else { return nil }
        return CropBox(cx: c[0], cy: c[1], size: c[2], angle: c[3])
    }

    /// The reference outputs, by name, in golden.json's order.
    public var reference: [(String, [Float])] {
        let outs = doc["outputs"] as? [[String: Any]] ?? []
        return outs.map { ($0["name"] as? String ?? "output", ($0["values"] as? [Double] ?? []).map { Float($0) }) }
    }

    /// Compare [device] outputs (same order as golden.json, floats) with the reference.
    public func compare(_ device: [[Float]], spec: ModelSpec) -> GoldenResult {
        let ref = reference
        var errs: [OutputError] = []
        for (i, (name, r)) in ref.enumerated() where i < device.count {
            let g = device[i]
            var maxAbs = 0.0, num = 0.0, den = 0.0
            for k in 0..<min(r.count, g.count) {
                let d = Double(g[k]) - Double(r[k])
                maxAbs = max(maxAbs, abs(d))
                num += d * d
                den += Double(r[k]) * Double(r[k])
            }
            errs.append(OutputError(name: name, maxAbs: maxAbs, relL2: den > 0 ? sqrt(num) / sqrt(den) : 0))
        }
        let lmIndex = (doc["landmarks"] as? [String: Any])?["output"] as? Int ?? 0
        guard lmIndex < ref.count, lmIndex < device.count else {
            return GoldenResult(outputs: errs, landmarksPxMean: nil, landmarksPxMax: nil)
        }
        let r = ref[lmIndex].1
        let g = device[lmIndex]
        let v = spec.valuesPerLandmark
        let sx = spec.coords == "normalized" ? Double(spec.inputWidth) : 1
        let sy = spec.coords == "normalized" ? Double(spec.inputHeight) : 1
        let n = min(r.count, g.count) / v
        var sum = 0.0, worst = 0.0
        for i in 0..<n {
            let dx = (Double(g[i * v]) - Double(r[i * v])) * sx
            let dy = (Double(g[i * v + 1]) - Double(r[i * v + 1])) * sy
            let d = sqrt(dx * dx + dy * dy)
            sum += d
            worst = max(worst, d)
        }
        return GoldenResult(outputs: errs, landmarksPxMean: n > 0 ? sum / Double(n) : nil, landmarksPxMax: n > 0 ? worst : nil)
    }

    /// True when [r] meets golden.json's gate.
    public func passes(_ r: GoldenResult) -> Bool {
        if let px = meanPxLimit { return (r.landmarksPxMean ?? .infinity) <= px }
        if let rel = relL2Limit { return r.outputs.allSatisfy { $0.relL2 <= rel } }
        return true
    }
}
