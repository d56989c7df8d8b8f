'use strict';
// Latency of the original router's route() measured inside node (process.hrtime per call),
// so that no process start or JSON transfer is counted.
//
// Usage: node benchmarks/original_route.js '{"counts": [1, 10], "dim": 384, "budget_s": 1.0,
//                                           "min_calls": 50, "warmup": 20, "oracle_dir": "..."}'
// Prints one JSON line: {version, node, rows: [{n, calls, median_us, p95_us, mean_us, min_us}]}
// The router uses the original's default random model (the model path does not exist), breaker on.
const path = require('path');

function loadOriginal(dir) {
  return require(path.join(dir, 'node_modules', '@ruvector', 'tiny-dancer'));
}

// Small seeded PRNG (mulberry32) so both routers see the same kind of data on every run.
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function makeRequest(n, dim, seed) {
  const rand = prng(seed);
  const vec = () => {
    const v = new Float32Array(dim);
    for (let i = 0; i < dim; i++) v[i] = rand() * 2 - 1;
    return v;
  };
  const nowS = Math.floor(Date.now() / 1000);
  const candidates = [];
  for (let i = 0; i < n; i++) {
    candidates.push({
      id: 'candidate-' + i,
      embedding: vec(),
      createdAt: nowS - Math.floor(rand() * 3600),
      accessCount: Math.floor(rand() * 1000),
      successRate: rand(),
    });
  }
  return { queryEmbedding: vec(), candidates: candidates };
}

function quantile(sorted, q) {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

async function timeCount(td, n, opts) {
  const router = new td.Router({ modelPath: path.join(opts.scratch, 'absent-model.safetensors') });
  const request = makeRequest(n, opts.dim, 1234 + n);
  for (let i = 0; i < opts.warmup; i++) await router.route(request);
  const samples = [];
  const deadline = process.hrtime.bigint() + BigInt(Math.round(opts.budget_s * 1e9));
  while (samples.length < opts.min_calls || (process.hrtime.bigint() < deadline && samples.length < opts.max_calls)) {
    const t0 = process.hrtime.bigint();
    await router.route(request);
    samples.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  const sorted = samples.slice().sort((a, b) => a - b);
  const mean = samples.reduce((s, x) => s + x, 0) / samples.length;
  return {
    n: n,
    calls: samples.length,
    median_us: quantile(sorted, 0.5),
    p95_us: quantile(sorted, 0.95),
    mean_us: mean,
    min_us: sorted[0],
    samples_us: opts.samples ? samples : undefined,
  };
}

async function main() {
  const opts = Object.assign(
    { counts: [1, 10, 100, 1000], dim: 384, budget_s: 1.0, min_calls: 50, max_calls: 100000, warmup: 20 },
    JSON.parse(process.argv[2] || '{}'),
  );
  opts.scratch = opts.scratch || require('os').tmpdir();
  const td = loadOriginal(opts.oracle_dir || process.env.TINYDANCER_ORACLE_DIR);
  const rows = [];
  for (const n of opts.counts) rows.push(await timeCount(td, n, opts));
  const pkg = require(path.join(opts.oracle_dir || process.env.TINYDANCER_ORACLE_DIR, 'node_modules', '@ruvector', 'tiny-dancer', 'package.json'));
  const out = { package_version: pkg.version, core_version: td.version(), node: process.version, rows: rows };
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((err) => {
  process.stderr.write(String(err && err.stack ? err.stack : err) + '\n');
  process.exit(1);
});
