package @@APP_ID@@

import android.graphics.BitmapFactory
import androidx.test.ext.junit.runners.AndroidJUnit4
import androidx.test.platform.app.InstrumentationRegistry
import @@LIB_PKG@@.GoldenRunner
import @@LIB_PKG@@.LandmarkerException
import @@LIB_PKG@@.Preprocessor
import @@LIB_PKG@@.@@CLASS@@
import org.junit.Assert.assertTrue
import org.junit.Assume.assumeTrue
import org.junit.Test
import org.junit.runner.RunWith

/**
 * The golden test devicekit generated for @@MODEL_NAME@@ (`./gradlew :app:connectedAndroidTest`, or Android
 * Studio). assets/golden/ holds golden_face.png (a fixed face photo), golden_input.bin (the model input made
 * from it by devicekit's port of this module's Preprocessor) and golden.json (the reference outputs on that
 * input and the gate verify used). On this phone it checks that the Kotlin preprocessing makes the same input,
 * and that the embedded model's landmarks are within the gate on each accelerator the phone has.
 */
@RunWith(AndroidJUnit4::class)
class GoldenTest {
    private val instrumentation = InstrumentationRegistry.getInstrumentation()
    private val appContext = instrumentation.targetContext
    private fun asset(name: String): ByteArray = instrumentation.context.assets.open("golden/$name").use { it.readBytes() }
    private val golden = GoldenRunner(String(asset("golden.json"), Charsets.UTF_8))

    @Test
    fun preprocessingMakesTheGoldenInput() {
        val bitmap = BitmapFactory.decodeByteArray(asset("golden_face.png"), 0, asset("golden_face.png").size)
        val spec = ModelSpecHolder.spec
        val pixels = IntArray(bitmap.width * bitmap.height)
        bitmap.getPixels(pixels, 0, bitmap.width, 0, 0, bitmap.width, bitmap.height)
        val pre = Preprocessor(spec)
        val buffer = pre.newInputBuffer()
        pre.run(pixels, bitmap.width, bitmap.height, golden.crop, buffer)
        val expected = asset("golden_input.bin")
        if (spec.inputDtype == "float32") {
            val want = java.nio.ByteBuffer.wrap(expected).order(java.nio.ByteOrder.LITTLE_ENDIAN).asFloatBuffer()
            var worst = 0.0
            while (want.hasRemaining()) worst = Math.max(worst, Math.abs(want.get() - buffer.getFloat()).toDouble())
            assertTrue("preprocessing differs from golden_input.bin by $worst", worst < 1e-3)
        } else {
            var off = 0
            for (b in expected) {
                val d = Math.abs(b.toInt() - buffer.get().toInt())
                assertTrue("a quantised input differs by $d steps", d <= 1)
                if (d != 0) off++
            }
            assertTrue("$off of ${expected.size} quantised inputs differ by one step", off <= expected.size / 100)
        }
    }

    @Test
    fun cpuMatchesTheReference() = check(@@CLASS@@.Delegate.CPU)

    @Test
    fun gpuMatchesTheReference() = check(@@CLASS@@.Delegate.GPU)

    @Test
    fun npuMatchesTheReference() = check(@@CLASS@@.Delegate.NPU)

    private fun check(accelerator: @@CLASS@@.Delegate) {
        val lm = try {
            @@CLASS@@.create(appContext, @@CLASS@@.Options(accelerator = accelerator, allowFallback = false))
        } catch (e: LandmarkerException) {
            assumeTrue("${accelerator.protocolName} is not available here: ${e.message}", accelerator == @@CLASS@@.Delegate.CPU)
            throw e
        }
        lm.use {
            val r = golden.run(it, asset("golden_input.bin"))
            assertTrue("${accelerator.protocolName}: ${r.toJson()} fails the gate " +
                "(landmarks ${golden.meanPxLimit} px, rel_l2 ${golden.relL2Limit})", golden.passes(r))
        }
    }
}

/** The bundled model's spec (ModelConfig.SPEC), named here so the test reads like the app. */
private object ModelSpecHolder {
    val spec = @@LIB_PKG@@.ModelConfig.SPEC
}
