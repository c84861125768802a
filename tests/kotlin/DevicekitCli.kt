// Test driver for the platform-free Kotlin of the generated Android module.
// The test prepends `package <library package>` and compiles it with the module's
// ModelSpec/Crop/Preprocess/Decode/OneEuro/Benchmark*/GoldenCheck/DetectorMap/ModelConfig files (Kotlin 1.3).

import java.io.File

fun loadSpec(path: String?): ModelSpec {
    if (path == null) return ModelConfig.SPEC
    val kv = HashMap<String, String>()
    for (line in File(path).readLines()) {
        val i = line.indexOf('=')
        if (i > 0) kv[line.substring(0, i)] = line.substring(i + 1)
    }
    fun d(k: String) = kv.getValue(k).toDouble()
    fun i(k: String) = kv.getValue(k).toInt()
    fun arr(k: String) = kv.getValue(k).split(",").map { it.toDouble() }.toDoubleArray()
    return ModelSpec(
        i("inputWidth"), i("inputHeight"), i("channels"), kv.getValue("color"), kv.getValue("inputLayout"),
        arr("mean"), arr("std"), kv.getValue("inputDtype"), d("inputScale"), i("inputZeroPoint"),
        i("numLandmarks"), i("valuesPerLandmark"), kv.getValue("outputDtype"), d("outputScale"), i("outputZeroPoint"),
        kv.getValue("coords"), d("cropEnlarge"), d("cropShiftY"), kv.getValue("cropSquare") == "true",
        d("oneEuroMinCutoff"), d("oneEuroBeta"), d("oneEuroDCutoff")
    )
}

fun specJson(s: ModelSpec): String {
    fun q(x: String) = BenchmarkWriter.quote(x)
    fun arr(a: DoubleArray) = a.joinToString(", ", "[", "]") { it.toString() }
    val f = listOf(
        "inputWidth" to s.inputWidth.toString(), "inputHeight" to s.inputHeight.toString(),
        "channels" to s.channels.toString(), "color" to q(s.color), "inputLayout" to q(s.inputLayout),
        "mean" to arr(s.mean), "std" to arr(s.std), "inputDtype" to q(s.inputDtype),
        "inputScale" to s.inputScale.toString(), "inputZeroPoint" to s.inputZeroPoint.toString(),
        "numLandmarks" to s.numLandmarks.toString(), "valuesPerLandmark" to s.valuesPerLandmark.toString(),
        "outputDtype" to q(s.outputDtype), "outputScale" to s.outputScale.toString(),
        "outputZeroPoint" to s.outputZeroPoint.toString(), "coords" to q(s.coords),
        "cropEnlarge" to s.cropEnlarge.toString(), "cropShiftY" to s.cropShiftY.toString(),
        "cropSquare" to s.cropSquare.toString(), "oneEuroMinCutoff" to s.oneEuroMinCutoff.toString(),
        "oneEuroBeta" to s.oneEuroBeta.toString(), "oneEuroDCutoff" to s.oneEuroDCutoff.toString(),
        "modelAsset" to q(ModelConfig.MODEL_ASSET), "modelSha256" to q(ModelConfig.MODEL_SHA256),
        "outputIndex" to ModelConfig.OUTPUT_INDEX.toString()
    )
    return BenchmarkWriter.obj(f)
}

fun nums(line: String): List<String> = line.trim().split(Regex("\\s+")).filter { it.isNotEmpty() }

fun box(t: List<String>) = CropBox(t[0].toDouble(), t[1].toDouble(), t[2].toDouble(), t[3].toDouble())

fun main(args: Array<String>) {
    val opts = args.toMutableList()
    var specPath: String? = null
    val si = opts.indexOf("--spec")
    if (si >= 0) {
        specPath = opts[si + 1]
        opts.removeAt(si)
        opts.removeAt(si)
    }
    val spec = loadSpec(specPath)
    val out = StringBuilder()
    when (opts[0]) {
        "spec" -> out.append(specJson(spec)).append('\n')
        "preprocess" -> {
            // frame file: "w h" then w*h ARGB ints; boxes: one "cx cy size angle" per line
            val frame = File(opts[1]).readText().trim().split(Regex("\\s+"))
            val w = frame[0].toInt()
            val h = frame[1].toInt()
            val px = IntArray(w * h) { frame[2 + it].toLong().toInt() }
            val pre = Preprocessor(spec)
            val buf = pre.newInputBuffer()
            for (line in File(opts[2]).readLines()) {
                if (line.isBlank()) continue
                pre.run(px, w, h, box(nums(line)), buf)
                buf.rewind()
                val vals = ArrayList<String>()
                if (spec.inputDtype == "float32") {
                    for (k in 0 until spec.inputBytes / 4) vals.add(buf.getFloat().toString())
                } else {
                    for (k in 0 until spec.inputBytes) vals.add(buf.get().toString())
                }
                out.append(vals.joinToString(" ")).append('\n')
            }
        }
        "decode" -> {
            // each line: cx cy size angle then the raw output tensor values
            val dec = Decoder(spec)
            for (line in File(opts[1]).readLines()) {
                if (line.isBlank()) continue
                val t = nums(line)
                val buf = dec.newOutputBuffer()
                for (k in 4 until t.size) {
                    if (spec.outputDtype == "float32") buf.putFloat(t[k].toFloat()) else buf.put(t[k].toInt().toByte())
                }
                val pts = dec.toImage(dec.dequantize(buf), box(t))
                out.append(pts.joinToString(" ") { it.toString() }).append('\n')
            }
        }
        "oneeuro" -> {
            // first line: min_cutoff beta d_cutoff; then "t v0 v1 ..." per frame
            val lines = File(opts[1]).readLines().filter { it.isNotBlank() }
            val p = nums(lines[0]).map { it.toDouble() }
            val f = OneEuroFilter(p[0], p[1], p[2])
            for (line in lines.drop(1)) {
                val t = nums(line)
                val v = FloatArray(t.size - 1) { t[it + 1].toFloat() }
                out.append(f.filter(v, t[0].toDouble()).joinToString(" ") { it.toString() }).append('\n')
            }
        }
        "write" -> {
            // rows file: "frame start pre inf post total" lines; then writes the three files in order
            val rows = File(opts[2]).readLines().filter { it.isNotBlank() }.map { l ->
                val t = nums(l).map { it.toLong() }
                FrameTiming(t[0].toInt(), t[1], t[2], t[3], t[4], t[5])
            }
            val w = BenchmarkWriter(File(opts[1]))
            w.writeFrames(rows)
            w.writeDevice(DeviceFacts("Pixel 7", "Google", "android 14", "Tensor G2", "gpu", 4, 0, 1, 1234, 5678, null,
                "litert 2.1.0", "release", "cpu", "gpu failed (LiteRtException: no GPU); ran on cpu"))
            val err = if (opts.size > 3) opts[3] else null
            w.writeDone(err == null, rows.size, err)
        }
        "bench" -> {
            // the protocol loop with the real preprocessing and decoding; "inference" fills the output with zero points
            val frames = opts[2].toInt()
            val warmup = opts[3].toInt()
            val failAt = if (opts.size > 4) opts[4].toInt() else -1
            val pre = Preprocessor(spec)
            val dec = Decoder(spec)
            val input = pre.newInputBuffer()
            val output = dec.newOutputBuffer()
            val px = IntArray(320 * 240) { (0xff shl 24) or ((it % 320) shl 16) or ((it / 320) shl 8) or 77 }
            val b = CropBox.fromDetection(spec, 100.0, 60.0, 120.0, 120.0)
            val filter = OneEuroFilter(spec.oneEuroMinCutoff, spec.oneEuroBeta, spec.oneEuroDCutoff)
            val loop = BenchmarkLoop().run(object : FrameStages {
                override fun preprocess(frame: Int) { pre.run(px, 320, 240, b, input) }
                override fun infer(frame: Int) {
                    if (frame == failAt) throw IllegalStateException("inference failed at frame $frame")
                    output.rewind()
                    while (output.hasRemaining()) output.put(spec.outputZeroPoint.toByte())
                }
                override fun postprocess(frame: Int) { filter.filter(dec.toImage(dec.dequantize(output), b), frame / 30.0) }
            }, frames, warmup)
            val w = BenchmarkWriter(File(opts[1]))
            w.writeFrames(loop.rows)
            w.writeDevice(DeviceFacts("jvm", "test", "linux", "host", "cpu", 1, null, null, 0, loop.firstFrameUs, null,
                "litert 2.1.0", "release", "cpu", null))
            w.writeDone(loop.error == null, loop.rows.size, loop.error)
        }
        "quantize" -> {
            // one normalised float per line -> Preprocessor.quantize
            val pre = Preprocessor(spec)
            for (line in File(opts[1]).readLines()) {
                if (line.isBlank()) continue
                out.append(pre.quantize(line.trim().toFloat())).append('\n')
            }
        }
        "golden" -> {
            // line 1: landmark output index; then pairs of lines per output: "name ref..." and "device..."
            val lines = File(opts[1]).readLines().filter { it.isNotBlank() }
            val lm = lines[0].trim().toInt()
            val names = ArrayList<String>()
            val ref = ArrayList<FloatArray>()
            val dev = ArrayList<FloatArray>()
            var i = 1
            while (i + 1 < lines.size) {
                val r = nums(lines[i])
                names.add(r[0])
                ref.add(FloatArray(r.size - 1) { r[it + 1].toFloat() })
                val d = nums(lines[i + 1])
                dev.add(FloatArray(d.size) { d[it].toFloat() })
                i += 2
            }
            val result = GoldenCheck.compare(names, ref, dev, spec, lm)
            out.append(result.toJson()).append('\n')
            if (opts.size > 2) BenchmarkWriter(File(opts[2])).writeGolden(result)
        }
        "detmap" -> {
            // "k dx dy" then "lx ly rx ry mx my" per line -> the Haar-equivalent box
            val lines = File(opts[1]).readLines().filter { it.isNotBlank() }
            val m = nums(lines[0]).map { it.toDouble() }
            val map = DetectorMap(DetectorMap.KEYPOINTS, m[0], m[1], m[2])
            for (line in lines.drop(1)) {
                val t = nums(line).map { it.toDouble() }
                out.append(map.fromKeypoints(t[0], t[1], t[2], t[3], t[4], t[5]).joinToString(" ")).append('\n')
            }
            out.append(ModelConfig.KEYPOINT_MAP.k.toString() + " " + ModelConfig.KEYPOINT_MAP.dx + " " + ModelConfig.KEYPOINT_MAP.dy).append('\n')
        }
        else -> throw IllegalArgumentException("unknown mode ${opts[0]}")
    }
    print(out)
}
