import SwiftUI

/// Camera preview with the landmarks, frames per second and per-stage latency drawn on top.
struct ContentView: View {
    @StateObject private var camera = CameraModel()

    var body: some View {
        ZStack(alignment: .topLeading) {
            CameraPreview(session: camera.session)
                .ignoresSafeArea()
            OverlayView(landmarks: camera.landmarks, imageSize: camera.imageSize, mirrored: true)
                .ignoresSafeArea()
            VStack(alignment: .leading) {
                Text(camera.stats)
                    .font(.system(size: 13, design: .monospaced))
                    .foregroundColor(.white)
                    .padding(6)
                    .background(Color.black.opacity(0.5))
                Spacer()
                Picker("Compute units", selection: $camera.computeUnits) {
                    ForEach(CameraModel.unitChoices, id: \.self) { Text($0).tag($0) }
                }
                .pickerStyle(.segmented)
                .background(Color.black.opacity(0.5))
            }
            .padding()
        }
        .onAppear { camera.start() }
        .onDisappear { camera.stop() }
    }
}

/// Landmarks (image pixels) over a preview that fills the view (aspect fill).
struct OverlayView: View {
    let landmarks: [Float]
    let imageSize: CGSize
    let mirrored: Bool

    var body: some View {
        Canvas { context, size in
            guard imageSize.width > 0, imageSize.height > 0 else { return }
            let scale = max(size.width / imageSize.width, size.height / imageSize.height)
            let dx = (size.width - imageSize.width * scale) / 2
            let dy = (size.height - imageSize.height * scale) / 2
            var i = 0
            while i + 1 < landmarks.count {
                var x = CGFloat(landmarks[i]) * scale + dx
                if mirrored { x = size.width - x }
                let y = CGFloat(landmarks[i + 1]) * scale + dy
                context.fill(Path(ellipseIn: CGRect(x: x - 2, y: y - 2, width: 4, height: 4)), with: .color(.green))
                i += 2
            }
        }
        .allowsHitTesting(false)
    }
}
