'use strict';
// Train the original's router with trainRouter() and score inputs with the written model file.
//
// stdin:  {rows: [{embedding: number[], scores: {model: quality}}], prices: {model: price},
//          options: {outputPath, inputDim, hiddenDim?, epochs?, learningRate?, tolerance?},
//          score_inputs: number[][]}
// stdout: {version, train: {epochsRun, trainLoss, trainAccuracy, valAccuracy, modelPath, modelBytes},
//          scores: number[]}   (score(modelPath, x) for every x in score_inputs)
const { main } = require('./common');

main(async (td, input) => {
  const train = await td.trainRouter(input.rows, input.prices, input.options);
  const scores = [];
  for (const x of input.score_inputs || []) {
    // score() takes a plain number[] (a Float32Array is rejected: "Given napi value is not an array").
    scores.push(await td.score(train.modelPath, Array.from(x)));
  }
  return { version: td.version(), train: train, scores: scores };
});
