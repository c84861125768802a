import SwiftUI
import UIKit

/// The demo app. Launched by `devicekit bench` with DEVICEKIT_RUN in the environment it
/// runs the benchmark of DEVICE_PROTOCOL.md instead of the camera.
@main
struct DemoApp: App {
    private let benchmark = BenchmarkRunner.fromEnvironment(ProcessInfo.processInfo.environment)

    var body: some Scene {
        WindowGroup {
            if let runner = benchmark {
                BenchmarkView(runner: runner)
            } else {
                ContentView()
            }
        }
    }
}

struct BenchmarkView: View {
    let runner: BenchmarkRunner
    @State private var status = "running benchmark"

    var body: some View {
        Text(status)
            .padding()
            .onAppear {
                UIApplication.shared.isIdleTimerDisabled = true  // a sleeping screen moves the run to background scheduling
                DispatchQueue.global(qos: .userInitiated).async {
                    let message = runner.run()
                    DispatchQueue.main.async {
                        status = message
                        UIApplication.shared.isIdleTimerDisabled = false
                    }
                }
            }
    }
}
