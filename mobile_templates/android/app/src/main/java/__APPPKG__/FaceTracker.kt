package @@APP_ID@@

import android.graphics.Bitmap
import android.os.SystemClock
import com.google.android.gms.tasks.Tasks
import com.google.mlkit.vision.common.InputImage
import com.google.mlkit.vision.face.Face
import com.google.mlkit.vision.face.FaceDetection
import com.google.mlkit.vision.face.FaceDetector
import com.google.mlkit.vision.face.FaceDetectorOptions
import com.google.mlkit.vision.face.FaceLandmark
import @@LIB_PKG@@.CropBox
import @@LIB_PKG@@.ModelConfig
import @@LIB_PKG@@.@@CLASS@@

/**
 * Face detection (ML Kit, bundled model) for the crop, then the landmarker.
 *
 * The crop policy's constants were set for OpenCV's Haar box, which sits elsewhere on the face than ML Kit's.
 * So the crop is not made from ML Kit's box but from its eye and mouth keypoints through
 * [ModelConfig.KEYPOINT_MAP] (fitted on devicekit's face-data cache, carried in the manifest), which gives the
 * Haar-equivalent box verify's crops were made from. While a face is tracked, the next crop comes from the
 * previous landmarks and the detector runs only every [redetectEvery] frames to correct drift.
 */
class FaceTracker(val landmarker: @@CLASS@@, private val redetectEvery: Int = 10) : AutoCloseable {
    private val detector: FaceDetector = FaceDetection.getClient(
        FaceDetectorOptions.Builder()
            .setPerformanceMode(FaceDetectorOptions.PERFORMANCE_MODE_FAST)
            .setLandmarkMode(FaceDetectorOptions.LANDMARK_MODE_ALL)
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
            val box = face?.let { haarBox(it) }
            if (box == null) {
                previous = null
                landmarker.resetSmoothing()
                return null
            }
            crop = CropBox.fromDetection(landmarker.spec, box[0], box[1], box[2], box[3])
        }
        val result = landmarker.detectInCrop(bitmap, crop, timestampNanos)
        previous = result.landmarks
        return result
    }

    override fun close() {
        detector.close()
        landmarker.close()
    }

    companion object {
        /** The Haar-equivalent box (x, y, w, h) from ML Kit's eye and mouth keypoints; null when one is missing. */
        fun haarBox(face: Face): DoubleArray? {
            val l = face.getLandmark(FaceLandmark.LEFT_EYE)?.position ?: return null
            val r = face.getLandmark(FaceLandmark.RIGHT_EYE)?.position ?: return null
            val ml = face.getLandmark(FaceLandmark.MOUTH_LEFT)?.position ?: return null
            val mr = face.getLandmark(FaceLandmark.MOUTH_RIGHT)?.position ?: return null
            return ModelConfig.KEYPOINT_MAP.fromKeypoints(
                l.x.toDouble(), l.y.toDouble(), r.x.toDouble(), r.y.toDouble(),
                (ml.x + mr.x) / 2.0, (ml.y + mr.y) / 2.0
            )
        }
    }
}
