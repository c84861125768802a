// Face detector: MediaPipe's BlazeFace short-range model (face_detection_short_range.tflite, from the
// mediapipe wheel, bundled by devicekit package), run with the same LiteRT.js as the landmark model.
// Anchors and decoding follow MediaPipe's face_detection_short_range.pbtxt (SsdAnchorsCalculator: 4 layers,
// strides 8,16,16,16, fixed anchor size, 128x128 input; TensorsToDetectionsCalculator: x/y/w/h scale 128,
// sigmoid scores clipped at 100, min score 0.5). The frame is letterboxed into the square input.
// devicekit/web/detector.py runs the same decoder in Python (tests compare the two).

const STRIDES = [8, 16, 16, 16];

export function anchors(size = 128) {
  const out = [];
  let l = 0;
  while (l < STRIDES.length) {
    let n = 0, l2 = l;
    while (l2 < STRIDES.length && STRIDES[l2] === STRIDES[l]) { n += 2; l2++; }
    const g = Math.ceil(size / STRIDES[l]);
    for (let y = 0; y < g; y++) for (let x = 0; x < g; x++) for (let k = 0; k < n; k++) out.push([(x + 0.5) / g, (y + 0.5) / g]);
    l = l2;
  }
  return out;  // 896 for 128
}

// letterbox the RGBA frame into size x size, values in [-1, 1] (MediaPipe's face detection input)
export function detectorInput(frame, size = 128) {
  const { data, width: w, height: h } = frame;
  const s = Math.max(w, h) / size, ox = (size * s - w) / 2, oy = (size * s - h) / 2;
  const out = new Float32Array(size * size * 3);
  for (let v = 0; v < size; v++) {
    for (let u = 0; u < size; u++) {
      const fx = (u + 0.5) * s - ox - 0.5, fy = (v + 0.5) * s - oy - 0.5;
      const x0 = Math.floor(fx), y0 = Math.floor(fy), ax = fx - x0, ay = fy - y0;
      for (let c = 0; c < 3; c++) {
        const p = (ix, iy) => (ix < 0 || iy < 0 || ix >= w || iy >= h) ? 0 : data[(iy * w + ix) * 4 + c];
        const val = (1 - ay) * ((1 - ax) * p(x0, y0) + ax * p(x0 + 1, y0)) + ay * ((1 - ax) * p(x0, y0 + 1) + ax * p(x0 + 1, y0 + 1));
        out[(v * size + u) * 3 + c] = val / 127.5 - 1;
      }
    }
  }
  return { input: out, scale: s, ox, oy };
}

// regressors [896*16], scores [896] -> best face {x, y, w, h, score} in frame pixels, or null
export function decodeBest(reg, scores, anc, lb, size = 128, minScore = 0.5) {
  let best = -1, bestS = minScore;
  for (let i = 0; i < anc.length; i++) {
    const s = 1 / (1 + Math.exp(-Math.max(-100, Math.min(100, scores[i]))));
    if (s > bestS) { bestS = s; best = i; }
  }
  if (best < 0) return null;
  // weighted average of the boxes overlapping the best one (MediaPipe's WEIGHTED non-max suppression)
  const box = (i) => {
    const cx = reg[i * 16] / size + anc[i][0], cy = reg[i * 16 + 1] / size + anc[i][1];
    const w = reg[i * 16 + 2] / size, h = reg[i * 16 + 3] / size;
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2];
  };
  const b0 = box(best), acc = [0, 0, 0, 0];
  let wsum = 0;
  for (let i = 0; i < anc.length; i++) {
    const s = 1 / (1 + Math.exp(-Math.max(-100, Math.min(100, scores[i]))));
    if (s < minScore) continue;
    const b = box(i);
    const iw = Math.max(0, Math.min(b[2], b0[2]) - Math.max(b[0], b0[0])), ih = Math.max(0, Math.min(b[3], b0[3]) - Math.max(b[1], b0[1]));
    const inter = iw * ih, uni = (b[2] - b[0]) * (b[3] - b[1]) + (b0[2] - b0[0]) * (b0[3] - b0[1]) - inter;
    if (uni <= 0 || inter / uni < 0.3) continue;
    for (let k = 0; k < 4; k++) acc[k] += b[k] * s;
    wsum += s;
  }
  const [x0, y0, x1, y1] = acc.map((v) => (v / wsum) * size * lb.scale);
  return { x: x0 - lb.ox, y: y0 - lb.oy, w: x1 - x0, h: y1 - y0, score: bestS };
}
