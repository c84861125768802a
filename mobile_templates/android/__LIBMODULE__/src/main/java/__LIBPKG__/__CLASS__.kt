package @@LIB_PKG@@

import android.content.Context
import android.graphics.Bitmap
import android.os.SystemClock
import org.tensorflow.lite.Interpreter
import org.tensorflow.lite.gpu.CompatibilityList
import org.tensorflow.lite.gpu.GpuDelegate
import java.io.File
import java.io.FileInputStream
import java.nio.ByteBuffer
import java.nio.ByteOrder
import java.nio.MappedByteBuffer
import java.nio.channels.FileChannel

/**
 * The drop-in landmarker for @@MODEL_NAME@@ (@@NUM_LANDMARKS@@ landmarks) on LiteRT.
 *
 * ```
 * val landmarker = @@CLASS@@.create(context, @@CLASS@@.Options(delegate = @@CLASS@@.Delegate.GPU))
 * val result = landmarker.detect(bitmap, faceBox, frameTimeNanos)  // landmarks in bitmap pixels
 * landmarker.close()
 * ```
 *
 * Preprocessing, decoding and the 1-euro filter follow the artifact's manifest
 * (see [ModelConfig]); they live in platform-free classes ([Preprocessor],
 * [Decoder], [OneEuroFilter]) that devicekit's tests run on the JVM.
 */
class @@CLASS@@ private constructor(
    model: ByteBuffer,
    val options: Options,
    val spec: ModelSpec
) : AutoCloseable {

    enum class Delegate { CPU, XNNPACK, GPU, NNAPI }

    /** threads: CPU threads; delegate: GPU falls back to XNNPACK on the CPU when the device cannot run it. */
    data class Options(
        val threads: Int = 4,
        val delegate: Delegate = Delegate.XNNPACK,
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

    /** The delegate actually in use ("gpu", "xnnpack", "cpu", "nnapi"), after any fallback. */
    val activeDelegate: String

    private val interpreter: Interpreter
    private var gpuDelegate: GpuDelegate? = null
    private val preprocessor = Preprocessor(spec)
    private val decoder = Decoder(spec)
    private val input: ByteBuffer = preprocessor.newInputBuffer()
    private val output: ByteBuffer = decoder.newOutputBuffer()
    private val filter = OneEuroFilter(spec.oneEuroMinCutoff, spec.oneEuroBeta, spec.oneEuroDCutoff)
    private var pixels = IntArray(0)

    init {
        var chosen = options.delegate
        var interp: Interpreter? = null
        if (options.delegate == Delegate.GPU) {
            try {
                val compat = CompatibilityList()
                if (compat.isDelegateSupportedOnThisDevice) {
                    val gpu = GpuDelegate(compat.bestOptionsForThisDevice)
                    interp = Interpreter(model, Interpreter.Options().addDelegate(gpu))
                    gpuDelegate = gpu
                }
            } catch (e: Exception) {
                gpuDelegate?.close()
                gpuDelegate = null
                interp = null
            } catch (e: UnsatisfiedLinkError) {
                gpuDelegate = null
                interp = null
            }
            if (interp == null) chosen = Delegate.XNNPACK
        }
        if (interp == null) {
            val o = Interpreter.Options().setNumThreads(options.threads)
            o.setUseXNNPACK(chosen == Delegate.XNNPACK)
            if (chosen == Delegate.NNAPI) o.setUseNNAPI(true)
            interp = Interpreter(model, o)
        }
        interpreter = interp ?: throw IllegalStateException("LiteRT interpreter was not created")
        activeDelegate = when (chosen) {
            Delegate.GPU -> "gpu"
            Delegate.XNNPACK -> "xnnpack"
            Delegate.NNAPI -> "nnapi"
            Delegate.CPU -> "cpu"
        }
        checkTensors()
    }

    private fun checkTensors() {
        val inBytes = interpreter.getInputTensor(0).numBytes()
        val outBytes = interpreter.getOutputTensor(ModelConfig.OUTPUT_INDEX).numBytes()
        require(inBytes == spec.inputBytes) { "model input is $inBytes bytes, the manifest says ${spec.inputBytes}" }
        require(outBytes == spec.outputBytes) { "model output is $outBytes bytes, the manifest says ${spec.outputBytes}" }
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

    /** Runs the model on an input buffer already filled by [Preprocessor] (used by the benchmark). */
    fun runRaw(inputBuffer: ByteBuffer, outputBuffer: ByteBuffer) {
        inputBuffer.rewind()
        outputBuffer.rewind()
        val outputs = HashMap<Int, Any>()
        outputs[ModelConfig.OUTPUT_INDEX] = outputBuffer
        interpreter.runForMultipleInputsOutputs(arrayOf<Any>(inputBuffer), outputs)
    }

    /** Call when the face is lost, so the filter does not smooth across faces. */
    fun resetSmoothing() = filter.reset()

    override fun close() {
        interpreter.close()
        gpuDelegate?.close()
        gpuDelegate = null
    }

    companion object {
        /** The bundled model from this module's assets (stored uncompressed, memory-mapped). */
        fun create(context: Context, options: Options = Options()): @@CLASS@@ {
            val fd = context.assets.openFd(ModelConfig.MODEL_ASSET)
            val model = FileInputStream(fd.fileDescriptor).use { stream ->
                stream.channel.map(FileChannel.MapMode.READ_ONLY, fd.startOffset, fd.declaredLength)
            }
            fd.close()
            return @@CLASS@@(model, options, ModelConfig.SPEC)
        }

        /** A model file with the same manifest (e.g. the benchmark's model.tflite in the run directory). */
        fun createFromFile(file: File, options: Options = Options()): @@CLASS@@ {
            val model: MappedByteBuffer = FileInputStream(file).use { stream ->
                stream.channel.map(FileChannel.MapMode.READ_ONLY, 0, stream.channel.size())
            }
            model.order(ByteOrder.nativeOrder())
            return @@CLASS@@(model, options, ModelConfig.SPEC)
        }
    }
}
