package @@LIB_PKG@@

import java.nio.ByteBuffer
import java.nio.ByteOrder

/**
 * Output decoding: dequantise the landmark tensor, take x and y of every
 * landmark, convert the manifest's coordinate convention to model-input
 * pixels, and map them back to image pixels through the crop.
 * Platform-free (no Android imports, Kotlin 1.3 syntax).
 */
class Decoder(private val spec: ModelSpec) {
    /** A direct, native-order buffer the size of the landmark output tensor. */
    fun newOutputBuffer(): ByteBuffer = ByteBuffer.allocateDirect(spec.outputBytes).order(ByteOrder.nativeOrder())

    /** Raw output values as floats (dequantised when the tensor is int8/uint8). */
    fun dequantize(out: ByteBuffer): FloatArray {
        out.rewind()
        val values = FloatArray(spec.outputElements)
        for (i in values.indices) {
            values[i] = when (spec.outputDtype) {
                "float32" -> out.getFloat()
                "int8" -> ((out.get().toInt() - spec.outputZeroPoint) * spec.outputScale).toFloat()
                else -> (((out.get().toInt() and 0xff) - spec.outputZeroPoint) * spec.outputScale).toFloat()
            }
        }
        out.rewind()
        return values
    }

    /** Landmarks in model-input pixels, x0, y0, x1, y1, ... */
    fun toInputPixels(values: FloatArray): FloatArray {
        require(values.size >= spec.outputElements) { "output has ${values.size} values, expected ${spec.outputElements}" }
        val pts = FloatArray(spec.numLandmarks * 2)
        val sx = if (spec.coords == "normalized") spec.inputWidth.toDouble() else 1.0
        val sy = if (spec.coords == "normalized") spec.inputHeight.toDouble() else 1.0
        for (i in 0 until spec.numLandmarks) {
            pts[2 * i] = (values[i * spec.valuesPerLandmark] * sx).toFloat()
            pts[2 * i + 1] = (values[i * spec.valuesPerLandmark + 1] * sy).toFloat()
        }
        return pts
    }

    /** Landmarks in image pixels for the crop [box]. */
    fun toImage(values: FloatArray, box: CropBox): FloatArray {
        val pts = toInputPixels(values)
        for (i in 0 until spec.numLandmarks) {
            val p = box.toImage(spec, pts[2 * i].toDouble(), pts[2 * i + 1].toDouble())
            pts[2 * i] = p[0].toFloat()
            pts[2 * i + 1] = p[1].toFloat()
        }
        return pts
    }
}
