package @@LIB_PKG@@

import java.io.File
import java.io.FileOutputStream

/** One measured frame of the benchmark (times in microseconds, start on a monotonic clock). */
class FrameTiming(
    val frame: Int,
    val startNs: Long,
    val preprocessUs: Long,
    val inferenceUs: Long,
    val postprocessUs: Long,
    val totalUs: Long
)

/**
 * device.json fields of DEVICE_PROTOCOL.md (protocol 2): [runtime] is the inference runtime and its version
 * ("litert 2.1.0"), [buildType] "release" or "debug", [accelerator] what actually ran after any fallback
 * ("cpu", "gpu", "npu") and [acceleratorNote] why it differs from what was asked (null when it does not).
 */
class DeviceFacts(
    val model: String,
    val manufacturer: String,
    val os: String,
    val soc: String,
    val delegate: String,
    val threads: Int,
    val thermalStart: Int?,
    val thermalEnd: Int?,
    val loadUs: Long,
    val firstFrameUs: Long,
    val peakRssKb: Long?,
    val runtime: String,
    val buildType: String,
    val accelerator: String,
    val acceleratorNote: String?
)

/**
 * Writes a run's result files in the protocol's order: golden_result.json (when asked for), frames.csv,
 * device.json, then done.json; each through a temporary name and a rename, so devicekit
 * never reads a half-written file. Platform-free (no Android imports, Kotlin 1.3 syntax).
 */
class BenchmarkWriter(private val runDir: File) {
    fun writeFrames(rows: List<FrameTiming>) {
        val sb = StringBuilder(FRAMES_HEADER).append('\n')
        for (r in rows) {
            sb.append(r.frame).append(',').append(r.startNs).append(',').append(r.preprocessUs).append(',')
                .append(r.inferenceUs).append(',').append(r.postprocessUs).append(',').append(r.totalUs).append('\n')
        }
        atomicWrite("frames.csv", sb.toString())
    }

    fun writeDevice(d: DeviceFacts) {
        val fields = listOf(
            "protocol" to PROTOCOL.toString(),
            "model" to quote(d.model),
            "manufacturer" to quote(d.manufacturer),
            "os" to quote(d.os),
            "soc" to quote(d.soc),
            "delegate" to quote(d.delegate),
            "threads" to d.threads.toString(),
            "thermal_start" to (d.thermalStart?.toString() ?: "null"),
            "thermal_end" to (d.thermalEnd?.toString() ?: "null"),
            "load_us" to d.loadUs.toString(),
            "first_frame_us" to d.firstFrameUs.toString(),
            "peak_rss_kb" to (d.peakRssKb?.toString() ?: "null"),
            "runtime" to quote(d.runtime),
            "build_type" to quote(d.buildType),
            "accelerator" to quote(d.accelerator)
        )
        val note = d.acceleratorNote
        atomicWrite("device.json", obj(if (note == null) fields else fields + ("accelerator_note" to quote(note))))
    }

    /** golden_result.json (protocol 2), written before frames.csv when the golden check was asked for. */
    fun writeGolden(r: GoldenResult) {
        atomicWrite("golden_result.json", r.toJson())
    }

    /** done.json, last: status "ok" or "error", the number of frames written, the error message or null. */
    fun writeDone(ok: Boolean, frames: Int, error: String?) {
        val fields = listOf(
            "protocol" to PROTOCOL.toString(),
            "status" to quote(if (ok) "ok" else "error"),
            "frames" to frames.toString(),
            "error" to (if (error == null) "null" else quote(error))
        )
        atomicWrite("done.json", obj(fields))
    }

    private fun atomicWrite(name: String, text: String) {
        if (!runDir.isDirectory && !runDir.mkdirs()) throw java.io.IOException("cannot create $runDir")
        val tmp = File(runDir, ".$name.tmp")
        FileOutputStream(tmp).use { out ->
            out.write(text.toByteArray(Charsets.UTF_8))
            out.fd.sync()
        }
        if (!tmp.renameTo(File(runDir, name))) throw java.io.IOException("cannot rename $tmp to $name")
    }

    companion object {
        const val PROTOCOL = 2
        const val FRAMES_HEADER = "frame,start_ns,preprocess_us,inference_us,postprocess_us,total_us"

        /** A run id as devicekit makes them: [A-Za-z0-9_-]{1,64}. */
        fun validRunId(run: String?): Boolean = run != null && Regex("[A-Za-z0-9_-]{1,64}").matches(run)

        /** JSON object with Python's json.dumps separators (", " and ": "). */
        fun obj(fields: List<Pair<String, String>>): String =
            fields.joinToString(", ", "{", "}") { quote(it.first) + ": " + it.second }

        /** A JSON string as Python's json.dumps writes it (ASCII only, \\uXXXX escapes). */
        fun quote(s: String): String {
            val sb = StringBuilder("\"")
            for (ch in s) {
                when {
                    ch == '"' -> sb.append("\\\"")
                    ch == '\\' -> sb.append("\\\\")
                    ch == '\n' -> sb.append("\\n")
                    ch == '\r' -> sb.append("\\r")
                    ch == '\t' -> sb.append("\\t")
                    ch == '\b' -> sb.append("\\b")
                    ch == '\u000c' -> sb.append("\\f")
                    ch.toInt() < 0x20 || ch.toInt() > 0x7e -> sb.append(String.format("\\u%04x", ch.toInt()))
                    else -> sb.append(ch)
                }
            }
            return sb.append('"').toString()
        }
    }
}
