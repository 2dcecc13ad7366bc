/**
 * validate.mjs: the one check of a parsed `pretrained_cnn_data.json`, shared by the demo page
 * (demo/load.mjs) and `node js/check.mjs`. No dependencies but cnn.mjs; runs in both.
 *
 * `validate(data)` checks every key the page reads, every shape, that every number is finite,
 * that the epochs are 0..N each once in order and that every digit has a sample; then it
 * recomputes what it certifies: cnn.mjs's forward pass of the feature-map image under each
 * epoch's weights must give every stored feature map (fc1 included) within TOLERANCE, relative
 * to the largest stored value when that is above 1 (as cnnlib's verify). The first problem
 * found is thrown as a DataProblem whose message names the key, the epoch and what is wrong.
 */

import { forward } from "./cnn.mjs";

const TOLERANCE = 1e-4;
const ACTIVATIONS = ["conv1", "pool1", "conv2", "pool2", "fc1"];

/** The shape of every array the page reads, as the network has it. */
const SHAPES = {
  weights: {
    conv1: { weight: [4, 1, 3, 3], bias: [4] },
    conv2: { weight: [8, 4, 3, 3], bias: [8] },
    fc1: { weight: [128, 200], bias: [128] },
    fc2: { weight: [10, 128], bias: [10] },
  },
  feature_maps: {
    conv1: [4, 26, 26],
    pool1: [4, 13, 13],
    conv2: [8, 11, 11],
    pool2: [8, 5, 5],
    fc1: [128],
  },
  image: [28, 28],
};

/** The architecture's keys the page reads (their values are drawn as they are). */
const ARCHITECTURE = {
  input_shape: null,
  conv1: "output_shape",
  pool1: "output_shape",
  conv2: "output_shape",
  pool2: "output_shape",
  flatten: "output_features",
  fc1: "hidden_units",
  output: "classes",
};

export class DataProblem extends Error {}

/** Throw a DataProblem about key `path` (of epoch `epoch`, when given). */
function fail(path, epoch, what) {
  const where = epoch === undefined ? `\`${path}\`` : `\`${path}\` (epoch ${epoch})`;
  throw new DataProblem(`${where} ${what}`);
}

const isObject = (value) => value !== null && typeof value === "object" && !Array.isArray(value);

/** A value as the JSON text that gave it (a number too large for a double reads as Infinity). */
const shown = (value) => (typeof value === "number" ? String(value) : JSON.stringify(value));

/** `value[key]`, which must exist. */
function field(value, key, path, epoch) {
  if (!isObject(value)) {
    fail(path, epoch, "is not an object");
  }
  if (!(key in value)) {
    fail(path === "" ? key : `${path}.${key}`, epoch, "is missing");
  }
  return value[key];
}

/** A nested list of finite numbers of exactly `shape`; with `pixels`, integers 0..255. */
function checkArray(value, shape, path, epoch, pixels = false) {
  if (!Array.isArray(value)) {
    fail(path, epoch, `is not a list (it should be ${shape.join("×")})`);
  }
  if (value.length !== shape[0]) {
    const noun = shape.length > 1 ? "rows" : "values";
    fail(path, epoch, `has ${value.length} ${noun} where the network has ${shape[0]}`);
  }
  value.forEach((item, i) => {
    if (shape.length > 1) {
      checkArray(item, shape.slice(1), `${path}[${i}]`, epoch, pixels);
    } else if (typeof item !== "number" || !Number.isFinite(item)) {
      fail(`${path}[${i}]`, epoch, `is ${shown(item)}, not a finite number`);
    } else if (pixels && !(Number.isInteger(item) && item >= 0 && item <= 255)) {
      fail(`${path}[${i}]`, epoch, `is ${item}, not a pixel value 0..255`);
    }
  });
}

/** A finite number, at least `low` and at most `high`. */
function checkNumber(value, path, epoch, low = -Infinity, high = Infinity) {
  if (typeof value !== "number" || !Number.isFinite(value) || value < low || value > high) {
    const range = Number.isFinite(low) ? ` in ${low}..${high}` : "";
    fail(path, epoch, `is ${shown(value)}, not a finite number${range}`);
  }
}

function checkEpochs(data) {
  const config = field(field(data, "metadata", ""), "config", "metadata");
  const last = field(config, "epochs", "metadata.config");
  const entries = field(data, "training_epochs", "");
  if (!Array.isArray(entries) || entries.length === 0) {
    fail("training_epochs", undefined, "holds no epoch");
  }
  const epochs = entries.map((entry) => (isObject(entry) ? entry.epoch : undefined));
  if (!Number.isInteger(last) || epochs.length !== last + 1 || epochs.some((e, i) => e !== i)) {
    fail(
      "training_epochs",
      undefined,
      `holds epochs ${epochs.slice(0, 8).join(", ")}; expected 0..${last}, each once, in order`,
    );
  }
  entries.forEach((entry, i) => {
    const path = `training_epochs[${i}]`;
    checkNumber(field(entry, "loss", path, i), `${path}.loss`, i);
    for (const key of ["train_accuracy", "test_accuracy"]) {
      checkNumber(field(entry, key, path, i), `${path}.${key}`, i, 0, 100);
    }
    const weights = field(entry, "weights", path, i);
    for (const [layer, shapes] of Object.entries(SHAPES.weights)) {
      const values = field(weights, layer, `${path}.weights`, i);
      for (const [key, shape] of Object.entries(shapes)) {
        const keyPath = `${path}.weights.${layer}.${key}`;
        checkArray(field(values, key, `${path}.weights.${layer}`, i), shape, keyPath, i);
      }
    }
    const maps = field(entry, "feature_maps", path, i);
    for (const [name, shape] of Object.entries(SHAPES.feature_maps)) {
      const keyPath = `${path}.feature_maps.${name}`;
      checkArray(field(maps, name, `${path}.feature_maps`, i), shape, keyPath, i);
    }
  });
  return entries;
}

function checkSamples(data) {
  const samples = field(data, "samples", "");
  if (!Array.isArray(samples)) {
    fail("samples", undefined, "is not a list");
  }
  samples.forEach((sample, i) => {
    const path = `samples[${i}]`;
    checkArray(field(sample, "image", path), SHAPES.image, `${path}.image`, undefined, true);
    const label = field(sample, "label", path);
    if (!Number.isInteger(label) || label < 0 || label > 9) {
      fail(`${path}.label`, undefined, `is ${shown(label)}, not a digit 0..9`);
    }
    checkNumber(field(sample, "index", path), `${path}.index`, undefined, 0, 9999);
  });
  for (let digit = 0; digit <= 9; digit++) {
    if (!samples.some((sample) => sample.label === digit)) {
      fail("samples", undefined, `has no image of the digit ${digit}`);
    }
  }
  return samples;
}

function checkArchitecture(data) {
  const architecture = field(data, "architecture", "");
  for (const [layer, key] of Object.entries(ARCHITECTURE)) {
    const value = field(architecture, layer, "architecture");
    if (key !== null) {
      field(value, key, `architecture.${layer}`);
    }
  }
}

/** The largest |a - b| over two nested arrays of the same shape. */
function maxAbsDifference(a, b) {
  const left = a.flat(Infinity);
  const right = b.flat(Infinity);
  return left.reduce((worst, value, i) => Math.max(worst, Math.abs(value - right[i])), 0);
}

/**
 * Check `data` (see the module's comment); return, per epoch, the largest difference between
 * each computed activation and the stored feature map. Throws a DataProblem.
 */
export function validate(data) {
  if (!isObject(data)) {
    throw new DataProblem("is not a JSON object");
  }
  checkArchitecture(data);
  const samples = checkSamples(data);
  const entries = checkEpochs(data);
  const wanted = field(field(data, "feature_map_image", ""), "index", "feature_map_image");
  const image = samples.find((sample) => sample.index === wanted);
  if (image === undefined) {
    fail("feature_map_image.index", undefined, `is ${wanted}, the index of no sample`);
  }
  return entries.map((entry, epoch) => {
    const computed = forward(entry.weights, image.image);
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
