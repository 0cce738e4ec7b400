#!/usr/bin/env node
// A minimal HTTP server that encodes requests with an exported encoder through
// onnxruntime-node. POST a JSON array of rows (each inputDim numbers) to /encode;
// the reply is {"mean": [[...], ...]}.
//   vae export vae-out/model.vae --onnx vae-out/onnx
//   node scripts/serve_example.js vae-out/onnx 8080
//   curl -s -X POST localhost:8080/encode -d "[[$(node -e 'console.log(Array(784).fill(0.5).join())')]]"
'use strict';
const http = require('node:http');
const { OnnxVAE } = require('../dist/serve'); // in your project: require('vae-node/serve')

async function main() {
  const [dir = 'vae-out/onnx', port = '8080'] = process.argv.slice(2);
  const model = await OnnxVAE.open(dir, { graphs: ['encoder-mean'], intraOpNumThreads: 2 });
  const { inputDim, latentDim } = model.metadata;
  const server = http.createServer(async (req, res) => {
    if (req.method !== 'POST' || req.url !== '/encode') return void res.writeHead(404).end();
    try {
      let body = '';
      for await (const chunk of req) body += chunk;
      const rows = JSON.parse(body);
      if (!Array.isArray(rows) || rows.length === 0 || rows.some((r) => !Array.isArray(r) || r.length !== inputDim)) {
        throw new Error(`expected a JSON array of rows of ${inputDim} numbers`);
      }
      const mean = await model.encodeMean(Float32Array.from(rows.flat()));
      const out = rows.map((_, i) => Array.from(mean.subarray(i * latentDim, (i + 1) * latentDim)));
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ mean: out }));
    } catch (err) {
      res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: err.message }));
    }
  });
  server.listen(Number(port), '127.0.0.1', () => console.log(`encoding on http://127.0.0.1:${port}/encode (${inputDim} -> ${latentDim})`));
  const stop = () => server.close(() => model.close());
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((err) => {
  console.error(err.message);
  process.exit(1);
});
