#!/usr/bin/env node
// Runs an ONNX model with ONNX Runtime (the fp32 reference haq is compared
// against) on raw float32 input and writes the first output as raw float32.
//
//   node run_ort.js MODEL INPUT.bin SHAPE OUTPUT.bin [--threads N] [--runs R]
//
// SHAPE is comma-separated, e.g. 16,1,28,28. With --runs R the model is run
// R more times after a warm-up and a JSON line with samples per second is
// printed (used by bench/eval_throughput.sh).
'use strict';
const fs = require('fs');

function usage(msg) {
  process.stderr.write(`run_ort.js: error: ${msg}\n` +
    'usage: node run_ort.js MODEL INPUT.bin SHAPE OUTPUT.bin [--threads N] [--runs R]\n');
  process.exit(2);
}

async function main() {
  const args = process.argv.slice(2);
  const pos = [];
  let threads = 0, runs = 0;
  for (let i = 0; i < args.length; ++i) {
    if (args[i] === '--threads') threads = parseInt(args[++i], 10);
    else if (args[i] === '--runs') runs = parseInt(args[++i], 10);
    else pos.push(args[i]);
  }
  if (pos.length !== 4) usage('expected 4 positional arguments');
  const [modelPath, inputPath, shapeText, outputPath] = pos;
  const shape = shapeText.split(',').map((s) => parseInt(s, 10));
  if (shape.some((d) => !(d > 0))) usage(`bad shape '${shapeText}'`);
  let ort;
  try {
    ort = require('onnxruntime-node');
  } catch (e) {
    process.stderr.write('run_ort.js: error: onnxruntime-node is not installed; run ' +
      '`npm install --ignore-scripts` in tests/ort\n');
    process.exit(3);
  }
  const buf = fs.readFileSync(inputPath);
  const count = shape.reduce((a, b) => a * b, 1);
  if (buf.length !== count * 4) usage(`${inputPath}: ${buf.length} bytes, shape needs ${count * 4}`);
  const data = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
  const opts = { graphOptimizationLevel: 'all', executionMode: 'sequential' };
  if (threads > 0) { opts.intraOpNumThreads = threads; opts.interOpNumThreads = 1; }
  const session = await ort.InferenceSession.create(modelPath, opts);
  const feeds = {};
  feeds[session.inputNames[0]] = new ort.Tensor('float32', data, shape);
  let result = await session.run(feeds);
  if (runs > 0) {
    const t0 = process.hrtime.bigint();
    for (let r = 0; r < runs; ++r) result = await session.run(feeds);
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    process.stdout.write(JSON.stringify({ runs, batch: shape[0], seconds: secs,
      samples_per_second: runs * shape[0] / secs }) + '\n');
  }
  const out = result[session.outputNames[0]];
  fs.writeFileSync(outputPath, Buffer.from(out.data.buffer, out.data.byteOffset, out.data.byteLength));
}

main().catch((e) => { process.stderr.write(`run_ort.js: error: ${e.message}\n`); process.exit(1); });
