// Detect -> crop (model's crop policy) -> landmarks -> 1-euro, per video frame, with per-stage timings.
// The crop comes from the detector box mapped to its Haar equivalent (toHaar, boxFromDetection), as in the
// Python reference. config.json detector.redetect (default 1: detect every frame) and detector.refine
// (default false) switch on tracking: frames between detections (and, with refine, the detection frame
// itself) are cropped from the previous landmarks (boxFromLandmarks, crop.py's LANDMARK_BOX), which saves
// the detector but lets a weak model drift, so a drifting track re-detects.
import { boxFromDetection, boxFromLandmarks, cropImage, decode, toHaar, toInput, OneEuro } from './pipeline.js';
import { anchors, decodeBest, detectorInput } from './detector.js';
import { runModel } from './runtime.js';

const now = () => performance.now();

export class Tracker {
  constructor(cfg, model, detector, redetect = 30) {
    this.cfg = cfg; this.model = model; this.detector = detector; this.redetect = redetect;
    this.anc = anchors(cfg.detector.size);
    this.filter = new OneEuro(cfg.oneEuro);
    this.prev = null; this.sinceDetect = 0;
    this.shape = cfg.inputLayout === 'NHWC' ? [1, cfg.inputHeight, cfg.inputWidth, cfg.channels] : [1, cfg.channels, cfg.inputHeight, cfg.inputWidth];
  }

  async detect(frame) {
    const s = this.cfg.detector.size;
    const lb = detectorInput(frame, s);
    const outs = await runModel(this.detector, lb.input, [1, s, s, 3]);
    const reg = outs.find((o) => o.length === this.anc.length * 16), sc = outs.find((o) => o.length === this.anc.length);
    return decodeBest(reg, sc, this.anc, lb, s, this.cfg.detector.minScore);
  }

  async landmarks(frame, box, t) {
    const t0 = now();
    const x = toInput(this.cfg, cropImage(frame, box, this.cfg.inputWidth));
    const t1 = now();
    const outs = await runModel(this.model, x, this.shape);
    const t2 = now();
    const pts = decode(this.cfg, outs[this.cfg.outputIndex], box);
    t.preprocess += t1 - t0; t.inference += t2 - t1; t.postprocess += now() - t2;
    return pts;
  }

  // frame: {data: RGBA, width, height}; time in seconds. Returns null when no face is found.
  async step(frame, time) {
    const t = { detect: 0, preprocess: 0, inference: 0, postprocess: 0 };
    const out = { timings: t };
    const detectNow = !this.prev || this.sinceDetect >= this.redetect;
    if (detectNow) {
      const t0 = now();
      const det = await this.detect(frame);
      t.detect = now() - t0;
      this.sinceDetect = 0;
      if (!det) { this.prev = null; this.filter.reset(); return null; }
      out.detection = det;
      out.detectBox = boxFromDetection(this.cfg, ...toHaar(this.cfg.detector.toHaar, det.x, det.y, det.w, det.h));
      out.detectLandmarks = await this.landmarks(frame, out.detectBox, t);
      this.prev = out.detectLandmarks;
    }
    this.sinceDetect++;
    if (detectNow && !this.cfg.detector.refine) {
      // the Python reference's policy: detector box -> crop -> landmarks, every detection frame
      out.box = out.detectBox; out.landmarks = out.detectLandmarks; out.refined = false;
    } else {
      out.box = boxFromLandmarks(this.cfg, this.prev);
      // a track that drifts (box much smaller/larger than or far from the last detection's) re-detects next frame
      const d = this.lastDetectBox;
      if (!out.detectBox && d && (Math.abs(out.box.size / d.size - 1) > 0.5 || Math.hypot(out.box.cx - d.cx, out.box.cy - d.cy) > 0.5 * d.size)) {
        this.sinceDetect = this.redetect;
      }
      out.landmarks = await this.landmarks(frame, out.box, t);
      out.refined = true;
    }
    if (out.detectBox) this.lastDetectBox = out.detectBox;
    const t3 = now();
    out.filtered = this.filter.filter(out.landmarks, time);
    t.postprocess += now() - t3;
    this.prev = out.landmarks;
    return out;
  }
}
