/**
 * validate.mjs: the one check of `pretrained_cnn_data.json`, shared by the demo page
 * (demo/load.mjs) and `node js/check.mjs`, so that both give the same answer for every file.
 * No dependencies but cnn.mjs; runs in both.
 *
 * `parse(bytes)` reads the file's bytes as strictly as cnnlib's verify: at most MAX_BYTES,
 * UTF-8 without a byte order mark, no repeated key; and nothing that a valid file never holds
 * (nesting deeper than MAX_DEPTH, more than MAX_CONTAINERS lists and objects) is parsed, so that
 * memory and time stay bounded.
 *
 * `validate(data)` checks every key the page reads. The shapes are not written here: they
 * follow from the file's own `architecture` (verify checks that it is the model's), which must
 * describe a network cnn.mjs computes. Every number is finite, and a float32 (a weight of 1e308
 * is not); accuracies are percents (a file with no accuracy above 1 holds fractions: refused);
 * losses are at least 0 (a diverged run's may be huge, as verify accepts); the epochs are 0..N, each once, in order. Then it recomputes what
 * it certifies: cnn.mjs's forward pass of the feature-map image under each epoch's weights must
 * give every stored feature map (fc1 included) within TOLERANCE, relative to the largest stored
 * value when that is above 1 (as verify), and each epoch's most confident mistake must be what
 * its weights answer for that image of `mistake_samples`.
 *
 * The first problem found is thrown as a DataProblem whose message names the key, the epoch and
 * what is wrong.
 */

import { argmax, forward } from "./cnn.mjs";

const TOLERANCE = 1e-4;
const ACTIVATIONS = ["conv1", "pool1", "conv2", "pool2", "fc1"];
/** The metadata.schema_version this check reads (cnnlib.export.SCHEMA_VERSION). */
export const SCHEMA_VERSION = 3;
/** cnnlib's verify reads no larger JSON (cnnlib.reading.MAX_JSON_BYTES: 200 epochs). */
export const MAX_BYTES = 122_600_000;
/** A valid file nests 9 deep (training_epochs[i].weights.conv2.weight[o][c][y][x]). */
const MAX_DEPTH = 16;
/** A valid file of 200 epochs holds about 200,000 lists and objects. */
const MAX_CONTAINERS = 1_000_000;
const FLOAT32_MAX = 3.4028234663852886e38;
const DIGITS = 10;
const TEST_IMAGES = 10_000;
const MAX_MISTAKES = 10;
const ACCURACIES = ["train_accuracy", "test_accuracy", "validation_accuracy"];
const LOSSES = ["loss", "test_loss", "validation_loss"];

export class DataProblem extends Error {}

/** Throw a DataProblem about key `path` (of epoch `epoch`, when given). */
function fail(path, epoch, what) {
  const where = epoch === undefined ? `\`${path}\`` : `\`${path}\` (epoch ${epoch})`;
  throw new DataProblem(`${where} ${what}`);
}

const isObject = (value) => value !== null && typeof value === "object" && !Array.isArray(value);

/** A value as the JSON text that gave it (a number too large for a double reads as Infinity). */
const shown = (value) => (typeof value === "number" ? String(value) : JSON.stringify(value));

const count = (number) => number.toLocaleString("en-US");

// ---------------------------------------------------------------------------------------------
// Reading the bytes.

/** The encoding a file's first bytes show when it is not UTF-8, else null. */
function otherEncoding(bytes) {
  if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] !== 0 && bytes[1] === 0)) {
    return "UTF-16 (little-endian)";
  }
  if ((bytes[0] === 0xfe && bytes[1] === 0xff) || (bytes[0] === 0 && bytes[1] !== 0)) {
    return "UTF-16 (big-endian)";
  }
  return null;
}

/** The structure of JSON text: brackets and braces, and quotes (strings are skipped). */
const STRUCTURE = /[[\]{}"]/g;

/**
 * Refuse, in one linear pass over the text, what JSON.parse would take but a valid file never
 * holds: a key repeated in one object, nesting deeper than MAX_DEPTH, more than MAX_CONTAINERS
 * lists and objects. A regular expression skips the numbers between them. Malformed JSON is
 * left to JSON.parse to name.
 */
function scan(text) {
  const open = []; // per open list or object: the Set of its keys (an object) or null
  let containers = 0;
  STRUCTURE.lastIndex = 0;
  for (let found = STRUCTURE.exec(text); found !== null; found = STRUCTURE.exec(text)) {
    const i = found.index;
    const code = text.charCodeAt(i);
    if (code === 0x22) {
      let end = i + 1;
      while (end < text.length && text.charCodeAt(end) !== 0x22) {
        end += text.charCodeAt(end) === 0x5c ? 2 : 1;
      }
      STRUCTURE.lastIndex = end + 1;
      let next = end + 1;
      while (text.charCodeAt(next) <= 0x20) {
        next++; // white space
      }
      const keys = open[open.length - 1];
      if (keys && text.charCodeAt(next) === 0x3a) {
        let key = text.slice(i + 1, end);
        if (key.includes("\\")) {
          try {
            key = JSON.parse(text.slice(i, end + 1));
          } catch {
            return; // a malformed string: JSON.parse says where
          }
        }
        if (keys.has(key)) {
          throw new DataProblem(`repeats the key ${JSON.stringify(key)} in one object`);
        }
        keys.add(key);
      }
    } else if (code === 0x7b || code === 0x5b) {
      if (open.length === MAX_DEPTH) {
        throw new DataProblem(`nests lists and objects over ${MAX_DEPTH} deep (a valid file: 9)`);
      }
      if (++containers > MAX_CONTAINERS) {
        throw new DataProblem(
          `holds more than ${count(MAX_CONTAINERS)} lists and objects; a valid file of 200 ` +
            "epochs holds about 200,000",
        );
      }
      open.push(code === 0x7b ? new Set() : null);
    } else {
      open.pop();
    }
  }
}

/** Where the first number of `value` that is not finite is, as a key path, else null. */
function infinity(value) {
  if (typeof value === "number") {
    return Number.isFinite(value) ? null : "";
  }
  if (value === null || typeof value !== "object") {
    return null;
  }
  const keys = Array.isArray(value) ? value.keys() : Object.keys(value);
  for (const key of keys) {
    const found = infinity(value[key]);
    if (found !== null) {
      return (Array.isArray(value) ? `[${key}]` : `.${key}`) + found;
    }
  }
  return null;
}

/**
 * The file's bytes (a Uint8Array) parsed as strictly as cnnlib's verify (see the module's
 * comment). Throws a DataProblem saying what is wrong.
 */
export function parse(bytes) {
  if (bytes.length > MAX_BYTES) {
    throw new DataProblem(tooLarge(bytes.length));
  }
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) {
    throw new DataProblem("starts with a UTF-8 byte order mark, which JSON does not allow");
  }
  const encoding = otherEncoding(bytes);
  if (encoding !== null) {
    throw new DataProblem(`is ${encoding} text; JSON must be UTF-8`);
  }
  const first = bytes.find((byte) => ![0x20, 0x09, 0x0a, 0x0d].includes(byte));
  if (first === 0x5b) {
    throw new DataProblem("holds a JSON list, not an object");
  }
  let text;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new DataProblem("is not valid UTF-8");
  }
  scan(text);
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new DataProblem(`is not valid JSON (${error.message})`);
  }
}

/** The message for a file of `size` bytes, more than MAX_BYTES. */
export function tooLarge(size) {
  const most = `the ${MAX_BYTES / 1e6} MB that a run of 200 epochs writes`;
  return `is ${(size / 1e6).toFixed(1)} MB, larger than ${most}`;
}

// ---------------------------------------------------------------------------------------------
// Checking the parsed data.

/** `value[key]` (`value` at `path`), which must exist. */
function field(value, key, path, epoch) {
  if (!isObject(value)) {
    fail(path, epoch, "is not an object");
  }
  if (!Object.hasOwn(value, key)) {
    fail(path === "" ? key : `${path}.${key}`, epoch, "is missing");
  }
  return value[key];
}

/** A list, which must hold `low`..`high` items. */
function checkList(value, path, low, high, epoch) {
  if (!Array.isArray(value)) {
    fail(path, epoch, "is not a list");
  }
  if (value.length < low || value.length > high) {
    const wanted = low === high ? `${low}` : `${low} to ${high}`;
    fail(path, epoch, `holds ${value.length} items where it should hold ${wanted}`);
  }
  return value;
}

/** A nested list of float32 numbers of exactly `shape`; with `pixels`, integers 0..255. */
function checkArray(value, shape, path, epoch, pixels = false) {
  if (!Array.isArray(value)) {
    fail(path, epoch, `is not a list (it should be ${shape.join("×")})`);
  }
  if (value.length !== shape[0]) {
    const noun = shape.length > 1 ? "rows" : "values";
    fail(path, epoch, `has ${value.length} ${noun} where the network has ${shape[0]}`);
  }
  if (shape.length > 1) {
    value.forEach((item, i) => checkArray(item, shape.slice(1), `${path}[${i}]`, epoch, pixels));
    return;
  }
  for (let i = 0; i < value.length; i++) {
    const item = value[i];
    if (pixels ? !(Number.isInteger(item) && item >= 0 && item <= 255) : !isFloat32(item)) {
      const where = `${path}[${i}]`; // built only here: a file holds a million numbers
      pixels ? checkInteger(item, where, epoch, 0, 255) : checkNumber(item, where, epoch);
    }
  }
}

/** Is `value` a number that float32 holds (|x| at most 3.4e38)? */
const isFloat32 = (value) => typeof value === "number" && Math.abs(value) <= FLOAT32_MAX;

/** A number that float32 holds, at least `low` and at most `high`. */
function checkNumber(value, path, epoch, low = -FLOAT32_MAX, high = FLOAT32_MAX) {
  if (!isFloat32(value)) {
    fail(path, epoch, `is ${shown(value)}, not a finite number in float32`);
  }
  if (value < low || value > high) {
    fail(path, epoch, `is ${value}, ${value < low ? `below ${low}` : `above ${high}`}`);
  }
  return value;
}

/** An integer from `low` to `high`. */
function checkInteger(value, path, epoch, low, high) {
  if (!Number.isInteger(value) || value < low || value > high) {
    fail(path, epoch, `is ${shown(value)}, not an integer ${low}..${high}`);
  }
  return value;
}

/** `value[key]` (`value` at `path`), an integer from `low` to `high`. */
const integer = (value, key, path, low, high, epoch) =>
  checkInteger(field(value, key, path, epoch), `${path}.${key}`, epoch, low, high);

/** `value[key]` (`value` at `path`), a float32 number from `low` to `high`. */
const number = (value, key, path, low, high, epoch) =>
  checkNumber(field(value, key, path, epoch), `${path}.${key}`, epoch, low, high);

// ---------------------------------------------------------------------------------------------
// The architecture, and the shapes that follow from it.

/** `architecture.layer.output_shape`, which must be `expected`: what `how` gives. */
function checkOutput(architecture, layer, expected, how) {
  const path = `architecture.${layer}.output_shape`;
  const stated = field(architecture[layer], "output_shape", `architecture.${layer}`);
  if (!Array.isArray(stated) || !stated.every(Number.isInteger) || stated.length !== 3) {
    fail(path, undefined, `is ${shown(stated)}, not a list [channels, height, width]`);
  }
  if (stated.some((n, i) => n !== expected[i])) {
    fail(path, undefined, `is [${stated}], but ${how} gives [${expected}]`);
  }
  return stated;
}

/**
 * The shape of every array the page reads, derived from the file's `architecture`, which must
 * describe what cnn.mjs computes: an MNIST image [1, 28, 28], two valid convolutions each
 * followed by a 2×2 max-pool, fc1 and the ten digits.
 */
function shapesOf(data) {
  const architecture = field(data, "architecture", "");
  const layer = (name) => field(architecture, name, "architecture");
  const size = (name, key) => integer(layer(name), key, `architecture.${name}`, 1, Infinity);
  const input = field(architecture, "input_shape", "architecture");
  if (shown(input) !== "[1,28,28]") {
    fail("architecture.input_shape", undefined, `is ${shown(input)}, not an MNIST image [1,28,28]`);
  }
  const weights = {};
  const maps = {};
  let [channels, height, width] = input;
  for (const [conv, pool] of [
    ["conv1", "pool1"],
    ["conv2", "pool2"],
  ]) {
    const out = size(conv, "channels");
    const k = size(conv, "kernel_size");
    weights[conv] = { weight: [out, channels, k, k], bias: [out] };
    const convolved = [out, height - k + 1, width - k + 1];
    const how = `a ${k}×${k} convolution to ${out} channels of [${channels},${height},${width}]`;
    [channels, height, width] = maps[conv] = checkOutput(architecture, conv, convolved, how);
    if (size(pool, "kernel_size") !== 2 || size(pool, "channels") !== out) {
      fail(`architecture.${pool}`, undefined, `is not the 2×2 max-pool of ${conv}'s ${out} maps`);
    }
    const halved = [channels, Math.floor(height / 2), Math.floor(width / 2)];
    const pooled = `a 2×2 max-pool of ${conv}`;
    [channels, height, width] = maps[pool] = checkOutput(architecture, pool, halved, pooled);
  }
  const flat = channels * height * width;
  if (size("flatten", "output_features") !== flat) {
    const what = `is not ${flat}, the ${channels}×${height}×${width} values of pool2`;
    fail("architecture.flatten.output_features", undefined, what);
  }
  const hidden = size("fc1", "hidden_units");
  if (size("output", "classes") !== DIGITS) {
    fail("architecture.output.classes", undefined, `is not ${DIGITS}, the digits`);
  }
  weights.fc1 = { weight: [hidden, flat], bias: [hidden] };
  weights.fc2 = { weight: [DIGITS, hidden], bias: [DIGITS] };
  maps.fc1 = [hidden];
  return { weights, maps, image: input.slice(1) };
}

function checkWeights(value, shapes, path, epoch) {
  for (const [layer, layerShapes] of Object.entries(shapes.weights)) {
    const values = field(value, layer, path, epoch);
    for (const [key, shape] of Object.entries(layerShapes)) {
      const keyPath = `${path}.${layer}.${key}`;
      checkArray(field(values, key, `${path}.${layer}`, epoch), shape, keyPath, epoch);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The samples, the epochs and their mistakes.

/** One image of `samples` or `mistake_samples`: {image, label, index} of the test set. */
function checkImage(sample, shapes, path) {
  checkArray(field(sample, "image", path), shapes.image, `${path}.image`, undefined, true);
  integer(sample, "label", path, 0, DIGITS - 1);
  integer(sample, "index", path, 0, TEST_IMAGES - 1);
}

function checkSamples(data, shapes) {
  const samples = checkList(field(data, "samples", ""), "samples", 0, TEST_IMAGES);
  samples.forEach((sample, i) => checkImage(sample, shapes, `samples[${i}]`));
  for (let digit = 0; digit < DIGITS; digit++) {
    if (!samples.some((sample) => sample.label === digit)) {
      fail("samples", undefined, `has no image of the digit ${digit}`);
    }
  }
  return checkList(samples, "samples", 100, 100);
}

/** The epochs, which must be 0..N (N = metadata.config.epochs), each once, in order. */
function checkEpochOrder(data) {
  const metadata = field(data, "metadata", "");
  const version = field(metadata, "schema_version", "metadata");
  if (version !== SCHEMA_VERSION) {
    const what = `is ${shown(version)}, not ${SCHEMA_VERSION}: another cnnlib wrote the file`;
    fail("metadata.schema_version", undefined, what);
  }
  const last = integer(field(metadata, "config", "metadata"), "epochs", "metadata.config", 0, 200);
  const entries = checkList(field(data, "training_epochs", ""), "training_epochs", 0, 201);
  if (entries.length === 0) {
    fail("training_epochs", undefined, "holds no epoch");
  }
  entries.forEach((entry, i) => {
    const epoch = field(entry, "epoch", `training_epochs[${i}]`);
    if (epoch !== i) {
      const after = i > 0 ? ` after epoch ${i - 1}` : "";
      const what = `is ${shown(epoch)}${after}; expected ${i} (0..${last}, each once, in order)`;
      fail(`training_epochs[${i}].epoch`, undefined, what);
    }
  });
  if (entries.length !== last + 1) {
    const what = `holds epochs 0..${entries.length - 1}, but metadata.config.epochs is ${last}`;
    fail("training_epochs", undefined, what);
  }
  return entries;
}

/** Accuracies in percent (not all at most 1: fractions), losses at least 0. */
function checkMetrics(entries) {
  entries.forEach((entry, i) => {
    for (const key of ACCURACIES) {
      number(entry, key, `training_epochs[${i}]`, 0, 100, i);
    }
    for (const key of LOSSES) {
      number(entry, key, `training_epochs[${i}]`, 0, FLOAT32_MAX, i);
    }
  });
  if (entries.every((entry) => ACCURACIES.every((key) => entry[key] <= 1))) {
    const what = "has no accuracy above 1: fractions, where the file must hold percents 0..100";
    fail("training_epochs", undefined, what);
  }
}

/** `mistake_samples`: test images by increasing index, as `samples` has them; by index. */
function checkMistakeSamples(data, shapes) {
  const images = checkList(field(data, "mistake_samples", ""), "mistake_samples", 0, TEST_IMAGES);
  const byIndex = new Map();
  images.forEach((sample, i) => {
    checkImage(sample, shapes, `mistake_samples[${i}]`);
    if (i > 0 && sample.index <= images[i - 1].index) {
      const what = `is ${sample.index} after ${images[i - 1].index}, not in increasing order`;
      fail(`mistake_samples[${i}].index`, undefined, what);
    }
    byIndex.set(sample.index, sample);
  });
  for (const sample of data.samples) {
    const same = byIndex.get(sample.index);
    const differ = (key) => JSON.stringify(same[key]) !== JSON.stringify(sample[key]);
    if (same !== undefined && (differ("label") || differ("image"))) {
      fail("mistake_samples", undefined, `holds test image ${sample.index} unlike samples do`);
    }
  }
  return byIndex;
}

/**
 * One epoch's `mistakes`: at most MAX_MISTAKES images of `byIndex`, each once, answered wrongly,
 * highest probability first; the first (most confident) one recomputed from the epoch's weights
 * (verify recomputes all ten). Returns their indices.
 */
function checkMistakes(entry, epoch, byIndex) {
  const path = `training_epochs[${epoch}].mistakes`;
  const mistakes = field(entry, "mistakes", `training_epochs[${epoch}]`, epoch);
  checkList(mistakes, path, 0, MAX_MISTAKES, epoch);
  return mistakes.map((mistake, i) => {
    const where = `${path}[${i}]`;
    const index = integer(mistake, "index", where, 0, TEST_IMAGES - 1, epoch);
    const label = integer(mistake, "label", where, 0, DIGITS - 1, epoch);
    const said = integer(mistake, "prediction", where, 0, DIGITS - 1, epoch);
    const probability = number(mistake, "probability", where, 0, 1, epoch);
    const image = byIndex.get(index);
    if (image === undefined) {
      fail(`${where}.index`, epoch, `is ${index}, an image that mistake_samples does not hold`);
    }
    if (mistakes.slice(0, i).some((other) => other.index === index)) {
      fail(`${where}.index`, epoch, `is ${index} again: each mistake is another test image`);
    }
    if (label !== image.label) {
      fail(`${where}.label`, epoch, `is ${label}, but test image ${index} is a ${image.label}`);
    }
    if (said === label) {
      fail(`${where}.prediction`, epoch, `is ${said}, the label itself: not a mistake`);
    }
    if (i > 0 && probability > mistakes[i - 1].probability) {
      fail(`${where}.probability`, epoch, "is above the one before: not highest first");
    }
    if (i > 0) {
      return index; // one forward pass per epoch, not ten: the page loads 0.1 s sooner
    }
    const answer = forward(entry.weights, image.image).probabilities;
    const best = argmax(answer);
    const close = Math.abs(answer[said] - probability) <= TOLERANCE;
    if (!(close && answer[best] - answer[said] <= TOLERANCE)) {
      const theirs = `${best} with ${answer[best].toPrecision(4)}`;
      fail(where, epoch, `says ${said} with probability ${probability}; its weights say ${theirs}`);
    }
    return index;
  });
}

/** The largest |a - b| over two nested arrays of the same shape. */
function maxAbsDifference(a, b) {
  const left = a.flat(Infinity);
  const right = b.flat(Infinity);
  return left.reduce((worst, value, i) => Math.max(worst, Math.abs(value - right[i])), 0);
}

/** Per epoch, the largest difference between each computed activation and the stored map. */
function checkFeatureMaps(data, samples, entries) {
  const wanted = field(field(data, "feature_map_image", ""), "index", "feature_map_image");
  const image = samples.find((sample) => sample.index === wanted);
  if (image === undefined) {
    fail("feature_map_image.index", undefined, `is ${shown(wanted)}, the index of no sample`);
  }
  return entries.map((entry, epoch) => {
    const computed = forward(entry.weights, image.image);
    if (!computed.logits.every(Number.isFinite)) {
      fail(`training_epochs[${epoch}].weights`, epoch, "give logits beyond any number: damaged");
    }
    const errors = {};
    for (const name of ACTIVATIONS) {
      const stored = entry.feature_maps[name];
      errors[name] = maxAbsDifference(computed[name], stored);
      const scale = Math.max(1, ...stored.flat(Infinity).map(Math.abs));
      if (!(errors[name] <= TOLERANCE * scale)) {
        fail(
          `training_epochs[${epoch}].feature_maps.${name}`,
          epoch,
          `differs by ${errors[name].toPrecision(3)} from what that epoch's weights compute ` +
            `(tolerance ${TOLERANCE}${scale > 1 ? ` × ${scale.toPrecision(3)}` : ""}): ` +
            "the weights or the maps are damaged",
        );
      }
    }
    return errors;
  });
}

/**
 * Check parsed `data` (see the module's comment); return, per epoch, the largest difference
 * between each computed activation and the stored feature map. Throws a DataProblem.
 */
export function validate(data) {
  if (!isObject(data)) {
    throw new DataProblem("is not a JSON object");
  }
  const shapes = shapesOf(data);
  const samples = checkSamples(data, shapes);
  const entries = checkEpochOrder(data);
  checkMetrics(entries);
  entries.forEach((entry, epoch) => {
    const path = `training_epochs[${epoch}]`;
    checkWeights(field(entry, "weights", path, epoch), shapes, `${path}.weights`, epoch);
    const maps = field(entry, "feature_maps", path, epoch);
    for (const [name, shape] of Object.entries(shapes.maps)) {
      const mapPath = `${path}.feature_maps.${name}`;
      checkArray(field(maps, name, `${path}.feature_maps`, epoch), shape, mapPath, epoch);
    }
  });
  const errors = checkFeatureMaps(data, samples, entries);
  const final = field(data, "final_weights", "");
  if (JSON.stringify(final) !== JSON.stringify(entries.at(-1).weights)) {
    fail("final_weights", undefined, `differ from the last epoch's (${entries.length - 1})`);
  }
  const byIndex = checkMistakeSamples(data, shapes);
  const named = new Set(entries.flatMap((entry, epoch) => checkMistakes(entry, epoch, byIndex)));
  const extra = [...byIndex.keys()].find((index) => !named.has(index));
  if (extra !== undefined) {
    fail("mistake_samples", undefined, `holds test image ${extra}, which no mistake names`);
  }
  const infinite = infinity(data);
  if (infinite !== null) {
    fail(infinite.slice(1), undefined, "is Infinity, not a finite number (too large for a double)");
  }
  return errors;
}
