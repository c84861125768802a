import AVFoundation
import CoreML
import @@KIT@@
import SwiftUI
import UIKit

/// AVFoundation capture (front camera, 32BGRA, portrait) feeding the landmarker on a background queue.
final class CameraModel: NSObject, ObservableObject, AVCaptureVideoDataOutputSampleBufferDelegate {
    let session = AVCaptureSession()
    @Published var landmarks: [Float] = []
    @Published var imageSize = CGSize.zero
    @Published var stats = "starting"
    /// CoreML compute units for the landmarker: a setting of the app (kept across launches), applied at once.
    @Published var computeUnits: String = UserDefaults.standard.string(forKey: "computeUnits") ?? "all" {
        didSet {
            UserDefaults.standard.set(computeUnits, forKey: "computeUnits")
            let units = computeUnits
            queue.async { self.loadModel(units) }
        }
    }
    static let unitChoices = ["all", "cpuOnly", "cpuAndGPU", "cpuAndNeuralEngine"]

    private let queue = DispatchQueue(label: "camera.frames")
    private var landmarker: @@CLASS@@?
    private var frameCount = 0
    private var lastTime: CFTimeInterval = 0
    private var fps: Double = 0

    func start() {
        AVCaptureDevice.requestAccess(for: .video) { granted in
            guard granted else {
                DispatchQueue.main.async { self.stats = "camera permission denied" }
                return
            }
            self.queue.async { self.configure() }
        }
    }

    func stop() {
        queue.async { self.session.stopRunning() }
    }

    private static func units(_ name: String) -> MLComputeUnits {
        switch name {
        case "cpuOnly": return .cpuOnly
        case "cpuAndGPU": return .cpuAndGPU
        case "cpuAndNeuralEngine": return .cpuAndNeuralEngine
        default: return .all
        }
    }

    /// (Re)load the landmarker with the chosen compute units; a model that does not load is shown, not fatal.
    private func loadModel(_ name: String) {
        do {
            let lm = try @@CLASS@@(computeUnits: CameraModel.units(name))
            landmarker = lm
            let text = String(format: "model loaded (%@): compile %.1f ms, load %.1f ms", name,
                              Double(lm.compileUs) / 1000, Double(lm.loadUs) / 1000)
            DispatchQueue.main.async { self.stats = text }
        } catch {
            landmarker = nil
            DispatchQueue.main.async { self.stats = "model: \(error)" }
        }
    }

    private func configure() {
        loadModel(computeUnits)
        if landmarker == nil { return }
        session.beginConfiguration()
        session.sessionPreset = .vga640x480
        guard let device = AVCaptureDevice.default(.builtInWideAngleCamera, for: .video, position: .front),
              let input = try? AVCaptureDeviceInput(device: device), session.canAddInput(input) else {
            session.commitConfiguration()
            DispatchQueue.main.async { self.stats = "no front camera" }
            return
        }
        session.addInput(input)
        let output = AVCaptureVideoDataOutput()
        output.videoSettings = [kCVPixelBufferPixelFormatTypeKey as String: kCVPixelFormatType_32BGRA]
        output.alwaysDiscardsLateVideoFrames = true
        output.setSampleBufferDelegate(self, queue: queue)
        if session.canAddOutput(output) { session.addOutput(output) }
        if let connection = output.connection(with: .video) {
            if connection.isVideoOrientationSupported { connection.videoOrientation = .portrait }
        }
        session.commitConfiguration()
        session.startRunning()
    }

    func captureOutput(_ output: AVCaptureOutput, didOutput sampleBuffer: CMSampleBuffer, from connection: AVCaptureConnection) {
        guard let frame = CMSampleBufferGetImageBuffer(sampleBuffer), let landmarker = landmarker else { return }
        let t = CMTimeGetSeconds(CMSampleBufferGetPresentationTimeStamp(sampleBuffer))
        frameCount += 1
        let now = CACurrentMediaTime()
        if lastTime > 0 {
            let instant = 1 / (now - lastTime)
            fps = fps == 0 ? instant : 0.9 * fps + 0.1 * instant
        }
        lastTime = now
        let size = CGSize(width: CVPixelBufferGetWidth(frame), height: CVPixelBufferGetHeight(frame))
        do {
            let result = try landmarker.process(frame, timestamp: t, redetect: frameCount % 10 == 0)
            let text: String
            if let r = result {
                text = String(format: "%.1f fps  pre %.1f  infer %.1f  post %.1f ms", fps,
                              Double(r.preprocessUs) / 1000, Double(r.inferenceUs) / 1000, Double(r.postprocessUs) / 1000)
            } else {
                text = String(format: "%.1f fps  no face", fps)
            }
            DispatchQueue.main.async {
                self.landmarks = result?.landmarks ?? []
                self.imageSize = size
                self.stats = text
            }
        } catch {
            DispatchQueue.main.async { self.stats = "error: \(error)" }
        }
    }
}

/// The capture session's live preview.
struct CameraPreview: UIViewRepresentable {
    let session: AVCaptureSession

    final class PreviewView: UIView {
        override class var layerClass: AnyClass { AVCaptureVideoPreviewLayer.self }
        var previewLayer: AVCaptureVideoPreviewLayer { layer as! AVCaptureVideoPreviewLayer }
    }

    func makeUIView(context: Context) -> PreviewView {
        let view = PreviewView()
        view.previewLayer.session = session
        view.previewLayer.videoGravity = .resizeAspectFill
        return view
    }

    func updateUIView(_ uiView: PreviewView, context: Context) {}
}
