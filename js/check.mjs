/**
 * check.mjs: run cnn.mjs over a `pretrained_cnn_data.json` the way the demo does; print JSON.
 *
 *   node js/check.mjs data/pretrained_cnn_data.json
 *
 * It checks the file with validate.mjs, the check the demo page makes too: every key, shape and
 * number, epochs 0..N in order, and every stored feature map recomputed from its epoch's weights.
 * Then it prints, for every epoch, the largest absolute difference between each activation of the
 * feature-map image and the JSON's `feature_maps`, and the predicted digit and the logits of
 * each of the 100 samples; tests/test_js.py compares these with PyTorch. A file that is missing,
 * not strict JSON (a byte order mark, a number read as Infinity) or fails the check is refused
 * with one line naming it and the key at fault, exit status 1.
 */

import { readFileSync } from "node:fs";
import { argmax, forward } from "./cnn.mjs";
import { validate } from "./validate.mjs";

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

/** Parse the file as strictly as cnnlib's verify: UTF-8 without a byte order mark, every number
 * a finite double. Throws an Error naming what is wrong. */
function readStrict(path) {
  let bytes;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new Error(`cannot be read (${error.code ?? error.message})`);
  }
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) {
    throw new Error("starts with a UTF-8 byte order mark, which JSON does not allow");
  }
  let text;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new Error("is not valid UTF-8");
  }
  let data;
  try {
    data = JSON.parse(text, (key, value) => {
      if (typeof value === "number" && !Number.isFinite(value)) {
        throw new RangeError(
          `holds a number too large for a double at "${key}" (read as Infinity)`,
        );
      }
      return value;
    });
  } catch (error) {
    throw error instanceof RangeError ? error : new Error(`not valid JSON (${error.message})`);
  }
  return data;
}

const path = process.argv[2];
if (path === undefined) {
  process.stderr.write("usage: node js/check.mjs PATH/TO/pretrained_cnn_data.json\n");
  process.exit(2);
}
try {
  process.stdout.write(JSON.stringify(check(readStrict(path))) + "\n");
} catch (error) {
  process.stderr.write(`check.mjs: ${path}: ${error.message}\n`);
  process.exit(1);
}
