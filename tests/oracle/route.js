'use strict';
// Route one request through the original Router and report the wall clock around the call.
//
// stdin:  {model_path, config: {confidenceThreshold, maxUncertainty, ...} (optional),
//          query: number[], metadata: JSON string | null, align_mid_second: bool (optional),
//          candidates: [{id, embedding: number[], metadata: JSON string | null,
//                        created_at: int seconds | null, access_count: int | null, success_rate: number | null}]}
//          (a null or absent field is left out of the JS object, so the binding's default applies)
// stdout: {before_ms, after_ms, version, error, decisions: [{candidate_id, confidence, use_lightweight,
//          uncertainty}], inference_time_us, feature_time_us, candidates_processed}
const { main } = require('./common');

function toJsCandidate(c) {
  const out = { id: c.id, embedding: new Float32Array(c.embedding) };
  if (c.metadata !== undefined && c.metadata !== null) out.metadata = c.metadata;
  if (c.created_at !== undefined && c.created_at !== null) out.createdAt = c.created_at;
  if (c.access_count !== undefined && c.access_count !== null) out.accessCount = c.access_count;
  if (c.success_rate !== undefined && c.success_rate !== null) out.successRate = c.success_rate;
  return out;
}

main(async (td, input) => {
  const router = new td.Router(Object.assign({ modelPath: input.model_path }, input.config || {}));
  const request = {
    queryEmbedding: new Float32Array(input.query),
    candidates: input.candidates.map(toJsCandidate),
  };
  if (input.metadata !== undefined && input.metadata !== null) request.metadata = input.metadata;
  if (input.align_mid_second) {
    // Start the call ~0.3-0.7 s into a second, so that a clock with sub-second resolution would
    // show in the candidates' ages (used to prove the original truncates to whole seconds).
    const ms = Date.now() % 1000;
    if (ms < 300 || ms >= 700) await new Promise((resolve) => setTimeout(resolve, (1300 - ms) % 1000));
  }
  // The original reads its own wall clock inside route(); bracket the call so the caller knows
  // which second it saw.
  let response = null;
  let error = null;
  const before = Date.now();
  try {
    response = await router.route(request);
  } catch (e) {
    error = String(e && e.message ? e.message : e);
  }
  const after = Date.now();
  const result = { before_ms: before, after_ms: after, version: td.version(), error: error };
  if (response !== null) {
    result.decisions = response.decisions.map((d) => ({
      candidate_id: d.candidateId,
      confidence: d.confidence,
      use_lightweight: d.useLightweight,
      uncertainty: d.uncertainty,
    }));
    result.inference_time_us = response.inferenceTimeUs;
    result.feature_time_us = response.featureTimeUs;
    result.candidates_processed = response.candidatesProcessed;
  }
  return result;
});
