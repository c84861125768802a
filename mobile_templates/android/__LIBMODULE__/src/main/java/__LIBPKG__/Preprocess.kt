package @@LIB_PKG@@

import java.nio.ByteBuffer
import java.nio.ByteOrder

/**
 * Crop, resize, colour order, normalisation and (for int8/uint8 inputs)
 * quantisation, exactly as the manifest says, into the runtime's input buffer.
 *
 * Input frames are ARGB_8888 ints (Android's Bitmap.getPixels layout). Sampling
 * is bilinear at the centre of every input pixel, black outside the frame (as
 * OpenCV's warpAffine with BORDER_CONSTANT); when the crop shrinks the face by
 * more than 2x, n x n samples per input pixel are averaged (anti-aliasing).
 * Gray uses OpenCV's fixed-point BT.601 weights on each frame pixel.
 * Platform-free (no Android imports, Kotlin 1.3 syntax).
 */
class Preprocessor(private val spec: ModelSpec) {
    private val plane = FloatArray(spec.inputWidth * spec.inputHeight * spec.channels)

    /** A direct, native-order buffer the size of one input tensor. */
    fun newInputBuffer(): ByteBuffer = ByteBuffer.allocateDirect(spec.inputBytes).order(ByteOrder.nativeOrder())

    /**
     * Fills [out] (from position 0) with the model input for [box] in the frame
     * [argb] of size [width] x [height], and returns the 0-255 pixel values
     * (HWC, model colour order) before normalisation.
     */
    fun run(argb: IntArray, width: Int, height: Int, box: CropBox, out: ByteBuffer): FloatArray {
        require(argb.size >= width * height) { "frame has ${argb.size} pixels, expected ${width * height}" }
        sample(argb, width, height, box)
        write(out)
        return plane
    }

    private fun channelsOf(p: Int, dst: FloatArray) {
        val r = (p shr 16) and 0xff
        val g = (p shr 8) and 0xff
        val b = p and 0xff
        when (spec.color) {
            "gray" -> dst[0] = ((r * 9798 + g * 19235 + b * 3735 + 16384) shr 15).toFloat()
            "rgb" -> { dst[0] = r.toFloat(); dst[1] = g.toFloat(); dst[2] = b.toFloat() }
            else -> { dst[0] = b.toFloat(); dst[1] = g.toFloat(); dst[2] = r.toFloat() }
        }
    }

    private fun sample(argb: IntArray, width: Int, height: Int, box: CropBox) {
        val w = spec.inputWidth
        val h = spec.inputHeight
        val ch = spec.channels
        val k = box.scale(spec)
        val n = if (k < 0.5) Math.ceil(0.5 / k).toInt() else 1
        val px = FloatArray(ch)
        val acc = FloatArray(ch)
        val tmp = FloatArray(ch)
        for (v in 0 until h) {
            for (u in 0 until w) {
                for (c in 0 until ch) acc[c] = 0f
                for (sy in 0 until n) {
                    for (sx in 0 until n) {
                        val p = box.toImage(spec, u + (sx + 0.5) / n, v + (sy + 0.5) / n)
                        bilinear(argb, width, height, p[0] - 0.5, p[1] - 0.5, px, tmp)
                        for (c in 0 until ch) acc[c] += px[c]
                    }
                }
                val base = (v * w + u) * ch
                for (c in 0 until ch) plane[base + c] = acc[c] / (n * n)
            }
        }
    }

    /** Bilinear sample at index coordinates (x, y); neighbours outside the frame count as 0. */
    private fun bilinear(argb: IntArray, width: Int, height: Int, x: Double, y: Double, out: FloatArray, tmp: FloatArray) {
        val x0 = Math.floor(x).toInt()
        val y0 = Math.floor(y).toInt()
        val fx = (x - x0).toFloat()
        val fy = (y - y0).toFloat()
        for (c in out.indices) out[c] = 0f
        for (dy in 0..1) {
            val yy = y0 + dy
            if (yy < 0 || yy >= height) continue
            val wy = if (dy == 0) 1f - fy else fy
            for (dx in 0..1) {
                val xx = x0 + dx
                if (xx < 0 || xx >= width) continue
                val wgt = wy * (if (dx == 0) 1f - fx else fx)
                if (wgt == 0f) continue
                channelsOf(argb[yy * width + xx], tmp)
                for (c in out.indices) out[c] += wgt * tmp[c]
            }
        }
    }

    private fun write(out: ByteBuffer) {
        out.rewind()
        val w = spec.inputWidth
        val h = spec.inputHeight
        val ch = spec.channels
        if (spec.inputLayout == "NHWC") {
            for (i in 0 until w * h) for (c in 0 until ch) put(out, normalize(plane[i * ch + c], c))
        } else {
            for (c in 0 until ch) for (i in 0 until w * h) put(out, normalize(plane[i * ch + c], c))
        }
        out.rewind()
    }

    /** (pixel - mean) / std in float32, the manifest's formula. */
    fun normalize(pixel: Float, c: Int): Float = ((pixel - spec.mean[c].toFloat()) / spec.std[c].toFloat())

    /**
     * Quantised value of a normalised input: q = x / scale + zeroPoint in float32, rounded half to even,
     * saturated to the dtype's range. One rule everywhere: devicekit's Python runner (numpy.rint), the iOS
     * package (Processing.swift) and the web app (pipeline.js) round the same way.
     */
    fun quantize(x: Float): Int {
        val v = x / spec.inputScale.toFloat() + spec.inputZeroPoint.toFloat()
        val q = Math.rint(v.toDouble()).toLong()
        val lo = if (spec.inputDtype == "int8") -128L else 0L
        val hi = if (spec.inputDtype == "int8") 127L else 255L
        return Math.min(hi, Math.max(lo, q)).toInt()
    }

    private fun put(out: ByteBuffer, x: Float) {
        if (spec.inputDtype == "float32") out.putFloat(x) else out.put(quantize(x).toByte())
    }
}
