// Benchmark mode (DEVICE_PROTOCOL.md result files): ?mode=bench&run=RUN&frames=N&warmup=W&backend=wasm|webgpu&threads=T
// Runs preprocess (crop + normalise/quantise) -> model -> decode + 1-euro on synthetic frames and POSTs
// frames.csv, device.json and done.json (in that order) to the devicekit server that served the page.
import { cropImage, decode, toInput, OneEuro } from './pipeline.js';
import { compile, initRuntime, runModel } from './runtime.js';

const RUN_RE = /^[A-Za-z0-9_-]{1,64}$/;

// Results go back only with this run's token (from the URL devicekit opened): the server refuses other uploads.
const TOKEN = new URLSearchParams(location.search).get('token') || '';

async function post(run, name, body) {
  const r = await fetch(`/devicekit/results/${run}/${name}`, { method: 'POST', body, headers: { 'X-Devicekit-Token': TOKEN } });
  if (!r.ok) throw new Error(`POST ${name}: HTTP ${r.status}`);
}

// LiteRT.js asked for more threads than the browser has cores does not run slower, it hangs (0 frames in 300 s
// on a 2-core machine with 4 threads): ask for at most navigator.hardwareConcurrency, and say so in device.json.
export function capThreads(asked) {
  const cores = Math.max(1, navigator.hardwareConcurrency || 1);
  return asked > cores ? { threads: cores, note: `asked for ${asked} threads, the browser has ${cores} cores: ran ${cores}` } : { threads: asked, note: null };
}

function syntheticFrame(w, h, k) {
  // a moving gradient with texture: the same work per frame as a camera image
  const data = new Uint8ClampedArray(w * h * 4);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const i = (y * w + x) * 4;
    data[i] = (x + k * 3) & 255; data[i + 1] = (y * 2 + k) & 255; data[i + 2] = ((x ^ y) + k) & 255; data[i + 3] = 255;
  }
  return { data, width: w, height: h };
}

function browserFacts() {
  const ua = navigator.userAgent;
  const m = ua.match(/(HeadlessChrome|Chrome|Chromium)\/([\d.]+)/);
  const android = ua.match(/Android ([\d.]+)/);
  return {
    model: m ? `${m[1]} ${m[2]}` : ua.slice(0, 80),
    os: android ? `android ${android[1]}` : (navigator.platform || 'unknown').toLowerCase(),
    manufacturer: 'browser',
  };
}

export async function runBenchmark(cfg, params, status) {
  const run = params.get('run') || '';
  if (!RUN_RE.test(run)) throw new Error('benchmark mode needs ?run=<[A-Za-z0-9_-]{1,64}>');
  const frames = Math.max(1, parseInt(params.get('frames') || '100', 10));
  const warmup = Math.max(0, parseInt(params.get('warmup') || '10', 10));
  const backend = params.get('backend') === 'webgpu' ? 'webgpu' : 'wasm';
  const asked = Math.max(1, parseInt(params.get('threads') || '1', 10));
  const { threads, note: threadsNote } = capThreads(asked);
  const rows = ['frame,start_ns,preprocess_us,inference_us,postprocess_us,total_us'];
  let loadUs = 0, firstUs = 0, done = { protocol: 1, status: 'ok', frames, error: null }, usedThreads = 1;
  try {
    const t0 = performance.now();
    const rt = await initRuntime(threads);
    usedThreads = backend === 'wasm' && rt.threaded ? threads : 1;
    const model = await compile(new URL('model/' + cfg.modelFile, location.href).href, backend, usedThreads);
    loadUs = Math.round((performance.now() - t0) * 1000);
    const shape = cfg.inputLayout === 'NHWC' ? [1, cfg.inputHeight, cfg.inputWidth, cfg.channels] : [1, cfg.channels, cfg.inputHeight, cfg.inputWidth];
    const filt = new OneEuro(cfg.oneEuro);
    const W = 640, H = 480, pool = [0, 1, 2, 3].map((k) => syntheticFrame(W, H, k * 17));
    let lastPost = performance.now();
    for (let i = 0; i < warmup + frames; i++) {
      const frame = pool[i % pool.length];
      const box = { cx: W / 2 + (i % 5), cy: H / 2, size: 270 + (i % 3) };
      const a = performance.now();
      const x = toInput(cfg, cropImage(frame, box, cfg.inputWidth));
      const b = performance.now();
      const outs = await runModel(model, x, shape);
      const c = performance.now();
      filt.filter(decode(cfg, outs[cfg.outputIndex], box), i / 30);
      const d = performance.now();
      const us = (v) => Math.round(v * 1000);
      if (i === 0) firstUs = us(d - a);
      if (i >= warmup) rows.push(`${i - warmup},${Math.round(a * 1e6)},${us(b - a)},${us(c - b)},${us(d - c)},${us(d - a)}`);
      if (status && i % 10 === 0) status(`benchmark: frame ${i + 1}/${warmup + frames}`);
      if (performance.now() - lastPost > 2000) {  // frames so far reach the host even if the browser dies (between frames, untimed)
        await post(run, 'frames.csv', rows.join('\n') + '\n');
        lastPost = performance.now();
      }
    }
    model.delete();
  } catch (e) {
    done = { protocol: 1, status: 'error', frames: rows.length - 1, error: String(e && e.message || e) };
  }
  const f = browserFacts();
  const device = {
    protocol: 1, model: f.model, manufacturer: f.manufacturer, os: f.os, soc: null,
    delegate: `litert.js-${backend}`, threads: usedThreads, thermal_start: null, thermal_end: null,
    load_us: loadUs, first_frame_us: firstUs, peak_rss_kb: performance.memory ? Math.round(performance.memory.usedJSHeapSize / 1024) : null,
    user_agent: navigator.userAgent, cross_origin_isolated: self.crossOriginIsolated === true,
  };
  if (threadsNote) Object.assign(device, { threads_requested: asked, threads_note: threadsNote });
  await post(run, 'frames.csv', rows.join('\n') + '\n');
  await post(run, 'device.json', JSON.stringify(device));
  await post(run, 'done.json', JSON.stringify(done));
  if (status) status(`benchmark ${done.status}: ${rows.length - 1} frames` + (done.error ? ` (${done.error})` : ''));
  return done;
}
