package @@APP_ID@@

import android.Manifest
import android.content.pm.PackageManager
import android.graphics.Bitmap
import android.graphics.Matrix
import android.os.Bundle
import android.os.SystemClock
import android.view.WindowManager
import android.widget.Button
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

/**
 * Camera preview with the tracked landmarks, frames per second and per-stage latency drawn on top, and a button
 * that switches the accelerator (CPU -> GPU -> NPU; the choice is kept, and what actually runs after any
 * fallback is shown). A model that does not load, or a phone without a front camera, shows a message instead
 * of crashing.
 */
class MainActivity : AppCompatActivity() {
    private lateinit var previewView: PreviewView
    private lateinit var overlay: LandmarkOverlayView
    private lateinit var stats: TextView
    private lateinit var acceleratorButton: Button
    private lateinit var analysisExecutor: ExecutorService
    private var tracker: FaceTracker? = null  // touched only on analysisExecutor
    private var status = "loading the model"
    private var lastFrameNs = 0L
    private var fps = 0.0

    private val permission = registerForActivityResult(ActivityResultContracts.RequestPermission()) { granted ->
        if (granted) startCamera() else showStatus(getString(R.string.camera_denied))
    }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContentView(R.layout.activity_main)
        window.addFlags(WindowManager.LayoutParams.FLAG_KEEP_SCREEN_ON)  // a sleeping screen moves work to background scheduling
        previewView = findViewById(R.id.preview)
        overlay = findViewById(R.id.overlay)
        stats = findViewById(R.id.stats)
        acceleratorButton = findViewById(R.id.accelerator)
        analysisExecutor = Executors.newSingleThreadExecutor()
        acceleratorButton.setOnClickListener { selectAccelerator(next(savedAccelerator())) }
        selectAccelerator(savedAccelerator())
        if (ContextCompat.checkSelfPermission(this, Manifest.permission.CAMERA) == PackageManager.PERMISSION_GRANTED) {
            startCamera()
        } else {
            permission.launch(Manifest.permission.CAMERA)
        }
    }

    private fun savedAccelerator(): @@CLASS@@.Delegate {
        val name = getPreferences(MODE_PRIVATE).getString(PREF_ACCELERATOR, null)
        return @@CLASS@@.Delegate.values().firstOrNull { it.name == name } ?: @@CLASS@@.Delegate.GPU
    }

    private fun next(d: @@CLASS@@.Delegate): @@CLASS@@.Delegate =
        @@CLASS@@.Delegate.values()[(d.ordinal + 1) % @@CLASS@@.Delegate.values().size]

    /** (Re)create the landmarker on the analysis thread with [choice] first; fallbacks are shown, never silent. */
    private fun selectAccelerator(choice: @@CLASS@@.Delegate) {
        getPreferences(MODE_PRIVATE).edit().putString(PREF_ACCELERATOR, choice.name).apply()
        acceleratorButton.text = getString(R.string.accelerator_button, choice.protocolName.uppercase())
        analysisExecutor.execute {
            tracker?.close()
            tracker = null
            try {
                val lm = @@CLASS@@.create(this, @@CLASS@@.Options(accelerator = choice))
                tracker = FaceTracker(lm)
                status = "running on ${lm.activeDelegate}" + (lm.fallbackNote?.let { " ($it)" } ?: "")
            } catch (e: Exception) {
                status = "the model did not load: ${e.message ?: e.javaClass.simpleName}"
            }
            showStatus(status)
        }
    }

    private fun showStatus(text: String) = runOnUiThread { stats.text = text }

    private fun startCamera() {
        val future = ProcessCameraProvider.getInstance(this)
        future.addListener({
            try {
                val provider = future.get()
                if (!provider.hasCamera(CameraSelector.DEFAULT_FRONT_CAMERA)) {
                    showStatus(getString(R.string.no_front_camera))
                    return@addListener
                }
                val preview = Preview.Builder().build().also { it.setSurfaceProvider(previewView.surfaceProvider) }
                val analysis = ImageAnalysis.Builder()
                    .setBackpressureStrategy(ImageAnalysis.STRATEGY_KEEP_ONLY_LATEST)
                    .setOutputImageFormat(ImageAnalysis.OUTPUT_IMAGE_FORMAT_RGBA_8888)
                    .build()
                analysis.setAnalyzer(analysisExecutor) { image -> analyze(image) }
                provider.unbindAll()
                provider.bindToLifecycle(this, CameraSelector.DEFAULT_FRONT_CAMERA, preview, analysis)
            } catch (e: Exception) {  // CameraX throws when the camera is busy, missing or disabled by policy
                showStatus("the camera did not start: ${e.message ?: e.javaClass.simpleName}")
                Toast.makeText(this, R.string.camera_failed, Toast.LENGTH_LONG).show()
            }
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
        val result = try {
            t.track(bitmap, timestamp)
        } catch (e: Exception) {
            showStatus("inference failed: ${e.message ?: e.javaClass.simpleName}")
            return
        }
        val now = SystemClock.elapsedRealtimeNanos()
        if (lastFrameNs != 0L) {
            val instant = 1e9 / (now - lastFrameNs)
            fps = if (fps == 0.0) instant else 0.9 * fps + 0.1 * instant
        }
        lastFrameNs = now
        val accel = t.landmarker.activeDelegate
        runOnUiThread {
            overlay.show(result?.landmarks, bitmap.width, bitmap.height, mirrored = true)
            stats.text = if (result == null) {
                String.format("%.1f fps  no face  detect %d ms  (%s)", fps, t.lastDetectMs, accel)
            } else {
                String.format(
                    "%.1f fps  detect %d ms  pre %.1f  infer %.1f  post %.1f ms  (%s)",
                    fps, t.lastDetectMs, result.preprocessUs / 1000.0, result.inferenceUs / 1000.0,
                    result.postprocessUs / 1000.0, accel
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

    companion object {
        private const val PREF_ACCELERATOR = "accelerator"
    }
}
