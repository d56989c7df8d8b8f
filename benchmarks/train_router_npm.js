// Train the original Tiny Dancer router (npm @ruvector/tiny-dancer 0.1.22, `trainRouter`) on the rows in
// a JSON file and score the other rows with its `score()`; used by benchmarks/evaluate_mmlu.py.
// Usage: node benchmarks/train_router_npm.js IN.json OUT.json   (TINYDANCER_ORACLE_DIR: `make oracle`)
// IN: {train: [{embedding, scores: {weak, strong}}], score: [[...embedding]], epochs, out_model}
// OUT: {seconds, result, scores: [P(cheap model good enough)], max_rss_kb: the node process's peak RSS (VmHWM)}
const path = require("path");
const fs = require("fs");
const dir = process.env.TINYDANCER_ORACLE_DIR || path.join(__dirname, "..", ".cache", "oracle");
const td = require(path.join(dir, "node_modules", "@ruvector", "tiny-dancer"));

// Peak RSS of this process since its exec (VmHWM): resourceUsage().maxRSS would include the parent's
// memory at fork time, which Linux carries across exec.
function peakRssKb() {
  try {
    const line = fs.readFileSync("/proc/self/status", "utf8").split("\n").find((l) => l.startsWith("VmHWM:"));
    return Number(line.split(/\s+/)[1]);
  } catch (e) {
    return process.resourceUsage().maxRSS;
  }
}

async function main() {
  const [input, output] = process.argv.slice(2);
  const spec = JSON.parse(fs.readFileSync(input, "utf8"));
  const started = process.hrtime.bigint();
  const result = await td.trainRouter(spec.train, { weak: 1, strong: 10 }, {
    outputPath: spec.out_model, inputDim: spec.train[0].embedding.length, epochs: spec.epochs,
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const scores = [];
  for (const e of spec.score) scores.push(await td.score(spec.out_model, e));
  fs.writeFileSync(output, JSON.stringify({ seconds, result, scores, max_rss_kb: peakRssKb() }));
}
main().catch((e) => { console.error(e); process.exit(1); });
