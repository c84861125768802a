import CoreML
import CoreVideo
import CryptoKit
import Foundation
import Vision

/// The drop-in landmarker for @@MODEL_NAME@@ (@@NUM_LANDMARKS@@ landmarks) on CoreML.
///
///     let landmarker = try @@CLASS@@(computeUnits: .all)
///     if let result = try landmarker.process(pixelBuffer, timestamp: t) { draw(result.landmarks) }
///
/// Vision finds the face, the manifest's crop policy turns it into a crop, and the
/// preprocessing, decoding and 1-euro filter follow the manifest (ModelConfig.spec).
public final class @@CLASS@@ {
    public struct Result {
        /// Landmarks in image pixels (top-left origin): x0, y0, x1, y1, ...
        public let landmarks: [Float]
        public let crop: CropBox
        public let preprocessUs: Int
        public let inferenceUs: Int
        public let postprocessUs: Int

        public init(landmarks: [Float], crop: CropBox, preprocessUs: Int, inferenceUs: Int, postprocessUs: Int) {
            self.landmarks = landmarks
            self.crop = crop
            self.preprocessUs = preprocessUs
            self.inferenceUs = inferenceUs
            self.postprocessUs = postprocessUs
        }
    }

    public enum LandmarkerError: Error, CustomStringConvertible {
        case missingModel(String)
        case badFrame(String)
        case badOutput(String)

        public var description: String {
            switch self {
            case .missingModel(let s): return "model not found: \(s)"
            case .badFrame(let s): return "unsupported frame: \(s)"
            case .badOutput(let s): return "unexpected model output: \(s)"
            }
        }
    }

    public let spec: ModelSpec
    public let model: MLModel
    public let computeUnits: MLComputeUnits
    /// Microseconds spent compiling an .mlpackage on this device (0 when the compiled cache was used).
    public let compileUs: Int
    /// Microseconds spent loading the compiled model (MLModel(contentsOf:)), compilation excluded.
    public let loadUs: Int
    public var smoothing = true
    private let preprocessor: Preprocessor
    private let decoder: LandmarkDecoder
    private let filter: OneEuroFilter
    private var previous: [Float]?

    /// The bundled model (compiled on first use and cached in Caches/ under the manifest's sha256).
    public convenience init(computeUnits: MLComputeUnits = .all) throws {
        guard let url = Bundle.module.url(forResource: ModelConfig.modelResource, withExtension: nil) else {
            throw LandmarkerError.missingModel(ModelConfig.modelResource)
        }
        try self.init(modelURL: url, computeUnits: computeUnits, cacheKey: ModelConfig.modelSHA256)
    }

    /// A model at modelURL: a compiled .mlmodelc, or an .mlpackage compiled here. The compiled cache is keyed on
    /// the content actually loaded (a pushed benchmark model never replaces the bundled one's cache entry).
    public init(modelURL: URL, computeUnits: MLComputeUnits = .all, spec: ModelSpec = ModelConfig.spec,
                cacheKey: String? = nil) throws {
        let config = MLModelConfiguration()
        config.computeUnits = computeUnits
        let t0 = DispatchTime.now().uptimeNanoseconds
        var compiled = modelURL
        if modelURL.pathExtension != "mlmodelc" {
            compiled = try @@CLASS@@.compiledURL(for: modelURL, key: try cacheKey ?? @@CLASS@@.contentKey(modelURL))
        }
        let t1 = DispatchTime.now().uptimeNanoseconds
        self.model = try MLModel(contentsOf: compiled, configuration: config)
        let t2 = DispatchTime.now().uptimeNanoseconds
        self.compileUs = Int((t1 - t0) / 1000)
        self.loadUs = Int((t2 - t1) / 1000)
        self.computeUnits = computeUnits
        self.spec = spec
        self.preprocessor = Preprocessor(spec: spec)
        self.decoder = LandmarkDecoder(spec: spec)
        self.filter = OneEuroFilter(minCutoff: spec.oneEuroMinCutoff, beta: spec.oneEuroBeta, dCutoff: spec.oneEuroDCutoff)
    }

    /// SHA-256 over an .mlpackage's files (relative path and bytes, in path order): the cache key of its compilation.
    public static func contentKey(_ package: URL) throws -> String {
        var hasher = SHA256()
        let root = package.standardizedFileURL.path
        let files = (FileManager.default.enumerator(at: package, includingPropertiesForKeys: [.isRegularFileKey])?
            .compactMap { $0 as? URL } ?? [])
            .filter { (try? $0.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true }
            .sorted { $0.path < $1.path }
        for f in files {
            hasher.update(data: Data(f.standardizedFileURL.path.dropFirst(root.count).utf8))
            hasher.update(data: try Data(contentsOf: f))
        }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }

    private static func compiledURL(for package: URL, key: String) throws -> URL {
        let caches = try FileManager.default.url(for: .cachesDirectory, in: .userDomainMask, appropriateFor: nil, create: true)
        let target = caches.appendingPathComponent("devicekit-\(key.prefix(32)).mlmodelc")
        if FileManager.default.fileExists(atPath: target.path) {
            return target
        }
        let tmp = try MLModel.compileModel(at: package)
        try? FileManager.default.removeItem(at: target)
        try FileManager.default.moveItem(at: tmp, to: target)
        return target
    }

    /// The largest face's crop-policy box (x, y, w, h in pixels, top-left origin), or nil. Vision's eye and mouth
    /// keypoints go through ModelConfig.keypointMap (fitted on devicekit's face-data cache) to the Haar-equivalent
    /// box the crop policy was written for; Vision's own box sits elsewhere on the face.
    public func detectFace(_ frame: CVPixelBuffer) throws -> (Double, Double, Double, Double)? {
        let request = VNDetectFaceLandmarksRequest()
        try VNImageRequestHandler(cvPixelBuffer: frame, orientation: .up, options: [:]).perform([request])
        let faces = request.results ?? []
        guard let face = faces.max(by: { $0.boundingBox.width * $0.boundingBox.height < $1.boundingBox.width * $1.boundingBox.height }) else {
            return nil
        }
        let size = CGSize(width: CVPixelBufferGetWidth(frame), height: CVPixelBufferGetHeight(frame))
        func centre(_ region: VNFaceLandmarkRegion2D?) -> (Double, Double)? {
            guard let pts = region?.pointsInImage(imageSize: size), !pts.isEmpty else { return nil }
            let x = pts.map { Double($0.x) }.reduce(0, +) / Double(pts.count)
            let y = pts.map { Double($0.y) }.reduce(0, +) / Double(pts.count)
            return (x, Double(size.height) - y)  // Vision's origin is bottom-left
        }
        if let l = centre(face.landmarks?.leftPupil), let r = centre(face.landmarks?.rightPupil),
           let m = centre(face.landmarks?.outerLips) {
            return ModelConfig.keypointMap.fromKeypoints(leftEye: l, rightEye: r, mouth: m)
        }
        let w = Double(size.width)
        let h = Double(size.height)
        let b = face.boundingBox  // no keypoints: Vision's box, unmapped
        return (Double(b.minX) * w, (1 - Double(b.maxY)) * h, Double(b.width) * w, Double(b.height) * h)
    }

    /// Detects (or tracks from the previous landmarks) and returns landmarks, or nil without a face.
    public func process(_ frame: CVPixelBuffer, timestamp: Double, redetect: Bool = false) throws -> Result? {
        let crop: CropBox
        if let prev = previous, !redetect {
            crop = CropBox.fromLandmarks(spec, points: prev)
        } else if let f = try detectFace(frame) {
            crop = CropBox.fromDetection(spec, x: f.0, y: f.1, w: f.2, h: f.3)
        } else {
            previous = nil
            filter.reset()
            return nil
        }
        let result = try landmarks(frame, crop: crop, timestamp: timestamp)
        previous = result.landmarks
        return result
    }

    /// Landmarks for an explicit crop of a 32BGRA frame.
    public func landmarks(_ frame: CVPixelBuffer, crop: CropBox, timestamp: Double) throws -> Result {
        let t0 = DispatchTime.now().uptimeNanoseconds
        let input = try prepare(frame, crop: crop)
        let t1 = DispatchTime.now().uptimeNanoseconds
        let raw = try infer(input)
        let t2 = DispatchTime.now().uptimeNanoseconds
        var pts = decoder.toImage(decoder.dequantize(raw), box: crop)
        if smoothing { pts = filter.filter(pts, t: timestamp) }
        let t3 = DispatchTime.now().uptimeNanoseconds
        return Result(landmarks: pts, crop: crop, preprocessUs: Int((t1 - t0) / 1000),
                      inferenceUs: Int((t2 - t1) / 1000), postprocessUs: Int((t3 - t2) / 1000))
    }

    /// Crop a 32BGRA frame into the model's input: a normalised array, or for a CoreML image input
    /// (spec.inputDtype "image", the model applies scale and bias itself) a pixel buffer of 0-255 values.
    public func prepare(_ frame: CVPixelBuffer, crop: CropBox) throws -> MLFeatureValue {
        guard CVPixelBufferGetPixelFormatType(frame) == kCVPixelFormatType_32BGRA else {
            throw LandmarkerError.badFrame("pixel format must be 32BGRA")
        }
        CVPixelBufferLockBaseAddress(frame, .readOnly)
        defer { CVPixelBufferUnlockBaseAddress(frame, .readOnly) }
        guard let base = CVPixelBufferGetBaseAddress(frame) else {
            throw LandmarkerError.badFrame("no pixel data")
        }
        let ptr = UnsafePointer<UInt8>(base.assumingMemoryBound(to: UInt8.self))
        preprocessor.sample(bgra: ptr, width: CVPixelBufferGetWidth(frame), height: CVPixelBufferGetHeight(frame),
                            bytesPerRow: CVPixelBufferGetBytesPerRow(frame), box: crop)
        if spec.inputDtype == "image" {
            return MLFeatureValue(pixelBuffer: try makePixelBuffer(preprocessor.plane))
        }
        return MLFeatureValue(multiArray: try makeInput(preprocessor.normalizedInput()))
    }

    /// An input-sized pixel buffer (OneComponent8 for gray, 32BGRA otherwise) from 0-255 HWC values in the model's colour order.
    public func makePixelBuffer(_ plane: [Float]) throws -> CVPixelBuffer {
        let gray = spec.channels == 1
        var buffer: CVPixelBuffer?
        let format = gray ? kCVPixelFormatType_OneComponent8 : kCVPixelFormatType_32BGRA
        let attrs = [kCVPixelBufferIOSurfacePropertiesKey as String: [String: Any]()] as CFDictionary
        guard CVPixelBufferCreate(kCFAllocatorDefault, spec.inputWidth, spec.inputHeight, format, attrs, &buffer) == kCVReturnSuccess,
              let out = buffer else {
            throw LandmarkerError.badFrame("cannot allocate the model's input buffer")
        }
        CVPixelBufferLockBaseAddress(out, [])
        defer { CVPixelBufferUnlockBaseAddress(out, []) }
        guard let base = CVPixelBufferGetBaseAddress(out) else {
            throw LandmarkerError.badFrame("no input buffer memory")
        }
        let stride = CVPixelBufferGetBytesPerRow(out)
        let p = base.assumingMemoryBound(to: UInt8.self)
        func byte(_ v: Float) -> UInt8 { return UInt8(max(0, min(255, v.rounded(.toNearestOrEven)))) }  // the one rounding rule
        for y in 0..<spec.inputHeight {
            for x in 0..<spec.inputWidth {
                let i = (y * spec.inputWidth + x) * spec.channels
                if gray {
                    p[y * stride + x] = byte(plane[i])
                } else {
                    let rgb = spec.color == "rgb"
                    let o = y * stride + x * 4
                    p[o] = byte(rgb ? plane[i + 2] : plane[i])
                    p[o + 1] = byte(plane[i + 1])
                    p[o + 2] = byte(rgb ? plane[i] : plane[i + 2])
                    p[o + 3] = 255
                }
            }
        }
        return out
    }

    /// The model input array from normalised values in the model's layout.
    public func makeInput(_ values: [Float]) throws -> MLMultiArray {
        let shape: [NSNumber] = spec.inputLayout == "NHWC"
            ? [1, NSNumber(value: spec.inputHeight), NSNumber(value: spec.inputWidth), NSNumber(value: spec.channels)]
            : [1, NSNumber(value: spec.channels), NSNumber(value: spec.inputHeight), NSNumber(value: spec.inputWidth)]
        let array = try MLMultiArray(shape: shape, dataType: .float32)
        let dst = array.dataPointer.bindMemory(to: Float.self, capacity: values.count)
        for i in 0..<values.count { dst[i] = values[i] }
        return array
    }

    /// Every output of one run, as floats, by name (the golden check compares them all).
    public func allOutputs(_ input: MLFeatureValue) throws -> [String: [Float]] {
        let features = try MLDictionaryFeatureProvider(dictionary: [ModelConfig.inputName: input])
        let out = try model.prediction(from: features)
        var result: [String: [Float]] = [:]
        for name in out.featureNames {
            guard let a = out.featureValue(for: name)?.multiArrayValue else { continue }
            result[name] = (0..<a.count).map { a[$0].floatValue }
        }
        return result
    }

    /// The model input for raw bytes in the model's input layout and dtype (golden_input.bin: float32 little-endian
    /// values, or for an image input the 0-255 pixels HWC).
    public func inputFromBytes(_ data: Data) throws -> MLFeatureValue {
        if spec.inputDtype == "image" {
            return MLFeatureValue(pixelBuffer: try makePixelBuffer(data.map { Float($0) }))
        }
        let n = spec.inputWidth * spec.inputHeight * spec.channels
        guard data.count == n * 4 else { throw LandmarkerError.badFrame("golden input has \(data.count) bytes, expected \(n * 4)") }
        let values: [Float] = data.withUnsafeBytes { raw in
            (0..<n).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
        }
        return MLFeatureValue(multiArray: try makeInput(values))
    }

    /// Runs the model; the landmark output as floats.
    public func infer(_ input: MLFeatureValue) throws -> [Float] {
        let features = try MLDictionaryFeatureProvider(dictionary: [ModelConfig.inputName: input])
        let out = try model.prediction(from: features)
        guard let array = out.featureValue(for: ModelConfig.outputName)?.multiArrayValue else {
            throw LandmarkerError.badOutput("no multi-array output named \(ModelConfig.outputName)")
        }
        let n = spec.numLandmarks * spec.valuesPerLandmark
        guard array.count >= n else {
            throw LandmarkerError.badOutput("\(array.count) values, expected \(n)")
        }
        var values = [Float](repeating: 0, count: n)
        for i in 0..<n { values[i] = array[i].floatValue }
        return values
    }

    /// Call when the face is lost, so the filter does not smooth across faces.
    public func reset() {
        previous = nil
        filter.reset()
    }
}
