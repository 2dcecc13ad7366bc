/**
 * check.mjs: run cnn.mjs over a `pretrained_cnn_data.json` the way the demo does; print JSON.
 *
 *   node js/check.mjs data/pretrained_cnn_data.json
 *
 * For every epoch it prints the largest absolute difference between each activation of the
 * feature-map image and the JSON's `feature_maps`, and the predicted digit and the logits of
 * each of the 100 samples. tests/test_js.py compares these with PyTorch.
 */

import { readFileSync } from "node:fs";
import { argmax, forward } from "./cnn.mjs";

const ACTIVATIONS = ["conv1", "pool1", "conv2", "pool2", "fc1"];

/** The largest |a - b| over two nested arrays of the same shape. */
function maxAbsDifference(a, b, name) {
  const left = a.flat(Infinity);
  const right = b.flat(Infinity);
  if (left.length !== right.length) {
    throw new Error(`${name}: ${left.length} values computed, ${right.length} stored`);
  }
  return left.reduce((worst, value, i) => Math.max(worst, Math.abs(value - right[i])), 0);
}

function check(data) {
  const image = data.samples.find((sample) => sample.index === data.feature_map_image.index);
  if (image === undefined) {
    throw new Error(`feature_map_image.index ${data.feature_map_image.index} is not a sample`);
  }
  const epochs = data.training_epochs.map(({ epoch, weights, feature_maps: stored }) => {
    const activations = forward(weights, image.image);
    const errors = Object.fromEntries(
      ACTIVATIONS.map((name) => [
        name,
        maxAbsDifference(activations[name], stored[name], `epoch ${epoch} ${name}`),
      ]),
    );
    const outputs = data.samples.map((sample) => forward(weights, sample.image));
    return {
      epoch,
      feature_map_errors: errors,
      predictions: outputs.map(({ probabilities }) => argmax(probabilities)),
      logits: outputs.map(({ logits }) => logits),
    };
  });
  return { samples: data.samples.length, epochs };
}

const path = process.argv[2];
if (path === undefined) {
  process.stderr.write("usage: node js/check.mjs PATH/TO/pretrained_cnn_data.json\n");
  process.exit(2);
}
process.stdout.write(JSON.stringify(check(JSON.parse(readFileSync(path, "utf8")))) + "\n");
