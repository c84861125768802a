package @@APP_ID@@

import android.Manifest
import android.content.pm.PackageManager
import android.graphics.Bitmap
import android.graphics.Matrix
import android.os.Bundle
import android.os.SystemClock
import android.widget.TextView
import android.widget.Toast
import androidx.activity.result.contract.ActivityResultContracts
import androidx.appcompat.app.AppCompatActivity
import androidx.camera.core.CameraSelector
import androidx.camera.core.ImageAnalysis
import androidx.camera.core.ImageProxy
import androidx.camera.core.Preview
import androidx.camera.lifecycle.ProcessCameraProvider
import androidx.camera.view.PreviewView
import androidx.core.content.ContextCompat
import @@LIB_PKG@@.@@CLASS@@
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors

/** Camera preview with the tracked landmarks, frames per second and per-stage latency drawn on top. */
class MainActivity : AppCompatActivity() {
    private lateinit var previewView: PreviewView
    private lateinit var overlay: LandmarkOverlayView
    private lateinit var stats: TextView
    private lateinit var analysisExecutor: ExecutorService
    private var tracker: FaceTracker? = null
    private var lastFrameNs = 0L
    private var fps = 0.0

    private val permission = registerForActivityResult(ActivityResultContracts.RequestPermission()) { granted ->
        if (granted) startCamera() else Toast.makeText(this, R.string.camera_denied, Toast.LENGTH_LONG).show()
    }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContentView(R.layout.activity_main)
        previewView = findViewById(R.id.preview)
        overlay = findViewById(R.id.overlay)
        stats = findViewById(R.id.stats)
        analysisExecutor = Executors.newSingleThreadExecutor()
        analysisExecutor.execute {
            tracker = FaceTracker(@@CLASS@@.create(this, @@CLASS@@.Options(delegate = @@CLASS@@.Delegate.GPU)))
        }
        if (ContextCompat.checkSelfPermission(this, Manifest.permission.CAMERA) == PackageManager.PERMISSION_GRANTED) {
            startCamera()
        } else {
            permission.launch(Manifest.permission.CAMERA)
        }
    }

    private fun startCamera() {
        val future = ProcessCameraProvider.getInstance(this)
        future.addListener({
            val provider = future.get()
            val preview = Preview.Builder().build().also { it.setSurfaceProvider(previewView.surfaceProvider) }
            val analysis = ImageAnalysis.Builder()
                .setBackpressureStrategy(ImageAnalysis.STRATEGY_KEEP_ONLY_LATEST)
                .setOutputImageFormat(ImageAnalysis.OUTPUT_IMAGE_FORMAT_RGBA_8888)
                .build()
            analysis.setAnalyzer(analysisExecutor) { image -> analyze(image) }
            provider.unbindAll()
            provider.bindToLifecycle(this, CameraSelector.DEFAULT_FRONT_CAMERA, preview, analysis)
        }, ContextCompat.getMainExecutor(this))
    }

    private fun analyze(image: ImageProxy) {
        val t = tracker
        if (t == null) {
            image.close()
            return
        }
        val bitmap = upright(image)
        val timestamp = image.imageInfo.timestamp
        image.close()
        val result = t.track(bitmap, timestamp)
        val now = SystemClock.elapsedRealtimeNanos()
        if (lastFrameNs != 0L) {
            val instant = 1e9 / (now - lastFrameNs)
            fps = if (fps == 0.0) instant else 0.9 * fps + 0.1 * instant
        }
        lastFrameNs = now
        runOnUiThread {
            overlay.show(result?.landmarks, bitmap.width, bitmap.height, mirrored = true)
            stats.text = if (result == null) {
                String.format("%.1f fps  no face  detect %d ms  (%s)", fps, t.lastDetectMs, t.landmarker.activeDelegate)
            } else {
                String.format(
                    "%.1f fps  detect %d ms  pre %.1f  infer %.1f  post %.1f ms  (%s)",
                    fps, t.lastDetectMs, result.preprocessUs / 1000.0, result.inferenceUs / 1000.0,
                    result.postprocessUs / 1000.0, t.landmarker.activeDelegate
                )
            }
        }
    }

    /** The analysis frame as an upright ARGB bitmap (camera sensors are usually rotated). */
    private fun upright(image: ImageProxy): Bitmap {
        val raw = image.toBitmap()
        val degrees = image.imageInfo.rotationDegrees
        if (degrees == 0) return raw
        val m = Matrix()
        m.postRotate(degrees.toFloat())
        return Bitmap.createBitmap(raw, 0, 0, raw.width, raw.height, m, true)
    }

    override fun onDestroy() {
        super.onDestroy()
        analysisExecutor.execute { tracker?.close() }
        analysisExecutor.shutdown()
    }
}
