package @@APP_ID@@

import android.content.Context
import android.graphics.Canvas
import android.graphics.Color
import android.graphics.Paint
import android.util.AttributeSet
import android.view.View

/** Draws landmarks given in image pixels over a PreviewView that fills the view (FILL_CENTER). */
class LandmarkOverlayView(context: Context, attrs: AttributeSet?) : View(context, attrs) {
    private val paint = Paint(Paint.ANTI_ALIAS_FLAG).apply {
        color = Color.GREEN
        style = Paint.Style.FILL
    }
    private var points: FloatArray? = null
    private var imageWidth = 1
    private var imageHeight = 1
    private var mirrored = false

    fun show(landmarks: FloatArray?, width: Int, height: Int, mirrored: Boolean) {
        points = landmarks
        imageWidth = width
        imageHeight = height
        this.mirrored = mirrored
        invalidate()
    }

    override fun onDraw(canvas: Canvas) {
        super.onDraw(canvas)
        val pts = points ?: return
        val scale = Math.max(width.toFloat() / imageWidth, height.toFloat() / imageHeight)
        val dx = (width - imageWidth * scale) / 2f
        val dy = (height - imageHeight * scale) / 2f
        val r = Math.max(2f, 3f * resources.displayMetrics.density / 2f)
        var i = 0
        while (i + 1 < pts.size) {
            var x = pts[i] * scale + dx
            if (mirrored) x = width - x
            canvas.drawCircle(x, pts[i + 1] * scale + dy, r, paint)
            i += 2
        }
    }
}
