// Pre- and post-processing of the landmark model, the same maths as devicekit's Python reference:
// crop policy and crop (devicekit/face/crop.py: box_from_detection, box_from_landmarks, crop_image with
// cv2 INTER_AREA pre-reduction and INTER_LINEAR warpAffine), normalisation (devicekit/config.py
// InputSpec.normalize, float32), input quantisation (devicekit/tflite_run.py: round half to even),
// landmark decoding back to image pixels (crop.to_image) and the 1-euro filter (devicekit/verify/one_euro.py).
// Every constant comes from config.json, which devicekit package writes from the model's manifest.

const f32 = Math.fround;

// ---- crop policy ----
export function boxFromDetection(cfg, x, y, w, h) {
  const side = cfg.cropEnlarge * (cfg.cropSquare ? Math.max(w, h) : w);
  return { cx: x + w / 2, cy: y + h / 2 + cfg.cropShiftY * h, size: side };
}

// BlazeFace box -> the Haar-equivalent box the crop policy was written for (constants measured by
// benchmarks/web_detector.py, in config.json detector.toHaar)
export function toHaar(m, x, y, w, h) {
  const s = Math.max(w, h), cx = x + w / 2 + m.dx * s, cy = y + h / 2 + m.dy * s, side = m.k * s;
  return [cx - side / 2, cy - side / 2, side, side];
}

export function boxFromLandmarks(cfg, pts) {
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const [x, y] of pts) { x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y); }
  const s = cfg.landmarkBox.size * (x1 - x0);
  const cx = (x0 + x1) / 2, cy = (y0 + y1) / 2 + cfg.landmarkBox.dy * s;
  return boxFromDetection(cfg, cx - s / 2, cy - s / 2, s, s);
}

// ---- crop (continuous coords, pixel centres at i + 0.5) ----
function areaTable(ssize, dsize) {
  // cv2 computeResizeAreaTab: per destination index d, source indices idx[start[d]..start[d+1]) with weights
  const scale = ssize / dsize, idx = [], wts = [], start = [0];
  for (let dx = 0; dx < dsize; dx++) {
    const fsx1 = dx * scale, fsx2 = fsx1 + scale, cell = Math.min(scale, ssize - fsx1);
    let sx1 = Math.ceil(fsx1), sx2 = Math.floor(fsx2);
    sx2 = Math.min(sx2, ssize - 1); sx1 = Math.min(sx1, sx2);
    if (sx1 - fsx1 > 1e-3) { idx.push(sx1 - 1); wts.push((sx1 - fsx1) / cell); }
    for (let sx = sx1; sx < sx2; sx++) { idx.push(sx); wts.push(1 / cell); }
    if (fsx2 - sx2 > 1e-3) { idx.push(sx2); wts.push(Math.min(Math.min(fsx2 - sx2, 1), cell) / cell); }
    start.push(idx.length);
  }
  return { idx: Int32Array.from(idx), wts: Float32Array.from(wts), start: Int32Array.from(start) };  // cv2 keeps float weights
}

// RGBA [h*w*4] -> [nh*nw*4] with cv2.INTER_AREA, in cv2's float32 arithmetic (resizeArea_<uchar, float>:
// per source row a horizontal weighted sum, accumulated into the row sum with the vertical weight, rounded
// half to even at the end). Only the destination rectangle [dx0,dx1) x [dy0,dy1) is computed (each output
// pixel depends only on its own source cell, so the values equal a full resize there); the rest stays 0.
export function resizeArea(src, w, h, nw, nh, dx0, dx1, dy0, dy1) {
  const tx = areaTable(w, nw), ty = areaTable(h, nh), cw = dx1 - dx0;
  const out = new Uint8ClampedArray(nh * nw * 4);
  const row = new Float32Array(cw * 3);
  const acc = new Float32Array(cw * 3);
  for (let dy = dy0; dy < dy1; dy++) {
    acc.fill(0);
    for (let k = ty.start[dy]; k < ty.start[dy + 1]; k++) {
      const sy = ty.idx[k], wy = ty.wts[k], base = sy * w * 4;
      for (let dx = dx0, j = 0; dx < dx1; dx++, j += 3) {
        let r = 0, g = 0, b = 0;
        for (let m = tx.start[dx]; m < tx.start[dx + 1]; m++) {
          const i = base + tx.idx[m] * 4, wt = tx.wts[m];
          r = f32(r + f32(src[i] * wt)); g = f32(g + f32(src[i + 1] * wt)); b = f32(b + f32(src[i + 2] * wt));
        }
        row[j] = r; row[j + 1] = g; row[j + 2] = b;
      }
      for (let j = 0; j < cw * 3; j++) acc[j] = f32(acc[j] + f32(row[j] * wy));
    }
    for (let dx = dx0, j = 0; dx < dx1; dx++, j += 3) {
      const o = (dy * nw + dx) * 4;
      out[o] = rint(acc[j]); out[o + 1] = rint(acc[j + 1]); out[o + 2] = rint(acc[j + 2]); out[o + 3] = 255;
    }
  }
  return out;
}

// frame: {data: RGBA, width, height}; returns RGBA Uint8ClampedArray [out*out*4]
export function cropImage(frame, box, out) {
  let { data, width: w, height: h } = frame;
  const scale = out / box.size;
  let sx = 1, sy = 1;  // resized -> original continuous coords
  if (scale < 0.5) {
    const nw = Math.max(1, Math.round(w * 2 * scale)), nh = Math.max(1, Math.round(h * 2 * scale));
    const sxr = w / nw, syr = h / nh, half = box.size / 2;
    const cl = (v, n) => Math.max(0, Math.min(n, v));
    data = resizeArea(data, w, h, nw, nh,
      cl(Math.floor((box.cx - half) / sxr) - 2, nw), cl(Math.ceil((box.cx + half) / sxr) + 2, nw),
      cl(Math.floor((box.cy - half) / syr) - 2, nh), cl(Math.ceil((box.cy + half) / syr) + 2, nh));
    sx = w / nw; sy = h / nh; w = nw; h = nh;
  }
  // The forward map (src index -> dst index) as crop.py builds it, then cv2.warpAffine's own arithmetic:
  // invertAffineTransform in double, source positions in fixed point (1/1024 rounded, then 1/32 steps),
  // bilinear weights exact in 1/1024, result rounded half up; outside the image is 0.
  const M0 = scale * sx, M4 = scale * sy;
  const M2 = (out / 2 - scale * box.cx) + M0 * 0.5 - 0.5, M5 = (out / 2 - scale * box.cy) + M4 * 0.5 - 0.5;
  const D = 1 / (M0 * M4), A11 = M4 * D, A22 = M0 * D, b1 = -A11 * M2, b2 = -A22 * M5;
  const res = new Uint8ClampedArray(out * out * 4);
  const adelta = new Int32Array(out);
  for (let u = 0; u < out; u++) adelta[u] = rint(A11 * u * 1024);
  const X0 = rint(b1 * 1024) + 16;
  const px = (ix, iy, c) => (ix < 0 || iy < 0 || ix >= w || iy >= h) ? 0 : data[(iy * w + ix) * 4 + c];
  for (let v = 0; v < out; v++) {
    const Y = (rint((A22 * v + b2) * 1024) + 16) >> 5, y0 = Y >> 5, ay = (Y & 31) / 32;
    for (let u = 0; u < out; u++) {
      const X = (X0 + adelta[u]) >> 5, x0 = X >> 5, ax = (X & 31) / 32;
      const o = (v * out + u) * 4;
      for (let c = 0; c < 3; c++) {
        const val = (1 - ay) * ((1 - ax) * px(x0, y0, c) + ax * px(x0 + 1, y0, c)) + ay * ((1 - ax) * px(x0, y0 + 1, c) + ax * px(x0 + 1, y0 + 1, c));
        res[o + c] = Math.floor(val + 0.5);
      }
      res[o + 3] = 255;
    }
  }
  return res;
}

// cvRound: round half to even (lrint)
function rint(x) {
  const r = Math.round(x);
  return (r - x === 0.5 && r % 2 !== 0) ? r - 1 : r;
}

// ---- model input ----
function roundHalfEven(x) {
  const r = Math.round(x);
  return (Math.abs(x % 1) === 0.5 && r % 2 !== 0) ? r - 1 : r;
}

// RGBA crop -> typed array in the model's input layout and dtype
export function toInput(cfg, rgba) {
  const W = cfg.inputWidth, H = cfg.inputHeight, C = cfg.channels, n = W * H;
  const order = cfg.color === 'bgr' ? [2, 1, 0] : [0, 1, 2];
  const q = cfg.inputDtype !== 'float32';
  const out = q ? (cfg.inputDtype === 'int8' ? new Int8Array(n * C) : new Uint8Array(n * C)) : new Float32Array(n * C);
  const lo = cfg.inputDtype === 'int8' ? -128 : 0, hi = cfg.inputDtype === 'int8' ? 127 : 255;
  const mean = cfg.mean.map(f32), std = cfg.std.map(f32), scale = f32(cfg.inputScale), zp = cfg.inputZeroPoint;
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < C; c++) {
      const p = C === 1
        ? (rgba[i * 4] * 4899 + rgba[i * 4 + 1] * 9617 + rgba[i * 4 + 2] * 1868 + 8192) >> 14  // cv2 RGB2GRAY fixed point
        : rgba[i * 4 + order[c]];
      let x = f32(f32(p - mean[c]) / std[c]);
      if (q) x = Math.min(hi, Math.max(lo, roundHalfEven(f32(f32(x / scale) + zp))));
      out[cfg.inputLayout === 'NHWC' ? i * C + c : c * n + i] = x;
    }
  }
  return out;
}

// ---- output -> image pixels ----
export function decode(cfg, out, box) {
  const L = cfg.numLandmarks, V = cfg.valuesPerLandmark, S = cfg.inputWidth, pts = [];
  const deq = cfg.outputDtype === 'float32' ? (v) => v : (v) => (v - cfg.outputZeroPoint) * cfg.outputScale;
  for (let i = 0; i < L; i++) {
    let x = deq(out[i * V]), y = deq(out[i * V + 1]);
    if (cfg.coords === 'normalized') { x *= cfg.inputWidth; y *= cfg.inputHeight; }
    // crop.to_image: inverse of crop = scale * (img - centre) + out/2
    pts.push([(x - S / 2) * box.size / S + box.cx, (y - cfg.inputHeight / 2) * box.size / cfg.inputHeight + box.cy]);
  }
  return pts;
}

// ---- 1-euro filter (Casiez et al. 2012), per coordinate, t in seconds ----
export class OneEuro {
  constructor(p) { this.p = p; this.x = null; }
  static alpha(fc, dt) { const tau = 1 / (2 * Math.PI * fc); return 1 / (1 + tau / dt); }
  filter(pts, t) {
    const flat = pts.flat();
    if (this.x === null || t <= this.t) {
      this.x = flat.slice(); this.dx = flat.map(() => 0); this.t = t;
      return pts.map((p) => p.slice());
    }
    const dt = t - this.t, ad = OneEuro.alpha(this.p.d_cutoff, dt);
    for (let i = 0; i < flat.length; i++) {
      const dx = (flat[i] - this.x[i]) / dt;
      this.dx[i] += ad * (dx - this.dx[i]);
      const fc = this.p.min_cutoff + this.p.beta * Math.abs(this.dx[i]);
      this.x[i] += OneEuro.alpha(fc, dt) * (flat[i] - this.x[i]);
    }
    this.t = t;
    return pts.map((_, i) => [this.x[2 * i], this.x[2 * i + 1]]);
  }
  reset() { this.x = null; }
}
