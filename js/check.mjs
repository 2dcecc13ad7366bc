/**
 * check.mjs: run cnn.mjs over a `pretrained_cnn_data.json` the way the demo does; print JSON.
 *
 *   node js/check.mjs data/pretrained_cnn_data.json
 *
 * For every epoch it prints the largest absolute difference between each activation of the
 * feature-map image and the JSON's `feature_maps`, and the predicted digit and the logits of
 * each of the 100 samples. tests/test_js.py compares these with PyTorch. A file that is missing,
 * not strict JSON (a byte order mark, a number read as Infinity) or without epochs 0..N in order
 * is refused with one line naming it, exit status 1.
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

/** Parse the file as strictly as cnnlib's verify: UTF-8 without a byte order mark, every number
 * a finite double, epochs 0..N each once and in order. Throws an Error naming what is wrong. */
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
        throw new RangeError(`holds a number too large for a double at "${key}" (read as Infinity)`);
      }
      return value;
    });
  } catch (error) {
    throw error instanceof RangeError ? error : new Error(`not valid JSON (${error.message})`);
  }
  const last = data?.metadata?.config?.epochs;
  const epochs = Array.isArray(data?.training_epochs)
    ? data.training_epochs.map((entry) => entry?.epoch)
    : [];
  if (!Number.isInteger(last) || epochs.length !== last + 1 || epochs.some((e, i) => e !== i)) {
    throw new Error(`epochs are ${epochs.slice(0, 8).join(", ")}; expected 0..${last}, each once`);
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
