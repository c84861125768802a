package @@LIB_PKG@@

/**
 * Maps what a face detector gives (its box, or its eye and mouth keypoints) to the box of the detector the
 * crop policy was written for (OpenCV's Haar cascade, `preprocess.crop.detector` in the manifest), so that
 * [CropBox.fromDetection] makes the crop verify measured. The constants were fitted on devicekit's
 * face-data cache and travel in the manifest (`preprocess.crop.detector_maps`, see ModelConfig).
 *
 * - [KEYPOINTS] anchor: the eye midpoint; scale s = (eye distance + eye-mouth distance) / 2.
 * - [BOX] anchor: the box centre; scale s = max(w, h).
 * The Haar-equivalent box is square: side k * s, centre anchor + (dx, dy) * s.
 * Platform-free (no Android imports, Kotlin 1.3 syntax).
 */
class DetectorMap(val kind: String, val k: Double, val dx: Double, val dy: Double) {
    init {
        require(kind == KEYPOINTS || kind == BOX) { "detector map kind must be $KEYPOINTS or $BOX, got $kind" }
        require(k > 0.0) { "detector map k must be positive" }
    }

    /** The Haar-equivalent box (x, y, w, h) for a detector box (x, y, w, h) in image pixels. */
    fun fromBox(x: Double, y: Double, w: Double, h: Double): DoubleArray {
        require(kind == BOX) { "this map takes keypoints, not a box" }
        return square(x + w / 2.0, y + h / 2.0, Math.max(w, h))
    }

    /** The Haar-equivalent box (x, y, w, h) for the two eye centres and the mouth centre, in image pixels. */
    fun fromKeypoints(leftEyeX: Double, leftEyeY: Double, rightEyeX: Double, rightEyeY: Double,
                      mouthX: Double, mouthY: Double): DoubleArray {
        require(kind == KEYPOINTS) { "this map takes a box, not keypoints" }
        val ex = (leftEyeX + rightEyeX) / 2.0
        val ey = (leftEyeY + rightEyeY) / 2.0
        val eyes = Math.hypot(rightEyeX - leftEyeX, rightEyeY - leftEyeY)
        val mouth = Math.hypot(mouthX - ex, mouthY - ey)
        return square(ex, ey, (eyes + mouth) / 2.0)
    }

    private fun square(ax: Double, ay: Double, s: Double): DoubleArray {
        val side = k * s
        val cx = ax + dx * s
        val cy = ay + dy * s
        return doubleArrayOf(cx - side / 2.0, cy - side / 2.0, side, side)
    }

    companion object {
        const val KEYPOINTS = "keypoints"
        const val BOX = "box"
    }
}
