package @@APP_ID@@

import android.graphics.Bitmap
import android.os.SystemClock
import com.google.android.gms.tasks.Tasks
import com.google.mlkit.vision.common.InputImage
import com.google.mlkit.vision.face.FaceDetection
import com.google.mlkit.vision.face.FaceDetector
import com.google.mlkit.vision.face.FaceDetectorOptions
import @@LIB_PKG@@.CropBox
import @@LIB_PKG@@.@@CLASS@@

/**
 * Face detection (ML Kit, bundled model) for the crop, then the landmarker.
 * While a face is tracked, the next crop comes from the previous landmarks and
 * the detector runs only every [redetectEvery] frames to correct drift.
 */
class FaceTracker(val landmarker: @@CLASS@@, private val redetectEvery: Int = 10) : AutoCloseable {
    private val detector: FaceDetector = FaceDetection.getClient(
        FaceDetectorOptions.Builder()
            .setPerformanceMode(FaceDetectorOptions.PERFORMANCE_MODE_FAST)
            .setMinFaceSize(0.15f)
            .build()
    )
    private var previous: FloatArray? = null
    private var sinceDetect = 0

    /** Detection time of the last frame that ran the detector, in milliseconds. */
    var lastDetectMs = 0L
        private set

    /** Landmarks in [bitmap] pixels, or null when there is no face. Call from one background thread. */
    fun track(bitmap: Bitmap, timestampNanos: Long): @@CLASS@@.Result? {
        val prev = previous
        val crop: CropBox
        if (prev != null && sinceDetect < redetectEvery) {
            crop = CropBox.fromLandmarks(landmarker.spec, prev)
            sinceDetect += 1
        } else {
            val t0 = SystemClock.elapsedRealtime()
            val faces = Tasks.await(detector.process(InputImage.fromBitmap(bitmap, 0)))
            lastDetectMs = SystemClock.elapsedRealtime() - t0
            sinceDetect = 0
            val face = faces.maxByOrNull { it.boundingBox.width() * it.boundingBox.height() }
            if (face == null) {
                previous = null
                landmarker.resetSmoothing()
                return null
            }
            val b = face.boundingBox
            crop = CropBox.fromDetection(
                landmarker.spec, b.left.toDouble(), b.top.toDouble(), b.width().toDouble(), b.height().toDouble()
            )
        }
        val result = landmarker.detectInCrop(bitmap, crop, timestampNanos)
        previous = result.landmarks
        return result
    }

    override fun close() {
        detector.close()
        landmarker.close()
    }
}
