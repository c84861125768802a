import Foundation

/// What the model expects and produces, as the devicekit manifest describes it
/// (the same fields and meaning as the Android module's ModelSpec.kt).
public struct ModelSpec {
    public let inputWidth: Int
    public let inputHeight: Int
    /// 1 (gray) or 3 (rgb / bgr).
    public let channels: Int
    /// "rgb", "bgr" or "gray": channel order of the model input.
    public let color: String
    /// Layout of the model input: "NCHW" (CoreML from PyTorch) or "NHWC".
    public let inputLayout: String
    /// input = (pixel - mean[c]) / std[c], pixels in 0...255.
    public let mean: [Double]
    public let std: [Double]
    /// "float32" (a normalised MLMultiArray) or "image" (a CoreML ImageType input: the app passes
    /// 0-255 pixels and the model applies scale = 1/std and bias = -mean/std itself).
    public let inputDtype: String
    public let inputScale: Double
    public let inputZeroPoint: Int
    public let numLandmarks: Int
    public let valuesPerLandmark: Int
    public let outputDtype: String
    public let outputScale: Double
    public let outputZeroPoint: Int
    /// "input_pixels" (pixel centres at i + 0.5) or "normalized" (0...1 of the input size).
    public let coords: String
    public let cropEnlarge: Double
    public let cropShiftY: Double
    public let cropSquare: Bool
    public let oneEuroMinCutoff: Double
    public let oneEuroBeta: Double
    public let oneEuroDCutoff: Double

    /// A host app can describe its own model (the generated one is ModelConfig.spec).
    public init(inputWidth: Int,
                inputHeight: Int,
                channels: Int,
                color: String,
                inputLayout: String,
                mean: [Double],
                std: [Double],
                inputDtype: String,
                inputScale: Double,
                inputZeroPoint: Int,
                numLandmarks: Int,
                valuesPerLandmark: Int,
                outputDtype: String,
                outputScale: Double,
                outputZeroPoint: Int,
                coords: String,
                cropEnlarge: Double,
                cropShiftY: Double,
                cropSquare: Bool,
                oneEuroMinCutoff: Double,
                oneEuroBeta: Double,
                oneEuroDCutoff: Double) {
        self.inputWidth = inputWidth
        self.inputHeight = inputHeight
        self.channels = channels
        self.color = color
        self.inputLayout = inputLayout
        self.mean = mean
        self.std = std
        self.inputDtype = inputDtype
        self.inputScale = inputScale
        self.inputZeroPoint = inputZeroPoint
        self.numLandmarks = numLandmarks
        self.valuesPerLandmark = valuesPerLandmark
        self.outputDtype = outputDtype
        self.outputScale = outputScale
        self.outputZeroPoint = outputZeroPoint
        self.coords = coords
        self.cropEnlarge = cropEnlarge
        self.cropShiftY = cropShiftY
        self.cropSquare = cropSquare
        self.oneEuroMinCutoff = oneEuroMinCutoff
        self.oneEuroBeta = oneEuroBeta
        self.oneEuroDCutoff = oneEuroDCutoff
    }
}

/// Maps a face detector's eye and mouth keypoints (or its box) to the box of the detector the crop policy was
/// written for (OpenCV's Haar cascade): the same arithmetic as the Android module's DetectorMap.kt, with the
/// constants the manifest carries (preprocess.crop.detector_maps, fitted on devicekit's face-data cache).
public struct DetectorMap {
    public let kind: String
    public let k: Double
    public let dx: Double
    public let dy: Double

    public init(kind: String, k: Double, dx: Double, dy: Double) {
        self.kind = kind
        self.k = k
        self.dx = dx
        self.dy = dy
    }

    /// The Haar-equivalent square box (x, y, w, h) for two eye centres and the mouth centre (image pixels).
    public func fromKeypoints(leftEye: (Double, Double), rightEye: (Double, Double), mouth: (Double, Double)) -> (Double, Double, Double, Double) {
        let ex = (leftEye.0 + rightEye.0) / 2
        let ey = (leftEye.1 + rightEye.1) / 2
        let eyes = hypot(rightEye.0 - leftEye.0, rightEye.1 - leftEye.1)
        let toMouth = hypot(mouth.0 - ex, mouth.1 - ey)
        return square(ex, ey, (eyes + toMouth) / 2)
    }

    /// The Haar-equivalent square box for a detector box (x, y, w, h).
    public func fromBox(x: Double, y: Double, w: Double, h: Double) -> (Double, Double, Double, Double) {
        return square(x + w / 2, y + h / 2, max(w, h))
    }

    private func square(_ ax: Double, _ ay: Double, _ s: Double) -> (Double, Double, Double, Double) {
        let side = k * s
        let cx = ax + dx * s
        let cy = ay + dy * s
        return (cx - side / 2, cy - side / 2, side, side)
    }
}

/// A square face crop in image pixels (pixel centres at i + 0.5), mapped onto the model
/// input with one uniform scale k = max(inputWidth, inputHeight) / size, centred.
public struct CropBox {
    public let cx: Double
    public let cy: Double
    public let size: Double
    public let angle: Double

    public init(cx: Double, cy: Double, size: Double, angle: Double = 0) {
        self.cx = cx
        self.cy = cy
        self.size = max(size, 1e-6)
        self.angle = angle
    }

    public func scale(_ spec: ModelSpec) -> Double {
        return Double(max(spec.inputWidth, spec.inputHeight)) / size
    }

    /// Image pixel -> model-input pixel.
    public func toInput(_ spec: ModelSpec, x: Double, y: Double) -> (Double, Double) {
        let k = scale(spec)
        let c = cos(angle)
        let s = sin(angle)
        let dx = x - cx
        let dy = y - cy
        return ((c * dx + s * dy) * k + Double(spec.inputWidth) / 2, (-s * dx + c * dy) * k + Double(spec.inputHeight) / 2)
    }

    /// Model-input pixel -> image pixel (the exact inverse of toInput).
    public func toImage(_ spec: ModelSpec, u: Double, v: Double) -> (Double, Double) {
        let k = scale(spec)
        let c = cos(angle)
        let s = sin(angle)
        let du = (u - Double(spec.inputWidth) / 2) / k
        let dv = (v - Double(spec.inputHeight) / 2) / k
        return (cx + c * du - s * dv, cy + s * du + c * dv)
    }

    /// The crop for a face box (x, y, w, h in image pixels, top-left origin) under the manifest's crop policy.
    public static func fromDetection(_ spec: ModelSpec, x: Double, y: Double, w: Double, h: Double) -> CropBox {
        let side = spec.cropEnlarge * (spec.cropSquare ? max(w, h) : w)
        return CropBox(cx: x + w / 2, cy: y + h / 2 + spec.cropShiftY * h, size: side)
    }

    /// The crop for the next frame from this frame's landmarks (x0, y0, x1, y1, ... in image pixels).
    public static func fromLandmarks(_ spec: ModelSpec, points: [Float]) -> CropBox {
        var x0 = Double.greatestFiniteMagnitude
        var y0 = Double.greatestFiniteMagnitude
        var x1 = -Double.greatestFiniteMagnitude
        var y1 = -Double.greatestFiniteMagnitude
        var i = 0
        while i + 1 < points.count {
            x0 = min(x0, Double(points[i]))
            x1 = max(x1, Double(points[i]))
            y0 = min(y0, Double(points[i + 1]))
            y1 = max(y1, Double(points[i + 1]))
            i += 2
        }
        let side = max(1.25 * (x1 - x0), 1)
        let cx = (x0 + x1) / 2
        let cy = (y0 + y1) / 2 - 0.145 * side
        return fromDetection(spec, x: cx - side / 2, y: cy - side / 2, w: side, h: side)
    }
}
