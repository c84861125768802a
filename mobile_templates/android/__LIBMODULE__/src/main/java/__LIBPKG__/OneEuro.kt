package @@LIB_PKG@@

/**
 * The 1-euro filter (Casiez, Roussel, Vogel, CHI 2012) on every coordinate of
 * a landmark vector: a low-pass filter whose cutoff rises with speed, so slow
 * jitter is smoothed and fast motion is not delayed.
 *
 * alpha(fc, dt) = 1 / (1 + 1 / (2 pi fc dt)); dx = lowpass(alpha(dCutoff), (x - prevX) / dt);
 * fc = minCutoff + beta * |dx|; x = lowpass(alpha(fc), x).
 * Timestamps are in seconds. Platform-free (no Android imports, Kotlin 1.3 syntax).
 */
class OneEuroFilter(val minCutoff: Double, val beta: Double, val dCutoff: Double) {
    private var prevX: DoubleArray? = null
    private var prevDx: DoubleArray? = null
    private var prevT = 0.0

    /** Filters [x] observed at time [t] seconds; the first call returns [x] unchanged. */
    fun filter(x: FloatArray, t: Double): FloatArray {
        val px = prevX
        val pdx = prevDx
        if (px == null || pdx == null || px.size != x.size || t <= prevT) {
            prevX = DoubleArray(x.size) { x[it].toDouble() }
            prevDx = DoubleArray(x.size)
            prevT = t
            return x.copyOf()
        }
        val dt = t - prevT
        val ad = alpha(dCutoff, dt)
        val out = FloatArray(x.size)
        for (i in x.indices) {
            val dx = (x[i] - px[i]) / dt
            val edx = pdx[i] + ad * (dx - pdx[i])
            val cutoff = minCutoff + beta * Math.abs(edx)
            val a = alpha(cutoff, dt)
            val v = px[i] + a * (x[i] - px[i])
            px[i] = v
            pdx[i] = edx
            out[i] = v.toFloat()
        }
        prevT = t
        return out
    }

    /** Forget the history (call when the face is lost). */
    fun reset() {
        prevX = null
        prevDx = null
        prevT = 0.0
    }

    companion object {
        fun alpha(cutoff: Double, dt: Double): Double {
            val tau = 1.0 / (2.0 * Math.PI * cutoff)
            return 1.0 / (1.0 + tau / dt)
        }
    }
}
