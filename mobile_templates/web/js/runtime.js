// LiteRT.js (npm @litertjs/core, vendored by devicekit package into vendor/, resolved by index.html's import map).
import { loadLiteRt, loadAndCompile, Tensor } from '@litertjs/core';

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

// Int8Array inputs work because devicekit package adds the int8 row to the vendored LiteRT.js dtype table.
export function makeTensor(data, shape) {
  return new Tensor(data, shape);
}

// Run a single-input model; returns the outputs as typed arrays (every tensor deleted).
export async function runModel(model, data, shape) {
  const input = makeTensor(data, shape);
  try {
    return await readOutputs(await model.run([input]));
  } finally {
    input.delete();
  }
}

// Output tensors -> typed arrays (moved off the GPU first with the webgpu backend); deletes every tensor.
async function readOutputs(outs) {
  const res = [];
  try {
    for (const t of outs) {
      if (t.accelerator === 'webgpu') {
        const host = await t.copyTo('wasm');
        try { res.push(host.toTypedArray()); } finally { host.delete(); }
      } else {
        res.push(t.toTypedArray());
      }
    }
  } finally {
    for (const t of outs) t.delete();
  }
  return res;
}
