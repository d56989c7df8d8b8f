'use strict';
// Raw forward pass of a model file with the original's score() (no feature engineering).
//
// stdin:  {model_path, inputs: number[][]}
// stdout: {version, scores: number[]}
const { main } = require('./common');

main(async (td, input) => {
  const scores = [];
  for (const x of input.inputs) {
    scores.push(await td.score(input.model_path, Array.from(x)));
  }
  return { version: td.version(), scores: scores };
});
