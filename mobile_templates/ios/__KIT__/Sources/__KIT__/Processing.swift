import Foundation

/// Crop, resize, colour order and normalisation exactly as the manifest says (the same
/// arithmetic as the Android module's Preprocess.kt): bilinear sampling at every input
/// pixel centre, black outside the frame, n x n samples averaged when the crop shrinks
/// the face by more than 2x, OpenCV's fixed-point BT.601 weights for gray.
public final class Preprocessor {
    public let spec: ModelSpec
    /// 0-255 pixel values of the last crop, HWC in the model's colour order.
    public private(set) var plane: [Float]
    private var scratch: [Float]

    public init(spec: ModelSpec) {
        self.spec = spec
        self.plane = [Float](repeating: 0, count: spec.inputWidth * spec.inputHeight * spec.channels)
        self.scratch = [Float](repeating: 0, count: spec.channels)
    }

    /// Samples the crop from a BGRA frame (kCVPixelFormatType_32BGRA rows of bytesPerRow bytes).
    public func sample(bgra: UnsafePointer<UInt8>, width: Int, height: Int, bytesPerRow: Int, box: CropBox) {
        let w = spec.inputWidth
        let h = spec.inputHeight
        let ch = spec.channels
        let k = box.scale(spec)
        let n = k < 0.5 ? Int((0.5 / k).rounded(.up)) : 1
        var px = [Float](repeating: 0, count: ch)
        var acc = [Float](repeating: 0, count: ch)
        for v in 0..<h {
            for u in 0..<w {
                for c in 0..<ch { acc[c] = 0 }
                for sy in 0..<n {
                    for sx in 0..<n {
                        let p = box.toImage(spec, u: Double(u) + (Double(sx) + 0.5) / Double(n), v: Double(v) + (Double(sy) + 0.5) / Double(n))
                        bilinear(bgra, width, height, bytesPerRow, p.0 - 0.5, p.1 - 0.5, &px)
                        for c in 0..<ch { acc[c] += px[c] }
                    }
                }
                let base = (v * w + u) * ch
                for c in 0..<ch { plane[base + c] = acc[c] / Float(n * n) }
            }
        }
    }

    private func channels(_ p: UnsafePointer<UInt8>, _ out: inout [Float]) {
        let b = Int(p[0])
        let g = Int(p[1])
        let r = Int(p[2])
        switch spec.color {
        case "gray":
            out[0] = Float((r * 9798 + g * 19235 + b * 3735 + 16384) >> 15)
        case "rgb":
            out[0] = Float(r)
            out[1] = Float(g)
            out[2] = Float(b)
        default:
            out[0] = Float(b)
            out[1] = Float(g)
            out[2] = Float(r)
        }
    }

    private func bilinear(_ img: UnsafePointer<UInt8>, _ width: Int, _ height: Int, _ stride: Int,
                          _ x: Double, _ y: Double, _ out: inout [Float]) {
        let x0 = Int(x.rounded(.down))
        let y0 = Int(y.rounded(.down))
        let fx = Float(x - Double(x0))
        let fy = Float(y - Double(y0))
        for c in 0..<out.count { out[c] = 0 }
        for dy in 0...1 {
            let yy = y0 + dy
            if yy < 0 || yy >= height { continue }
            let wy = dy == 0 ? 1 - fy : fy
            for dx in 0...1 {
                let xx = x0 + dx
                if xx < 0 || xx >= width { continue }
                let wgt = wy * (dx == 0 ? 1 - fx : fx)
                if wgt == 0 { continue }
                channels(img + yy * stride + xx * 4, &scratch)
                for c in 0..<out.count { out[c] += wgt * scratch[c] }
            }
        }
    }

    /// (pixel - mean) / std, the manifest's formula.
    public func normalize(_ pixel: Float, _ c: Int) -> Float {
        return (pixel - Float(spec.mean[c])) / Float(spec.std[c])
    }

    /// Quantised value of a normalised input: x / scale + zeroPoint in Float, rounded half to even, saturated.
    /// One rule everywhere: devicekit's Python runner, Preprocess.kt and the web app's pipeline.js round the same way.
    public func quantize(_ x: Float) -> Int {
        let v = x / Float(spec.inputScale) + Float(spec.inputZeroPoint)
        let q = Int(v.rounded(.toNearestOrEven))
        let lo = spec.inputDtype == "int8" ? -128 : 0
        let hi = spec.inputDtype == "int8" ? 127 : 255
        return min(hi, max(lo, q))
    }

    /// The normalised input in the model's layout (NCHW or NHWC), as floats.
    public func normalizedInput() -> [Float] {
        let hw = spec.inputWidth * spec.inputHeight
        let ch = spec.channels
        var out = [Float](repeating: 0, count: hw * ch)
        for i in 0..<hw {
            for c in 0..<ch {
                let dst = spec.inputLayout == "NHWC" ? i * ch + c : c * hw + i
                out[dst] = normalize(plane[i * ch + c], c)
            }
        }
        return out
    }
}

/// Output decoding: dequantise, take x and y of every landmark, convert the manifest's
/// coordinate convention to input pixels, map back to image pixels through the crop.
/// (Named LandmarkDecoder: a `Decoder` would shadow Swift.Decoder in every file that imports the kit.)
public struct LandmarkDecoder {
    public let spec: ModelSpec

    public init(spec: ModelSpec) {
        self.spec = spec
    }

    public func dequantize(_ raw: [Float]) -> [Float] {
        if spec.outputDtype == "float32" { return raw }
        return raw.map { Float((Double($0) - Double(spec.outputZeroPoint)) * spec.outputScale) }
    }

    public func toImage(_ values: [Float], box: CropBox) -> [Float] {
        let sx = spec.coords == "normalized" ? Double(spec.inputWidth) : 1
        let sy = spec.coords == "normalized" ? Double(spec.inputHeight) : 1
        var pts = [Float](repeating: 0, count: spec.numLandmarks * 2)
        for i in 0..<spec.numLandmarks {
            let u = Double(values[i * spec.valuesPerLandmark]) * sx
            let v = Double(values[i * spec.valuesPerLandmark + 1]) * sy
            let p = box.toImage(spec, u: u, v: v)
            pts[2 * i] = Float(p.0)
            pts[2 * i + 1] = Float(p.1)
        }
        return pts
    }
}

/// The 1-euro filter (Casiez, Roussel, Vogel, CHI 2012) on every coordinate; timestamps in seconds.
public final class OneEuroFilter {
    public let minCutoff: Double
    public let beta: Double
    public let dCutoff: Double
    private var prevX: [Double] = []
    private var prevDx: [Double] = []
    private var prevT: Double = 0

    public init(minCutoff: Double, beta: Double, dCutoff: Double) {
        self.minCutoff = minCutoff
        self.beta = beta
        self.dCutoff = dCutoff
    }

    public static func alpha(_ cutoff: Double, _ dt: Double) -> Double {
        let tau = 1 / (2 * Double.pi * cutoff)
        return 1 / (1 + tau / dt)
    }

    public func filter(_ x: [Float], t: Double) -> [Float] {
        if prevX.count != x.count || t <= prevT {
            prevX = x.map { Double($0) }
            prevDx = [Double](repeating: 0, count: x.count)
            prevT = t
            return x
        }
        let dt = t - prevT
        let ad = OneEuroFilter.alpha(dCutoff, dt)
        var out = [Float](repeating: 0, count: x.count)
        for i in 0..<x.count {
            let dx = (Double(x[i]) - prevX[i]) / dt
            let edx = prevDx[i] + ad * (dx - prevDx[i])
            let a = OneEuroFilter.alpha(minCutoff + beta * abs(edx), dt)
            let v = prevX[i] + a * (Double(x[i]) - prevX[i])
            prevX[i] = v
            prevDx[i] = edx
            out[i] = Float(v)
        }
        prevT = t
        return out
    }

    public func reset() {
        prevX = []
        prevDx = []
        prevT = 0
    }
}
