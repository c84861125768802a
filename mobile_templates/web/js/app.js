// The web app: camera -> face -> landmarks drawn on a canvas at video rate, FPS and per-stage latency shown.
// ?mode=bench runs the benchmark instead (bench.js). ?backend=wasm|webgpu, ?threads=N.
// ?report=RUN&token=T&after=K (tests): after K tracked frames, POST that frame's pixels (frame.rgba) and its
// detection, crops and landmarks (landmarks.json) to the devicekit server, so Python can redo the same frame.
import { capThreads, runBenchmark } from './bench.js';
import { compile, initRuntime } from './runtime.js';
import { Tracker } from './tracker.js';

const params = new URLSearchParams(location.search);
const statusEl = document.getElementById('status');
const statsEl = document.getElementById('stats');
const state = (window.devicekit = { ready: false, frames: 0, last: null, error: null, reported: false, mode: params.get('mode') || 'camera' });
const setStatus = (s) => { statusEl.textContent = s; };

function fail(e) {
  state.error = String(e && e.message || e);
  setStatus('error: ' + state.error);
  console.error(e);
}

function draw(ctx, video, res) {
  ctx.drawImage(video, 0, 0);
  if (!res) return;
  const b = res.box;
  ctx.strokeStyle = 'rgba(0,200,255,0.8)'; ctx.lineWidth = 2;
  ctx.strokeRect(b.cx - b.size / 2, b.cy - b.size / 2, b.size, b.size);
  ctx.fillStyle = '#00ff66';
  const r = Math.max(2, ctx.canvas.width / 320);
  for (const [x, y] of res.filtered) { ctx.beginPath(); ctx.arc(x, y, r, 0, 2 * Math.PI); ctx.fill(); }
}

async function report(run, frame, res) {
  const body = {
    width: frame.width, height: frame.height, detection: res.detection || null, detect_box: res.detectBox || null,
    detect_landmarks: res.detectLandmarks || null, refined: res.refined, box: res.box, landmarks: res.landmarks, filtered: res.filtered,
    frames_tracked: state.frames,
  };
  const headers = { 'X-Devicekit-Token': params.get('token') || '' };  // the run's token, or the server refuses
  await fetch(`/devicekit/results/${run}/frame.rgba`, { method: 'POST', body: frame.data, headers });
  await fetch(`/devicekit/results/${run}/landmarks.json`, { method: 'POST', body: JSON.stringify(body), headers });
  state.reported = true;
}

async function camera(cfg) {
  const backend = params.get('backend') === 'webgpu' ? 'webgpu' : 'wasm';
  const threads = capThreads(Math.max(1, parseInt(params.get('threads') || '2', 10))).threads;
  const rt = await initRuntime(threads);
  const n = backend === 'wasm' && rt.threaded ? threads : 1;
  const model = await compile(new URL('model/' + cfg.modelFile, location.href).href, backend, n);
  const detector = await compile(new URL('model/' + cfg.detector.file, location.href).href, 'wasm', n);
  const tracker = new Tracker(cfg, model, detector, cfg.detector.redetect);
  setStatus('opening the camera');
  const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
  const video = document.getElementById('video');
  video.srcObject = stream;
  await video.play();
  const canvas = document.getElementById('view');
  canvas.width = video.videoWidth; canvas.height = video.videoHeight;
  const ctx = canvas.getContext('2d');
  const grab = new OffscreenCanvas(canvas.width, canvas.height).getContext('2d', { willReadFrequently: true });
  const reportRun = params.get('report'), after = parseInt(params.get('after') || '10', 10);
  state.ready = true;
  setStatus(`tracking (${backend}, ${n} thread${n > 1 ? 's' : ''})`);
  let last = performance.now(), fps = 0, busy = false;
  const tick = async () => {
    if (busy) return;
    busy = true;
    try {
      grab.drawImage(video, 0, 0);
      const img = grab.getImageData(0, 0, canvas.width, canvas.height);
      const frame = { data: img.data, width: img.width, height: img.height };
      const t = performance.now();
      const res = await tracker.step(frame, t / 1000);
      if (res) {
        state.frames++; state.last = res;
        if (reportRun && !state.reported && state.frames >= after && res.detection) await report(reportRun, frame, res);
        else if (reportRun && !state.reported && state.frames >= after) tracker.sinceDetect = tracker.redetect; // report a detection frame
      }
      draw(ctx, grab.canvas, res);
      const dt = performance.now() - last; last = performance.now();
      fps = fps ? 0.9 * fps + 0.1 * (1000 / dt) : 1000 / dt;
      const tm = res ? res.timings : null;
      statsEl.textContent = `${fps.toFixed(1)} FPS` + (tm ? ` | detect ${tm.detect.toFixed(1)} ms, preprocess ${tm.preprocess.toFixed(1)} ms, inference ${tm.inference.toFixed(1)} ms, postprocess ${tm.postprocess.toFixed(1)} ms` : ' | no face');
    } catch (e) {
      fail(e);
      return;
    } finally {
      busy = false;
    }
    video.requestVideoFrameCallback(tick);
  };
  video.requestVideoFrameCallback(tick);
}

async function main() {
  const cfg = await (await fetch('config.json')).json();
  document.getElementById('title').textContent = `${cfg.name}: ${cfg.numLandmarks} landmarks, ${cfg.inputWidth}x${cfg.inputHeight} ${cfg.inputDtype}`;
  if (state.mode === 'bench') {
    setStatus('benchmark running');
    state.done = await runBenchmark(cfg, params, setStatus);
    state.ready = true;
  } else {
    await camera(cfg);
  }
}

window.addEventListener('error', (e) => fail(e.error || e.message));
window.addEventListener('unhandledrejection', (e) => fail(e.reason));
main().catch(fail);
