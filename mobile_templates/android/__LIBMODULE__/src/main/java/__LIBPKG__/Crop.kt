package @@LIB_PKG@@

/**
 * A square face crop in image pixels: centre (cx, cy), side, in-plane angle in
 * radians (counter-clockwise). Coordinates are continuous, pixel centres at i + 0.5.
 *
 * The crop maps onto the model input with one uniform scale,
 * k = max(inputWidth, inputHeight) / size, centred on the input; for a square
 * input this is exactly devicekit's Python crop (devicekit/face/crop.py).
 * Platform-free (no Android imports, Kotlin 1.3 syntax).
 */
class CropBox(val cx: Double, val cy: Double, val size: Double, val angle: Double = 0.0) {
    init {
        require(size > 0.0) { "crop size must be positive" }
    }

    fun scale(spec: ModelSpec): Double = Math.max(spec.inputWidth, spec.inputHeight) / size

    /** Image pixel (x, y) -> model-input pixel (u, v). */
    fun toInput(spec: ModelSpec, x: Double, y: Double): DoubleArray {
        val k = scale(spec)
        val c = Math.cos(angle)
        val s = Math.sin(angle)
        val dx = x - cx
        val dy = y - cy
        return doubleArrayOf(
            (c * dx + s * dy) * k + spec.inputWidth / 2.0,
            (-s * dx + c * dy) * k + spec.inputHeight / 2.0
        )
    }

    /** Model-input pixel (u, v) -> image pixel (x, y): the exact inverse of [toInput]. */
    fun toImage(spec: ModelSpec, u: Double, v: Double): DoubleArray {
        val k = scale(spec)
        val c = Math.cos(angle)
        val s = Math.sin(angle)
        val du = (u - spec.inputWidth / 2.0) / k
        val dv = (v - spec.inputHeight / 2.0) / k
        return doubleArrayOf(cx + c * du - s * dv, cy + s * du + c * dv)
    }

    companion object {
        /** The crop for a face detection box (x, y, w, h) under the manifest's crop policy. */
        fun fromDetection(spec: ModelSpec, x: Double, y: Double, w: Double, h: Double): CropBox {
            val side = spec.cropEnlarge * (if (spec.cropSquare) Math.max(w, h) else w)
            return CropBox(x + w / 2.0, y + h / 2.0 + spec.cropShiftY * h, side)
        }

        /**
         * The crop for the next frame from this frame's landmarks (image pixels,
         * x0, y0, x1, y1, ...): the detector-like box around them (side 1.25x the
         * landmarks' width, centre 0.145 sides above theirs), then the crop policy.
         */
        fun fromLandmarks(spec: ModelSpec, points: FloatArray): CropBox {
            var x0 = Double.MAX_VALUE
            var y0 = Double.MAX_VALUE
            var x1 = -Double.MAX_VALUE
            var y1 = -Double.MAX_VALUE
            var i = 0
            while (i + 1 < points.size) {
                x0 = Math.min(x0, points[i].toDouble())
                x1 = Math.max(x1, points[i].toDouble())
                y0 = Math.min(y0, points[i + 1].toDouble())
                y1 = Math.max(y1, points[i + 1].toDouble())
                i += 2
            }
            val side = Math.max(LANDMARK_BOX_SIZE * (x1 - x0), 1.0)
            val cx = (x0 + x1) / 2.0
            val cy = (y0 + y1) / 2.0 + LANDMARK_BOX_DY * side
            return fromDetection(spec, cx - side / 2.0, cy - side / 2.0, side, side)
        }

        const val LANDMARK_BOX_SIZE = 1.25
        const val LANDMARK_BOX_DY = -0.145
    }
}
