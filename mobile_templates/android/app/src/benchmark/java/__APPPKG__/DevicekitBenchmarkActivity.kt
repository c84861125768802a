package @@APP_ID@@

import android.app.Activity
import android.content.Context
import android.content.pm.ApplicationInfo
import android.os.Build
import android.os.Bundle
import android.os.PowerManager
import android.os.SystemClock
import android.view.WindowManager
import @@LIB_PKG@@.BenchmarkLoop
import @@LIB_PKG@@.BenchmarkWriter
import @@LIB_PKG@@.CropBox
import @@LIB_PKG@@.Decoder
import @@LIB_PKG@@.DeviceFacts
import @@LIB_PKG@@.FrameStages
import @@LIB_PKG@@.GoldenRunner
import @@LIB_PKG@@.OneEuroFilter
import @@LIB_PKG@@.Preprocessor
import @@LIB_PKG@@.@@CLASS@@
import java.io.File

/**
 * The benchmark entry point of DEVICE_PROTOCOL.md (protocol 2), started by `devicekit bench`:
 *
 *   am start -W -S -n @@APP_ID@@/.DevicekitBenchmarkActivity --es devicekit.run RUN
 *     --ei devicekit.frames N --ei devicekit.warmup W --es devicekit.delegate cpu|xnnpack|gpu|nnapi|npu
 *     --ei devicekit.threads T [--ez devicekit.golden true]
 *
 * Only the "benchmark" build type has it (src/benchmark/): the release configuration, so the numbers are
 * release numbers. The screen is held on for the run. Reads model.tflite from
 * /sdcard/Android/data/@@APP_ID@@/files/devicekit/RUN/ (the bundled model when absent); with the golden flag
 * it first runs the model on golden_input.bin there and writes golden_result.json (errors against
 * golden.json); then W warm-up and N measured frames of preprocess + inference + postprocess on a fixed
 * synthetic 640x480 frame; then frames.csv, device.json and, last, done.json. Every failure ends in
 * done.json with status "error". The accelerator actually used (after any fallback) and why are recorded.
 */
class DevicekitBenchmarkActivity : Activity() {
    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        window.addFlags(WindowManager.LayoutParams.FLAG_KEEP_SCREEN_ON)  // no background scheduling mid-run
        val run = intent.getStringExtra("devicekit.run")
        val frames = intent.getIntExtra("devicekit.frames", 100)
        val warmup = intent.getIntExtra("devicekit.warmup", 10)
        val delegate = intent.getStringExtra("devicekit.delegate") ?: "xnnpack"
        val threads = intent.getIntExtra("devicekit.threads", 4)
        val golden = intent.getBooleanExtra("devicekit.golden", false)
        val base = getExternalFilesDir(null)
        if (!BenchmarkWriter.validRunId(run) || base == null) {
            finish()
            return
        }
        val runDir = File(File(base, "devicekit"), run!!)
        Thread({
            execute(runDir, frames, warmup, delegate, threads, golden)
            runOnUiThread {
                window.clearFlags(WindowManager.LayoutParams.FLAG_KEEP_SCREEN_ON)
                finish()
            }
        }, "devicekit-benchmark").start()
    }

    private fun execute(runDir: File, frames: Int, warmup: Int, delegate: String, threads: Int, golden: Boolean) {
        val writer = BenchmarkWriter(runDir)
        var written = 0
        try {
            // xnnpack is LiteRT 2's CPU path; NNAPI is gone from LiteRT 2, whose NPU accelerator replaces it
            val kind = when (delegate) {
                "cpu", "xnnpack" -> @@CLASS@@.Delegate.CPU
                "gpu" -> @@CLASS@@.Delegate.GPU
                "npu", "nnapi" -> @@CLASS@@.Delegate.NPU
                else -> throw IllegalArgumentException("unknown delegate $delegate (cpu, xnnpack, gpu, nnapi, npu)")
            }
            if (frames < 1 || warmup < 0) throw IllegalArgumentException("frames must be >= 1 and warmup >= 0")
            val thermalStart = thermalStatus()
            val options = @@CLASS@@.Options(threads = threads, accelerator = kind, smoothing = true)
            val modelFile = File(runDir, "model.tflite")
            val t0 = SystemClock.elapsedRealtimeNanos()
            val landmarker = if (modelFile.isFile) @@CLASS@@.createFromFile(this, modelFile, options)
            else @@CLASS@@.create(this, options)
            val loadUs = (SystemClock.elapsedRealtimeNanos() - t0) / 1000
            val asked = if (delegate == "nnapi") "npu" else if (delegate == "xnnpack") "cpu" else delegate
            var accelerator = asked
            var note: String? = if (delegate == "nnapi") "nnapi is not part of LiteRT 2.x; its NPU accelerator was asked for" else null
            val loop = landmarker.use { lm ->
                accelerator = lm.activeDelegate
                lm.fallbackNote?.let { note = listOfNotNull(note, it).joinToString("; ") }
                if (golden) {
                    val g = GoldenRunner(File(runDir, "golden.json").readText())
                    writer.writeGolden(g.run(lm, File(runDir, "golden_input.bin").readBytes()))
                }
                val spec = lm.spec
                val width = 640
                val height = 480
                val pixels = syntheticFrame(width, height)
                val box = CropBox.fromDetection(spec, 220.0, 120.0, 200.0, 200.0)
                val pre = Preprocessor(spec)
                val dec = Decoder(spec)
                val input = pre.newInputBuffer()
                val output = dec.newOutputBuffer()
                val filter = OneEuroFilter(spec.oneEuroMinCutoff, spec.oneEuroBeta, spec.oneEuroDCutoff)
                BenchmarkLoop().run(object : FrameStages {
                    override fun preprocess(frame: Int) {
                        pre.run(pixels, width, height, box, input)
                    }

                    override fun infer(frame: Int) {
                        lm.runRaw(input, output)
                    }

                    override fun postprocess(frame: Int) {
                        filter.filter(dec.toImage(dec.dequantize(output), box), frame / 30.0)
                    }
                }, frames, warmup)
            }
            writer.writeFrames(loop.rows)
            written = loop.rows.size
            val debuggable = (applicationInfo.flags and ApplicationInfo.FLAG_DEBUGGABLE) != 0
            writer.writeDevice(
                DeviceFacts(
                    model = Build.MODEL,
                    manufacturer = Build.MANUFACTURER,
                    os = "android " + Build.VERSION.RELEASE,
                    soc = if (Build.VERSION.SDK_INT >= 31) Build.SOC_MODEL else Build.HARDWARE,
                    delegate = accelerator,
                    threads = threads,
                    thermalStart = thermalStart,
                    thermalEnd = thermalStatus(),
                    loadUs = loadUs,
                    firstFrameUs = loop.firstFrameUs,
                    peakRssKb = peakRssKb(),
                    runtime = @@CLASS@@.RUNTIME,
                    buildType = if (debuggable) "debug" else "release",
                    accelerator = accelerator,
                    acceleratorNote = if (accelerator != asked || note != null) (note ?: "$asked was asked for; $accelerator ran") else null
                )
            )
            writer.writeDone(loop.error == null, written, loop.error)
        } catch (e: Throwable) {
            try {
                if (written == 0) writer.writeFrames(emptyList())
                writer.writeDone(false, written, e.javaClass.simpleName + ": " + (e.message ?: "no message"))
            } catch (ignored: Exception) {
                // The run directory is gone; devicekit reports the missing done.json after its timeout.
            }
        }
    }

    /** A fixed frame: smooth gradients with a brighter disc where the crop is, the same every run. */
    private fun syntheticFrame(width: Int, height: Int): IntArray {
        val px = IntArray(width * height)
        for (y in 0 until height) for (x in 0 until width) {
            val dx = x - 320
            val dy = y - 230
            val disc = if (dx * dx + dy * dy < 100 * 100) 80 else 0
            val r = Math.min(255, (x * 255) / width / 2 + disc)
            val g = Math.min(255, (y * 255) / height / 2 + disc)
            val b = Math.min(255, ((x + y) * 255) / (width + height) / 2 + disc)
            px[y * width + x] = (0xff shl 24) or (r shl 16) or (g shl 8) or b
        }
        return px
    }

    private fun thermalStatus(): Int? {
        if (Build.VERSION.SDK_INT < 29) return null
        val pm = getSystemService(Context.POWER_SERVICE) as PowerManager
        return pm.currentThermalStatus
    }

    /** VmHWM of this process in kB (peak resident set size). */
    private fun peakRssKb(): Long? = try {
        File("/proc/self/status").readLines().firstOrNull { it.startsWith("VmHWM:") }
            ?.split(Regex("\\s+"))?.getOrNull(1)?.toLong()
    } catch (e: Exception) {
        null
    }
}
