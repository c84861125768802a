package @@LIB_PKG@@

/**
 * What the model expects and produces, as the devicekit manifest describes it.
 *
 * Platform-free (no Android imports, Kotlin 1.3 syntax): the same file is
 * compiled and run by devicekit's tests on the JVM. The values of the bundled
 * model are in [ModelConfig.SPEC], generated from the artifact's manifest.
 */
class ModelSpec(
    /** Model input width and height in pixels. */
    val inputWidth: Int,
    val inputHeight: Int,
    /** 1 (gray) or 3 (rgb / bgr). */
    val channels: Int,
    /** "rgb", "bgr" or "gray": channel order of the model input. */
    val color: String,
    /** Tensor layout of the runtime's input: "NHWC" (LiteRT) or "NCHW". */
    val inputLayout: String,
    /** input = (pixel - mean[c]) / std[c], pixels in 0..255. */
    val mean: DoubleArray,
    val std: DoubleArray,
    /** "float32", "int8" or "uint8"; quantized inputs use q = round(input / scale) + zeroPoint. */
    val inputDtype: String,
    val inputScale: Double,
    val inputZeroPoint: Int,
    /** Landmarks in the output and values per landmark (2 for x,y; 3 for x,y,z). */
    val numLandmarks: Int,
    val valuesPerLandmark: Int,
    /** "float32", "int8" or "uint8"; quantized outputs are (q - zeroPoint) * scale. */
    val outputDtype: String,
    val outputScale: Double,
    val outputZeroPoint: Int,
    /** "input_pixels" (pixel centres at i + 0.5) or "normalized" (0..1 of the input size). */
    val coords: String,
    /** Crop policy: side = enlarge * max(w, h) of the face box, centre moved down by shiftY * h. */
    val cropEnlarge: Double,
    val cropShiftY: Double,
    val cropSquare: Boolean,
    /** 1-euro filter constants (Casiez et al. 2012). */
    val oneEuroMinCutoff: Double,
    val oneEuroBeta: Double,
    val oneEuroDCutoff: Double
) {
    init {
        require(inputWidth > 0 && inputHeight > 0) { "input size must be positive" }
        require(channels == 1 || channels == 3) { "channels must be 1 or 3, got $channels" }
        require((color == "gray" && channels == 1) || ((color == "rgb" || color == "bgr") && channels == 3)) {
            "color $color does not fit $channels channels"
        }
        require(mean.size == channels && std.size == channels) { "mean/std need one value per channel" }
        require(inputLayout == "NHWC" || inputLayout == "NCHW") { "input layout must be NHWC or NCHW" }
        require(inputDtype == "float32" || inputDtype == "int8" || inputDtype == "uint8") { "input dtype $inputDtype" }
        require(outputDtype == "float32" || outputDtype == "int8" || outputDtype == "uint8") { "output dtype $outputDtype" }
        require(numLandmarks > 0 && valuesPerLandmark >= 2) { "need landmarks with at least x and y" }
    }

    /** Bytes of one input tensor. */
    val inputBytes: Int
        get() = inputWidth * inputHeight * channels * (if (inputDtype == "float32") 4 else 1)

    /** Elements and bytes of the landmark output tensor. */
    val outputElements: Int
        get() = numLandmarks * valuesPerLandmark

    val outputBytes: Int
        get() = outputElements * (if (outputDtype == "float32") 4 else 1)
}
