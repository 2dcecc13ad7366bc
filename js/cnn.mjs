/**
 * cnn.mjs: the CNN Architecture demo's forward pass in plain JavaScript, with no dependencies.
 *
 * It computes what the browser demo computes, straight from `pretrained_cnn_data.json`: the
 * weights are the JSON's nested arrays ({conv1: {weight, bias}, conv2, fc1, fc2}, e.g. one
 * entry of `training_epochs[i].weights`), and an image is 28 rows of 28 pixels from 0 to 255.
 *
 *   preprocess  pixel / 255, then (x - 0.1307) / 0.3081          -> [1][28][28]
 *   conv1       3x3 convolution, 1 -> 4 channels (before ReLU)   -> [4][26][26]
 *   pool1       ReLU, then 2x2 max-pool                          -> [4][13][13]
 *   conv2       3x3 convolution, 4 -> 8 channels (before ReLU)   -> [8][11][11]
 *   pool2       ReLU, then 2x2 max-pool                          -> [8][5][5]
 *   fc1         flatten to 200, fully connected to 128, ReLU     -> [128]
 *   logits      fully connected to 10                            -> [10]
 *   softmax     the probability of each digit 0..9               -> [10]
 *
 * In a page: `import { forward } from "./cnn.mjs"`. Under Node.js: see check.mjs beside it.
 * tests/test_js.py checks it against the JSON's feature maps and PyTorch, for every epoch.
 */

/** The mean and standard deviation of the MNIST training pixels, as the model was trained. */
export const MEAN = 0.1307;
export const STD = 0.3081;

/** Pixels [28][28] (0..255) -> one normalized channel [1][28][28]. */
export function preprocess(pixels) {
  return [pixels.map((row) => row.map((pixel) => (pixel / 255 - MEAN) / STD))];
}

/** An array of `length` items, item i = make(i). (A plain loop: Array.from({ length }, ...)
 * reads the object's length and indices one by one, and took most of a forward pass.) */
function range(length, make) {
  const items = new Array(length);
  for (let i = 0; i < length; i++) {
    items[i] = make(i);
  }
  return items;
}

/**
 * Valid convolution with stride 1: input [C][H][W], weight [O][C][k][k], bias [O]
 * -> [O][H-k+1][W-k+1]. Each output is the bias plus one dot product of a filter and a window.
 */
export function conv2d(input, weight, bias) {
  const k = weight[0][0].length;
  const height = input[0].length - k + 1;
  const width = input[0][0].length - k + 1;
  return weight.map((filter, o) =>
    range(height, (y) =>
      range(width, (x) => {
        let sum = bias[o];
        for (let c = 0; c < filter.length; c++) {
          for (let i = 0; i < k; i++) {
            const inputRow = input[c][y + i];
            const kernelRow = filter[c][i];
            for (let j = 0; j < k; j++) {
              sum += inputRow[x + j] * kernelRow[j];
            }
          }
        }
        return sum;
      }),
    ),
  );
}

/** max(0, x) for every number in a nested array. */
export function relu(x) {
  return Array.isArray(x) ? x.map(relu) : Math.max(0, x);
}

/** 2x2 max-pool, stride 2: [C][H][W] -> [C][H/2][W/2]; an odd last row or column is dropped. */
export function maxPool2x2(input) {
  return input.map((channel) =>
    range(Math.floor(channel.length / 2), (y) =>
      range(Math.floor(channel[0].length / 2), (x) =>
        Math.max(
          channel[2 * y][2 * x],
          channel[2 * y][2 * x + 1],
          channel[2 * y + 1][2 * x],
          channel[2 * y + 1][2 * x + 1],
        ),
      ),
    ),
  );
}

/** Fully connected: input [n], weight [m][n], bias [m] -> [m]. */
export function linear(input, weight, bias) {
  return weight.map((row, o) => {
    let sum = bias[o];
    for (let i = 0; i < row.length; i++) {
      sum += row[i] * input[i];
    }
    return sum;
  });
}

/** Scores -> probabilities that sum to 1 (the largest score is subtracted first, for safety). */
export function softmax(logits) {
  const largest = Math.max(...logits);
  const exps = logits.map((logit) => Math.exp(logit - largest));
  const total = exps.reduce((sum, value) => sum + value, 0);
  return exps.map((value) => value / total);
}

/** Every activation the demo draws, the logits and the probabilities, for one image. */
export function forward(weights, pixels) {
  const conv1 = conv2d(preprocess(pixels), weights.conv1.weight, weights.conv1.bias);
  const pool1 = maxPool2x2(relu(conv1));
  const conv2 = conv2d(pool1, weights.conv2.weight, weights.conv2.bias);
  const pool2 = maxPool2x2(relu(conv2));
  const fc1 = relu(linear(pool2.flat(2), weights.fc1.weight, weights.fc1.bias));
  const logits = linear(fc1, weights.fc2.weight, weights.fc2.bias);
  return { conv1, pool1, conv2, pool2, fc1, logits, probabilities: softmax(logits) };
}

/** The position of the largest value: the predicted digit, given logits or probabilities. */
export function argmax(values) {
  return values.indexOf(Math.max(...values));
}

/** The digit the network sees in an image: the one with the highest probability. */
export function predict(weights, pixels) {
  return argmax(forward(weights, pixels).probabilities);
}
