/**
 * check.mjs: run cnn.mjs over a `pretrained_cnn_data.json` the way the demo does; print JSON.
 *
 *   node js/check.mjs data/pretrained_cnn_data.json
 *
 * It reads and checks the file with validate.mjs, the check the demo page makes too: its size
 * first (before reading it), its encoding and strict JSON, every key, shape and number, epochs
 * 0..N in order, every stored feature map recomputed from its epoch's weights, and each epoch's
 * mistakes. Then it prints, for every epoch, the largest absolute difference between each
 * activation of the feature-map image and the JSON's `feature_maps`, and the predicted digit
 * and the logits of each of the 100 samples; tests/test_js.py compares these with PyTorch. A
 * file that is missing, too large, not strict JSON or fails the check is refused with one line
 * naming it and what is wrong, exit status 1; tests/test_agreement.py shows that cnnlib's
 * verify refuses the same files.
 */

import { readFileSync, statSync } from "node:fs";
import { argmax, forward } from "./cnn.mjs";
import { MAX_BYTES, parse, tooLarge, validate } from "./validate.mjs";

/** What tests/test_js.py compares with PyTorch: per epoch, the feature-map errors that
 * validate.mjs found within tolerance, and each sample's predicted digit and logits. */
function check(data) {
  const errors = validate(data);
  const epochs = data.training_epochs.map(({ epoch, weights }) => {
    const outputs = data.samples.map((sample) => forward(weights, sample.image));
    return {
      epoch,
      feature_map_errors: errors[epoch],
      predictions: outputs.map(({ probabilities }) => argmax(probabilities)),
      logits: outputs.map(({ logits }) => logits),
    };
  });
  return { samples: data.samples.length, epochs };
}

/** The file's bytes, refused unread when it is larger than any valid file. */
function readBytes(path) {
  try {
    const size = statSync(path).size;
    if (size > MAX_BYTES) {
      throw new Error(tooLarge(size));
    }
    return readFileSync(path);
  } catch (error) {
    throw error.code === undefined ? error : new Error(`cannot be read (${error.code})`);
  }
}

const path = process.argv[2];
if (path === undefined) {
  process.stderr.write("usage: node js/check.mjs PATH/TO/pretrained_cnn_data.json\n");
  process.exit(2);
}
try {
  process.stdout.write(JSON.stringify(check(parse(readBytes(path)))) + "\n");
} catch (error) {
  process.stderr.write(`check.mjs: ${path}: ${error.message}\n`);
  process.exit(1);
}
