package @@LIB_PKG@@

import org.json.JSONObject
import java.nio.ByteBuffer
import java.nio.ByteOrder

/**
 * The golden check on this device (DEVICE_PROTOCOL.md, protocol 2): run the landmarker's model once on
 * golden_input.bin and compare every output with golden.json (the reference outputs devicekit computed
 * when it packaged the model). Used by the androidTest GoldenTest and by DevicekitBenchmarkActivity.
 */
class GoldenRunner(goldenJson: String) {
    private val doc = JSONObject(goldenJson)

    /** The gate verify used, in model-input pixels (mean landmark distance); null when the gate is relative L2. */
    val meanPxLimit: Double? = doc.getJSONObject("gate").optDouble("landmarks_mean_px").takeIf { !it.isNaN() }

    /** The relative-L2 limit when the gate has one. */
    val relL2Limit: Double? = doc.getJSONObject("gate").optDouble("rel_l2").takeIf { !it.isNaN() }

    /** The crop of golden_face.png that golden_input.bin was made from (cx, cy, size, angle). */
    val crop: CropBox = doc.getJSONObject("image").getJSONArray("crop").let {
        CropBox(it.getDouble(0), it.getDouble(1), it.getDouble(2), it.getDouble(3))
    }

    fun run(landmarker: @@CLASS@@, input: ByteArray): GoldenResult {
        val spec = landmarker.spec
        require(input.size == spec.inputBytes) { "golden_input.bin has ${input.size} bytes, the model input needs ${spec.inputBytes}" }
        val buffer = ByteBuffer.allocateDirect(input.size).order(ByteOrder.nativeOrder())
        if (spec.inputDtype == "float32") {  // golden_input.bin is little-endian
            val le = ByteBuffer.wrap(input).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer()
            while (le.hasRemaining()) buffer.putFloat(le.get())
        } else {
            buffer.put(input)
        }
        landmarker.runRaw(buffer, null)
        val outs = doc.getJSONArray("outputs")
        val names = ArrayList<String>()
        val reference = ArrayList<FloatArray>()
        val device = ArrayList<FloatArray>()
        for (i in 0 until Math.min(outs.length(), landmarker.outputCount)) {
            val o = outs.getJSONObject(i)
            val values = o.getJSONArray("values")
            names.add(o.getString("name"))
            reference.add(FloatArray(values.length()) { values.getDouble(it).toFloat() })
            val dtype = o.optString("tensor_dtype", "float32")
            val raw = landmarker.readOutput(i, dtype)
            val scale = o.optDouble("scale", 1.0)
            val zero = o.optDouble("zero_point", 0.0)
            device.add(if (dtype == "float32") raw else FloatArray(raw.size) { ((raw[it] - zero) * scale).toFloat() })
        }
        return GoldenCheck.compare(names, reference, device, spec, doc.getJSONObject("landmarks").getInt("output"))
    }

    /** True when [r] meets the gate. */
    fun passes(r: GoldenResult): Boolean {
        val px = meanPxLimit
        if (px != null) return r.passes(px)
        val rel = relL2Limit ?: return true
        return r.outputs.all { it.relL2 <= rel }
    }
}
