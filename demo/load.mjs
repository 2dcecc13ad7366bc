/**
 * load.mjs: fetch `pretrained_cnn_data.json` and check that it has every key the page reads.
 *
 * Each failure is a LoadError with one sentence a lecturer can act on: the file is missing, is
 * not JSON, or lacks a key (named by its path, e.g. `training_epochs[3].weights.fc2`).
 */

/** Where the page looks for the data, relative to demo/index.html; `?data=PATH` overrides it. */
export const DEFAULT_DATA = "../data/pretrained_cnn_data.json";

/** {name: null} for each name: an object that must have these keys, whatever their values. */
const keys = (...names) => Object.fromEntries(names.map((name) => [name, null]));

const LAYER = keys("weight", "bias");

/**
 * The keys the page reads, as a template: `null` accepts any value, `{key: template}` an object
 * with those keys, and `[template]` a list whose every element fits the template.
 */
export const CONTRACT = {
  samples: [keys("image", "label", "index")],
  training_epochs: [
    {
      ...keys("epoch", "loss", "train_accuracy", "test_accuracy"),
      feature_maps: keys("conv1", "pool1", "conv2", "pool2", "fc1"),
      weights: { conv1: LAYER, conv2: LAYER, fc1: LAYER, fc2: LAYER },
    },
  ],
  architecture: {
    input_shape: null,
    conv1: keys("output_shape"),
    pool1: keys("output_shape"),
    conv2: keys("output_shape"),
    pool2: keys("output_shape"),
    flatten: keys("output_features"),
    fc1: keys("hidden_units"),
    output: keys("classes"),
  },
};

export class LoadError extends Error {}

/**
 * The first place where `value` does not fit `template`, as a sentence ("has no key `x.y`",
 * "has `x` that is not a list"), or null when it fits.
 */
export function contractProblem(value, template, path = "") {
  if (template === null) {
    return null;
  }
  if (Array.isArray(template)) {
    if (!Array.isArray(value)) {
      return `has \`${path}\` that is not a list`;
    }
    for (let i = 0; i < value.length; i++) {
      const problem = contractProblem(value[i], template[0], `${path}[${i}]`);
      if (problem !== null) {
        return problem;
      }
    }
    return null;
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return `has \`${path}\` that is not an object`;
  }
  for (const [key, inner] of Object.entries(template)) {
    const keyPath = path === "" ? key : `${path}.${key}`;
    if (!(key in value)) {
      return `has no key \`${keyPath}\``;
    }
    const problem = contractProblem(value[key], inner, keyPath);
    if (problem !== null) {
      return problem;
    }
  }
  return null;
}

/** The data's URL: `?data=...` in the page's address, else DEFAULT_DATA, relative to the page. */
export function dataUrl(pageUrl) {
  const asked = new URL(pageUrl).searchParams.get("data");
  return new URL(asked ?? DEFAULT_DATA, pageUrl);
}

/** The parsed JSON at `url` (called `name` in messages), checked against CONTRACT. */
export async function loadData(url, name) {
  let response;
  try {
    response = await fetch(url);
  } catch (error) {
    throw new LoadError(`Could not read ${name} (${error.message}): is \`make demo\` running?`);
  }
  if (response.status === 404) {
    throw new LoadError(`${name} is missing: run \`make data\` first.`);
  }
  if (!response.ok) {
    throw new LoadError(`Could not read ${name}: HTTP ${response.status} ${response.statusText}.`);
  }
  let data;
  try {
    data = JSON.parse(await response.text());
  } catch (error) {
    throw new LoadError(
      `${name} is not valid JSON (${error.message}): run \`make data\` to write it again.`,
    );
  }
  const problem = contractProblem(data, CONTRACT);
  if (problem !== null) {
    throw new LoadError(
      `${name} ${problem}, which the demo needs: run \`make data\` to write it again.`,
    );
  }
  return data;
}
