package @@LIB_PKG@@

/** The three timed stages of one frame; the benchmark calls them in order. */
interface FrameStages {
    fun preprocess(frame: Int)
    fun infer(frame: Int)
    fun postprocess(frame: Int)
}

/** A monotonic nanosecond clock (System.nanoTime on the JVM and on Android). */
interface NanoClock {
    fun nanoTime(): Long
}

object SystemNanoClock : NanoClock {
    override fun nanoTime(): Long = System.nanoTime()
}

/** The outcome of a benchmark run: measured rows, the first frame's time, and an error if it stopped early. */
class LoopOutcome(val rows: List<FrameTiming>, val firstFrameUs: Long, val error: String?)

/**
 * DEVICE_PROTOCOL.md's frame loop: [warmup] unrecorded frames, then [frames]
 * measured ones; frame numbers count from 0 over the measured frames. An
 * exception stops the loop and is reported, never dropped: the rows measured
 * so far are kept. Platform-free (no Android imports, Kotlin 1.3 syntax).
 */
class BenchmarkLoop(private val clock: NanoClock = SystemNanoClock) {
    fun run(stages: FrameStages, frames: Int, warmup: Int): LoopOutcome {
        require(frames >= 0 && warmup >= 0) { "frames and warmup must not be negative" }
        val rows = ArrayList<FrameTiming>(frames)
        var firstFrameUs = 0L
        try {
            for (i in 0 until warmup + frames) {
                val t0 = clock.nanoTime()
                stages.preprocess(i)
                val t1 = clock.nanoTime()
                stages.infer(i)
                val t2 = clock.nanoTime()
                stages.postprocess(i)
                val t3 = clock.nanoTime()
                if (i == 0) firstFrameUs = (t3 - t0) / 1000
                if (i >= warmup) {
                    rows.add(FrameTiming(i - warmup, t0, (t1 - t0) / 1000, (t2 - t1) / 1000, (t3 - t2) / 1000, (t3 - t0) / 1000))
                }
            }
        } catch (e: Exception) {
            return LoopOutcome(rows, firstFrameUs, e.javaClass.simpleName + ": " + (e.message ?: "no message"))
        }
        return LoopOutcome(rows, firstFrameUs, null)
    }
}
