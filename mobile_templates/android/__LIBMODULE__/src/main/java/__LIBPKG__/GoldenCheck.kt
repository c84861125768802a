package @@LIB_PKG@@

/** One output's error against the golden reference. */
class OutputError(val name: String, val maxAbs: Double, val relL2: Double)

/** golden_result.json of DEVICE_PROTOCOL.md (protocol 2): errors of this device's outputs against golden.json. */
class GoldenResult(val outputs: List<OutputError>, val landmarksPxMean: Double?, val landmarksPxMax: Double?) {
    /** True when the landmark error meets the gate verify used ([meanPxLimit] model-input pixels). */
    fun passes(meanPxLimit: Double): Boolean = landmarksPxMean != null && landmarksPxMean <= meanPxLimit

    fun toJson(): String {
        val outs = outputs.joinToString(", ", "[", "]") {
            BenchmarkWriter.obj(listOf("name" to BenchmarkWriter.quote(it.name), "max_abs" to num(it.maxAbs),
                "rel_l2" to num(it.relL2)))
        }
        return BenchmarkWriter.obj(listOf(
            "protocol" to BenchmarkWriter.PROTOCOL.toString(),
            "outputs" to outs,
            "landmarks_px_mean" to (landmarksPxMean?.let { num(it) } ?: "null"),
            "landmarks_px_max" to (landmarksPxMax?.let { num(it) } ?: "null")
        ))
    }

    companion object {
        /** A JSON number (JSON has no NaN or infinity: those become null). */
        fun num(x: Double): String = if (x.isNaN() || x.isInfinite()) "null" else x.toString()
    }
}

/**
 * The golden check's arithmetic, shared by the androidTest (GoldenTest) and DevicekitBenchmarkActivity:
 * this device's outputs on golden_input.bin against the reference outputs in golden.json. Landmark
 * distances are in model-input pixels (normalized coordinates are scaled by the input size), as verify
 * measures them. Platform-free (no Android imports, Kotlin 1.3 syntax): devicekit's tests run it on the JVM.
 */
object GoldenCheck {
    fun compare(names: List<String>, reference: List<FloatArray>, device: List<FloatArray>, spec: ModelSpec,
                landmarkOutput: Int): GoldenResult {
        require(reference.size == device.size) { "${device.size} outputs, golden.json has ${reference.size}" }
        val errs = ArrayList<OutputError>()
        for (i in reference.indices) {
            val r = reference[i]
            val g = device[i]
            require(g.size >= r.size) { "output ${names[i]} has ${g.size} values, golden.json has ${r.size}" }
            var maxAbs = 0.0
            var num = 0.0
            var den = 0.0
            for (k in r.indices) {
                val d = g[k].toDouble() - r[k].toDouble()
                maxAbs = Math.max(maxAbs, Math.abs(d))
                num += d * d
                den += r[k].toDouble() * r[k].toDouble()
            }
            errs.add(OutputError(names[i], maxAbs, if (den > 0.0) Math.sqrt(num) / Math.sqrt(den) else 0.0))
        }
        if (landmarkOutput < 0 || landmarkOutput >= reference.size) return GoldenResult(errs, null, null)
        val r = reference[landmarkOutput]
        val g = device[landmarkOutput]
        val v = spec.valuesPerLandmark
        val sx = if (spec.coords == "normalized") spec.inputWidth.toDouble() else 1.0
        val sy = if (spec.coords == "normalized") spec.inputHeight.toDouble() else 1.0
        val n = r.size / v
        var sum = 0.0
        var max = 0.0
        for (i in 0 until n) {
            val dx = (g[i * v].toDouble() - r[i * v].toDouble()) * sx
            val dy = (g[i * v + 1].toDouble() - r[i * v + 1].toDouble()) * sy
            val d = Math.sqrt(dx * dx + dy * dy)
            sum += d
            max = Math.max(max, d)
        }
        return GoldenResult(errs, if (n > 0) sum / n else null, if (n > 0) max else null)
    }
}
