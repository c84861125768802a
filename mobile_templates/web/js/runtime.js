// LiteRT.js (npm @litertjs/core, vendored by devicekit package into vendor/, resolved by index.html's import map).
import { loadLiteRt, loadAndCompile, Tensor, getGlobalLiteRt } from '@litertjs/core';

let loading = null;

// Load the WASM runtime once per page. Threads need cross-origin isolation (the devicekit server sends
// COOP/COEP); without it the single-threaded build is used and `threads` reports 1.
export function initRuntime(wantThreads) {
  if (!loading) {
    const threads = wantThreads > 1 && self.crossOriginIsolated === true;
    loading = loadLiteRt(new URL('../vendor/litertjs/wasm/', import.meta.url).href, { threads })
      .then(() => ({ threaded: threads }));
  }
  return loading;
}

export async function compile(url, backend, threads) {
  const opts = { accelerator: backend };
  if (backend === 'wasm') opts.cpuOptions = { numThreads: threads };
  return loadAndCompile(url, opts);
}

// LiteRT.js 2.5 maps only float32/int32/uint8 typed arrays to tensors. An int8 model input gets a
// host-memory tensor buffer with element type INT8 made through the same WASM API the package uses.
function int8Tensor(data, shape) {
  const w = getGlobalLiteRt().liteRtWasm;
  const env = getGlobalLiteRt().getDefaultEnvironment();
  const dims = new w.VectorInt32();
  for (const d of shape) dims.push_back(d);
  const layout = w.LiteRtLayout.create(dims);
  dims.delete();
  const type = w.LiteRtRankedTensorType.create({ value: 9 /* ElementType.INT8 */ }, layout);
  layout.delete();
  const buf = w.LiteRtTensorBuffer.createManaged(env.liteRtEnvironment, w.LiteRtTensorBufferType.HOST_MEMORY, type, data.byteLength);
  type.delete();
  const ptr = buf.lock(w.LiteRtTensorBufferLockMode.WRITE);
  try { w.HEAPU8.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), ptr); } finally { buf.unlock(); }
  const t = Object.create(Tensor.prototype);
  Object.assign(t, { liteRtTensorBuffer: buf, environment: env, deletedInternal: false, onDelete: undefined });
  return t;
}

export function makeTensor(data, shape) {
  return data instanceof Int8Array ? int8Tensor(data, shape) : new Tensor(data, shape);
}

// Run a single-input model; returns the outputs as typed arrays (every tensor deleted).
export async function runModel(model, data, shape) {
  const input = makeTensor(data, shape);
  try {
    const outs = await model.run([input]);
    try {
      return outs.map((t) => (t.accelerator === 'wasm' || !t.accelerator ? t : t).toTypedArray());
    } finally {
      for (const t of outs) t.delete();
    }
  } finally {
    input.delete();
  }
}

// Outputs after moving off the GPU when needed (webgpu backend).
export async function readOutputs(outs) {
  const res = [];
  for (const t of outs) {
    const host = t.accelerator === 'webgpu' ? await t.moveTo('wasm') : t;
    res.push(host.toTypedArray());
    host.delete();
  }
  return res;
}
