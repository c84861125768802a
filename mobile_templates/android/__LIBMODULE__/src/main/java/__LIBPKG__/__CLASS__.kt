package @@LIB_PKG@@

import android.content.Context
import android.graphics.Bitmap
import android.os.SystemClock
import com.google.ai.edge.litert.Accelerator
import com.google.ai.edge.litert.BuiltinNpuAcceleratorProvider
import com.google.ai.edge.litert.CompiledModel
import com.google.ai.edge.litert.Environment
import com.google.ai.edge.litert.TensorBuffer
import java.io.File
import java.nio.ByteBuffer

/**
 * The model cannot be used: it does not match the manifest ([mismatch]), or no accelerator could compile it.
 * The sample app shows the message instead of crashing.
 */
class LandmarkerException(message: String, val mismatch: Boolean = false) : Exception(message)

/**
 * The drop-in landmarker for @@MODEL_NAME@@ (@@NUM_LANDMARKS@@ landmarks) on LiteRT 2.x's CompiledModel API.
 *
 * ```
 * val landmarker = @@CLASS@@.create(context, @@CLASS@@.Options(accelerator = @@CLASS@@.Delegate.GPU))
 * landmarker.activeAccelerator   // what runs after any fallback; landmarker.fallbackNote says why
 * val result = landmarker.detect(bitmap, faceBox, frameTimeNanos)  // landmarks in bitmap pixels
 * landmarker.close()
 * ```
 *
 * Accelerators: CPU (LiteRT's XNNPACK path), GPU (LiteRT's GPU accelerator, in the litert artifact) and NPU
 * (vendor NPUs LiteRT supports). When the one asked for is not available or cannot compile the model,
 * [Options.allowFallback] tries the next (NPU -> GPU -> CPU) and records why in [fallbackNote]: never silent.
 * Preprocessing, decoding and the 1-euro filter follow the artifact's manifest (see [ModelConfig]); they live
 * in platform-free classes ([Preprocessor], [Decoder], [OneEuroFilter]) that devicekit's tests run on the JVM.
 * Use one instance from one thread.
 */
class @@CLASS@@ private constructor(
    val options: Options,
    val spec: ModelSpec,
    private val env: Environment,
    private val model: CompiledModel,
    /** The accelerator that compiled the model (after any fallback). */
    val activeAccelerator: Delegate,
    /** Why [activeAccelerator] differs from what [options] asked for; null when it does not. */
    val fallbackNote: String?
) : AutoCloseable {

    enum class Delegate(val protocolName: String) { CPU("cpu"), GPU("gpu"), NPU("npu") }

    /** threads: CPU threads; accelerator: the first choice; allowFallback: try the next one when it fails. */
    data class Options(
        val threads: Int = 4,
        val accelerator: Delegate = Delegate.CPU,
        val allowFallback: Boolean = true,
        val smoothing: Boolean = true
    )

    /** Landmarks in image pixels (x0, y0, x1, y1, ...), the crop used, and the time of each stage in microseconds. */
    class Result(
        val landmarks: FloatArray,
        val crop: CropBox,
        val preprocessUs: Long,
        val inferenceUs: Long,
        val postprocessUs: Long
    )

    /** The accelerator as DEVICE_PROTOCOL.md's device.json names it ("cpu", "gpu", "npu"). */
    val activeDelegate: String
        get() = activeAccelerator.protocolName

    private val inputs: List<TensorBuffer> = model.createInputBuffers()
    private val outputs: List<TensorBuffer> = model.createOutputBuffers()
    private val preprocessor = Preprocessor(spec)
    private val decoder = Decoder(spec)
    private val input: ByteBuffer = preprocessor.newInputBuffer()
    private val output: ByteBuffer = decoder.newOutputBuffer()
    private val filter = OneEuroFilter(spec.oneEuroMinCutoff, spec.oneEuroBeta, spec.oneEuroDCutoff)
    private val inputFloats = FloatArray(if (spec.inputDtype == "float32") spec.inputBytes / 4 else 0)
    private val inputBytes = ByteArray(if (spec.inputDtype == "float32") 0 else spec.inputBytes)
    private var pixels = IntArray(0)

    init {
        try {
            checkTensors()
        } catch (e: Exception) {
            closeBuffers()
            throw e
        }
    }

    /** One run on a zero input: the tensors must be the manifest's (a clear error, not a crash later). */
    private fun checkTensors() {
        if (inputs.size != 1) throw LandmarkerException("the model has ${inputs.size} inputs; the manifest describes 1", true)
        if (outputs.size <= ModelConfig.OUTPUT_INDEX) {
            throw LandmarkerException("the model has ${outputs.size} outputs; the manifest's landmarks are output " +
                "${ModelConfig.OUTPUT_INDEX}", true)
        }
        runRaw(input, null)
        val n = readOutput(ModelConfig.OUTPUT_INDEX, spec.outputDtype).size
        if (n != spec.outputElements) {
            throw LandmarkerException("output ${ModelConfig.OUTPUT_INDEX} has $n values; the manifest says " +
                "${spec.numLandmarks} landmarks x ${spec.valuesPerLandmark}", true)
        }
    }

    /** Landmarks for the face in [faceBox] (x, y, w, h in bitmap pixels, e.g. from a face detector). */
    fun detect(bitmap: Bitmap, faceBox: FloatArray, timestampNanos: Long): Result =
        detectInCrop(bitmap, CropBox.fromDetection(spec, faceBox[0].toDouble(), faceBox[1].toDouble(),
            faceBox[2].toDouble(), faceBox[3].toDouble()), timestampNanos)

    /** Landmarks for an explicit crop, e.g. [CropBox.fromLandmarks] of the previous frame when tracking. */
    fun detectInCrop(bitmap: Bitmap, box: CropBox, timestampNanos: Long): Result {
        val t0 = SystemClock.elapsedRealtimeNanos()
        val n = bitmap.width * bitmap.height
        if (pixels.size != n) pixels = IntArray(n)
        bitmap.getPixels(pixels, 0, bitmap.width, 0, 0, bitmap.width, bitmap.height)
        preprocessor.run(pixels, bitmap.width, bitmap.height, box, input)
        val t1 = SystemClock.elapsedRealtimeNanos()
        runRaw(input, output)
        val t2 = SystemClock.elapsedRealtimeNanos()
        var pts = decoder.toImage(decoder.dequantize(output), box)
        if (options.smoothing) pts = filter.filter(pts, timestampNanos / 1e9)
        val t3 = SystemClock.elapsedRealtimeNanos()
        return Result(pts, box, (t1 - t0) / 1000, (t2 - t1) / 1000, (t3 - t2) / 1000)
    }

    /**
     * Runs the model on an input buffer filled by [Preprocessor] (the benchmark and the golden test use this) and
     * copies the landmark output into [outputBuffer] (as the manifest's dtype, for [Decoder.dequantize]).
     */
    fun runRaw(inputBuffer: ByteBuffer, outputBuffer: ByteBuffer?) {
        inputBuffer.rewind()
        if (spec.inputDtype == "float32") {
            inputBuffer.asFloatBuffer().get(inputFloats)
            inputs[0].writeFloat(inputFloats)
        } else {
            inputBuffer.get(inputBytes)
            inputBuffer.rewind()
            inputs[0].writeInt8(inputBytes)
        }
        model.run(inputs, outputs)
        if (outputBuffer == null) return
        outputBuffer.rewind()
        if (spec.outputDtype == "float32") {
            outputBuffer.asFloatBuffer().put(outputs[ModelConfig.OUTPUT_INDEX].readFloat())
        } else {
            outputBuffer.put(outputs[ModelConfig.OUTPUT_INDEX].readInt8())
        }
        outputBuffer.rewind()
    }

    /**
     * Output [index] of the last run as raw values: [dtype] must be the tensor's ("float32", "int8", "uint8";
     * golden.json and the manifest say which): LiteRT copies the tensor's bytes without checking the type.
     */
    fun readOutput(index: Int, dtype: String): FloatArray = when (dtype) {
        "float32" -> outputs[index].readFloat()
        "int8" -> outputs[index].readInt8().let { raw -> FloatArray(raw.size) { raw[it].toFloat() } }
        "uint8" -> outputs[index].readInt8().let { raw -> FloatArray(raw.size) { (raw[it].toInt() and 0xff).toFloat() } }
        else -> throw LandmarkerException("output dtype $dtype is not supported", true)
    }

    /** How many outputs the model has. */
    val outputCount: Int
        get() = outputs.size

    /** Call when the face is lost, so the filter does not smooth across faces. */
    fun resetSmoothing() = filter.reset()

    private fun closeBuffers() {
        inputs.forEach { it.close() }
        outputs.forEach { it.close() }
        model.close()
        env.close()
    }

    override fun close() = closeBuffers()

    companion object {
        /** "litert 2.1.0": the runtime this module links (device.json "runtime"). */
        val RUNTIME: String = "litert " + BuildConfig.LITERT_VERSION

        /** The bundled model from this module's assets (stored uncompressed). */
        fun create(context: Context, options: Options = Options()): @@CLASS@@ =
            open(context, options) { env, o -> CompiledModel.create(context.assets, ModelConfig.MODEL_ASSET, o, env) }

        /** A model file with the same manifest (e.g. the benchmark's model.tflite in the run directory). */
        fun createFromFile(context: Context, file: File, options: Options = Options()): @@CLASS@@ {
            if (!file.isFile) throw LandmarkerException("model file not found: $file")
            return open(context, options) { env, o -> CompiledModel.create(file.absolutePath, o, env) }
        }

        /** The accelerators to try, in order, for a first choice. */
        fun fallbackOrder(first: Delegate, allowFallback: Boolean): List<Delegate> = when {
            !allowFallback -> listOf(first)
            first == Delegate.NPU -> listOf(Delegate.NPU, Delegate.GPU, Delegate.CPU)
            first == Delegate.GPU -> listOf(Delegate.GPU, Delegate.CPU)
            else -> listOf(Delegate.CPU)
        }

        private fun open(context: Context, options: Options, compile: (Environment, CompiledModel.Options) -> CompiledModel): @@CLASS@@ {
            val notes = ArrayList<String>()
            for (choice in fallbackOrder(options.accelerator, options.allowFallback)) {
                // every attempt gets its own environment, closed on failure: nothing leaks on the fallback path
                val env = if (choice == Delegate.NPU) Environment.create(BuiltinNpuAcceleratorProvider(context)) else Environment.create()
                var compiled: CompiledModel? = null
                try {
                    val accelerator = when (choice) {
                        Delegate.CPU -> Accelerator.CPU
                        Delegate.GPU -> Accelerator.GPU
                        Delegate.NPU -> Accelerator.NPU
                    }
                    if (choice != Delegate.CPU && accelerator !in env.getAvailableAccelerators()) {
                        throw LandmarkerException("${choice.protocolName} is not available on this device")
                    }
                    val o = CompiledModel.Options(accelerator)
                    o.cpuOptions = CompiledModel.CpuOptions(numThreads = options.threads)
                    compiled = compile(env, o)
                    val note = if (notes.isEmpty()) null else notes.joinToString("; ") + "; ran on ${choice.protocolName}"
                    return @@CLASS@@(options, ModelConfig.SPEC, env, compiled, choice, note)
                } catch (e: Exception) {
                    if (e is LandmarkerException && e.mismatch) throw e  // the same on every accelerator
                    compiled?.close()
                    env.close()
                    notes.add("${choice.protocolName} failed (${e.javaClass.simpleName}: ${e.message ?: "no message"})")
                } catch (e: UnsatisfiedLinkError) {
                    compiled?.close()
                    env.close()
                    notes.add("${choice.protocolName} failed (its native library is missing: ${e.message})")
                }
            }
            throw LandmarkerException("no accelerator could run the model: " + notes.joinToString("; "))
        }
    }
}
