/**
 * explain.mjs: the arithmetic behind one number the page drew, worked out on the real network.
 *
 *   conv1/conv2 pixel: its window of the layer's input (the image, or pool1's 4 maps) times the
 *                      kernel, summed over every input channel, plus the bias
 *   pool1/pool2 pixel: its 2×2 window of the convolution's map, ReLU, and the largest
 *   fc2 bar (a digit): the largest contributions of fc1's units to that digit's score
 *
 * `explain(...)` returns the numbers as a plain object (the page keeps it in demoState for the
 * tests); `showExplanation(...)` writes them into the dialog as tables a class can read. The
 * dialog rounds every number to 3 decimals and does its arithmetic on the numbers as printed,
 * so that each product and sum checks out on paper; beside it, what js/cnn.mjs computed from
 * the unrounded numbers. Maps, rows, columns and fc1 units are numbered from 1.
 */

import { preprocess, relu } from "../js/cnn.mjs";
import { SCALES, element, largestMagnitude, paintMap, scaleColour } from "./views.mjs";

const KERNEL = 3; // the convolutions' kernel size
const POOL = 2; // the pooling window
const TOP_UNITS = 8; // fc1 units listed for an fc2 score

/** rows y..y+size-1, columns x..x+size-1 of a map [H][W]. */
const windowOf = (map, y, x, size) =>
  map.slice(y, y + size).map((row) => row.slice(x, x + size));

/** Pixel (y, x) of map `channel` of a conv layer: every product, per input channel, and the sum
 * in the order js/cnn.mjs adds them (bias first), so that it equals what the page drew. */
function explainConvolution(layer, channel, y, x, weights, inputs, computed) {
  const kernel = weights[layer].weight[channel];
  const bias = weights[layer].bias[channel];
  let total = bias;
  const terms = kernel.map((slice, c) => {
    const window = windowOf(inputs[c], y, x, KERNEL);
    const products = window.map((row, i) => row.map((value, j) => value * slice[i][j]));
    let sum = 0;
    for (const row of products) {
      for (const product of row) {
        sum += product;
        total += product;
      }
    }
    return { channel: c, window, kernel: slice, products, sum };
  });
  return { kind: "convolution", layer, channel, y, x, terms, bias, total, computed };
}

/** Pixel (y, x) of pool map `channel`: the 2×2 window of the convolution, ReLU, and the max. */
function explainPool(layer, channel, y, x, convolution, computed) {
  const window = windowOf(convolution[channel], POOL * y, POOL * x, POOL);
  const rectified = relu(window);
  const max = Math.max(...rectified.flat());
  return { kind: "pool", layer, channel, y, x, window, rectified, max, computed };
}

/** Digit `digit`'s score: fc1 activation × weight per unit, the largest by size listed. */
function explainScore(digit, weights, result) {
  const row = weights.fc2.weight[digit];
  const contributions = result.fc1.map((activation, unit) => ({
    unit,
    activation,
    weight: row[unit],
    product: activation * row[unit],
  }));
  const top = [...contributions]
    .sort((a, b) => Math.abs(b.product) - Math.abs(a.product))
    .slice(0, TOP_UNITS);
  const listed = new Set(top.map(({ unit }) => unit));
  const rest = contributions
    .filter(({ unit }) => !listed.has(unit))
    .reduce((sum, { product }) => sum + product, 0);
  const bias = weights.fc2.bias[digit];
  let total = bias;
  for (const { product } of contributions) {
    total += product;
  }
  return {
    kind: "score",
    layer: "fc2",
    digit,
    top,
    rest,
    restCount: contributions.length - top.length,
    bias,
    total,
    computed: result.logits[digit],
    probability: result.probabilities[digit],
  };
}

/**
 * The explanation of `target` ({layer, channel, y, x} on a map, or {layer: "fc2", digit}) for
 * `image` under `weights`, whose forward pass is `result`.
 */
export function explain(target, weights, image, result) {
  const { layer, channel, y, x } = target;
  switch (layer) {
    case "conv1":
    case "conv2": {
      const inputs = layer === "conv1" ? preprocess(image) : result.pool1;
      const computed = result[layer][channel][y][x];
      return explainConvolution(layer, channel, y, x, weights, inputs, computed);
    }
    case "pool1":
    case "pool2": {
      const convolution = layer === "pool1" ? result.conv1 : result.conv2;
      return explainPool(layer, channel, y, x, convolution, result[layer][channel][y][x]);
    }
    default:
      return explainScore(target.digit, weights, result);
  }
}

// ---------------------------------------------------------------------------------------------
// The dialog

const DECIMALS = 3; // every number in the dialog is printed with this many decimals
const UNIT = 10 ** DECIMALS;

/** x rounded to an integer, halves away from zero (as on paper). */
const roundHalfAway = (x) => Math.sign(x) * Math.round(Math.abs(x));

/** A value as it is printed (rounded as toFixed rounds), in thousandths: an integer, so that
 * printed sums are exact. */
const printed = (value) => Math.sign(value) * Math.round(Number(Math.abs(value).toFixed(DECIMALS)) * UNIT);

/** The product of two printed numbers (thousandths), rounded to thousandths as printed. */
const printedProduct = (a, b) => roundHalfAway((a * b) / UNIT);

const total = (units) => units.reduce((sum, value) => sum + value, 0);

/** Thousandths as text, a true minus sign: "0.526", "−0.035". */
const decimalText = (units) =>
  `${units < 0 ? "−" : ""}${(Math.abs(units) / UNIT).toFixed(DECIMALS)}`;

/** An unrounded value with two decimals more than the printed ones. */
const unroundedText = (value) => value.toFixed(DECIMALS + 2).replace("-", "−");

/** WCAG's relative luminance of an sRGB colour [r, g, b], 0..255 each. */
function luminance(rgb) {
  const linear = rgb
    .map((c) => c / 255)
    .map((c) => (c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
  return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2];
}

/** A table of printed numbers [H][W] (thousandths), each cell tinted on `scale`, its text black
 * or white, whichever contrasts more (at least 4.5:1 either way). */
function grid(rows, role, limit, scale) {
  const table = element("table", `grid ${role}`);
  table.dataset.role = role;
  for (const row of rows) {
    const line = table.insertRow();
    for (const units of row) {
      const cell = line.insertCell();
      cell.textContent = decimalText(units);
      const tint = scaleColour(units / UNIT, limit, scale);
      cell.style.background = `rgb(${tint.join(" ")})`;
      cell.style.color = luminance(tint) > 0.179 ? "black" : "white";
    }
  }
  return table;
}

/** A map painted on `scale` with the window of `size` pixels at (y, x) outlined. */
function markedMap(map, y, x, size, limit, scale) {
  const box = element("div", "source-map");
  const canvas = element("canvas", "");
  paintMap(canvas, map, limit, scale);
  const mark = element("span", "window");
  const height = map.length;
  const width = map[0].length;
  mark.style.left = `${(100 * x) / width}%`;
  mark.style.top = `${(100 * y) / height}%`;
  mark.style.width = `${(100 * size) / width}%`;
  mark.style.height = `${(100 * size) / height}%`;
  box.append(canvas, mark);
  return box;
}

/** The maps a window is taken from, each with the window outlined. */
function sourceFigure(maps, y, x, size, limit, scale, caption) {
  const figure = element("figure", "source");
  const row = element("div", "source-maps");
  row.append(...maps.map((map) => markedMap(map, y, x, size, limit, scale)));
  figure.append(row, element("figcaption", "", caption));
  return figure;
}

/** Arrow buttons for the explained pixel: key (as the keyboard's), label, symbol. */
const MOVE_BUTTONS = [
  ["ArrowUp", "the pixel above", "↑"],
  ["ArrowLeft", "the pixel to the left", "←"],
  ["ArrowRight", "the pixel to the right", "→"],
  ["ArrowDown", "the pixel below", "↓"],
];

/**
 * The explained map itself, enlarged, its pixel outlined: a tap or a click on it explains that
 * pixel instead, and the arrow buttons move one pixel (a finger's way into a small map).
 */
function pixelPicker(e, result) {
  const map = result[e.layer][e.channel];
  const scale = e.layer.startsWith("pool") ? SCALES.oneSided : SCALES.twoSided;
  const figure = element("figure", "picker");
  const box = markedMap(map, e.y, e.x, 1, largestMagnitude(map), scale);
  const canvas = box.querySelector("canvas");
  canvas.dataset.layer = e.layer;
  canvas.dataset.channel = String(e.channel);
  const moves = element("div", "moves");
  for (const [key, label, symbol] of MOVE_BUTTONS) {
    const button = element("button", "move", symbol);
    button.type = "button";
    button.dataset.key = key;
    button.setAttribute("aria-label", `explain ${label}`);
    moves.append(button);
  }
  const caption = `${e.layer} map ${e.channel + 1}: tap a pixel, or move with the arrows`;
  figure.append(box, moves, element("figcaption", "", caption));
  return figure;
}

const operator = (text) => element("span", "operator", text);

/**
 * The sum of printed `addends` ([name, thousandths]) as a line "a + b + bias c = total", the
 * total the exact sum of what is printed; under it, what js/cnn.mjs computed unrounded.
 */
function sumLines(addends, computed, what) {
  const line = element("p", "result");
  addends.forEach(([name, units], i) => {
    if (i > 0) {
      line.append(" + ");
    }
    line.append(name, element("span", "addend", decimalText(units)));
  });
  line.append(" = ", element("b", "total", decimalText(total(addends.map(([, u]) => u)))));
  const note = element(
    "p",
    "unrounded",
    `Every number is rounded to ${DECIMALS} decimals, and each product and sum is of the ` +
      `numbers as printed. js/cnn.mjs, from the unrounded numbers: ${what} ` +
      `${unroundedText(computed)}.`,
  );
  return [line, note];
}

/** Rows of a [H][W] array, each value printed (thousandths). */
const printedRows = (rows) => rows.map((row) => row.map(printed));

function showConvolution(body, e, image, result) {
  const first = e.layer === "conv1";
  const sources = first ? preprocess(image) : result.pool1;
  const sourceLimit = largestMagnitude(sources);
  const sourceScale = first ? SCALES.twoSided : SCALES.oneSided;
  const caption = first
    ? "its 3×3 window of the input (pixels normalized: (p/255 − 0.1307)/0.3081)"
    : "its 3×3 window on each of pool1's 4 maps";
  body.append(sourceFigure(sources, e.y, e.x, KERNEL, sourceLimit, sourceScale, caption));
  const terms = element("div", "terms");
  const kernelLimit = largestMagnitude(e.terms.map(({ kernel }) => kernel));
  const productLimit = largestMagnitude(e.terms.map(({ products }) => products));
  const sums = [];
  for (const term of e.terms) {
    const window = printedRows(term.window);
    const kernel = printedRows(term.kernel);
    const products = window.map((row, i) => row.map((w, j) => printedProduct(w, kernel[i][j])));
    const sum = total(products.flat());
    const line = element("div", "term");
    const name = first ? "input" : `pool1 map ${term.channel + 1}`;
    line.append(element("span", "term-name", name));
    line.append(grid(window, "window", sourceLimit, sourceScale));
    line.append(operator("×"), grid(kernel, "kernel", kernelLimit, SCALES.twoSided));
    line.append(operator("="), grid(products, "products", productLimit, SCALES.twoSided));
    line.append(operator("sum"), element("b", "sum", decimalText(sum)));
    terms.append(line);
    sums.push([first ? "input: " : `map ${term.channel + 1}: `, sum]);
  }
  terms.append(...sumLines([...sums, ["bias: ", printed(e.bias)]], e.computed, "the pixel is"));
  body.append(terms);
}

function showPool(body, e, result) {
  const convolution = e.layer === "pool1" ? result.conv1 : result.conv2;
  const source = e.layer === "pool1" ? "conv1" : "conv2";
  const map = convolution[e.channel];
  body.append(
    sourceFigure(
      [map],
      POOL * e.y,
      POOL * e.x,
      POOL,
      largestMagnitude(map),
      SCALES.twoSided,
      `its 2×2 window of ${source} map ${e.channel + 1}`,
    ),
  );
  const terms = element("div", "terms");
  const line = element("div", "term");
  const limit = largestMagnitude(e.window);
  const window = printedRows(e.window);
  const rectified = window.map((row) => row.map((units) => Math.max(0, units)));
  line.append(element("span", "term-name", source));
  line.append(grid(window, "window", limit, SCALES.twoSided));
  line.append(operator("ReLU"), grid(rectified, "relu", limit, SCALES.oneSided));
  const largest = element("p", "result");
  largest.append(
    "the largest of the four: ",
    element("b", "total", decimalText(Math.max(...rectified.flat()))),
  );
  terms.append(line, largest);
  body.append(terms);
}

function showScore(body, e) {
  const table = element("table", "contributions");
  const head = table.createTHead().insertRow();
  for (const title of ["fc1 unit", "activation", "× weight", "= contribution"]) {
    head.append(element("th", "", title));
  }
  const rows = table.createTBody();
  const listed = [];
  for (const { unit, activation, weight } of e.top) {
    const row = rows.insertRow();
    const factors = [printed(activation), printed(weight)];
    const product = printedProduct(...factors);
    row.insertCell().textContent = String(unit + 1);
    for (const units of [...factors, product]) {
      row.insertCell().textContent = decimalText(units);
    }
    listed.push(product);
  }
  const terms = element("div", "terms");
  const count = e.top.length + e.restCount;
  const percent = `${(100 * e.probability).toFixed(1)}%`;
  const addends = [
    [`those ${e.top.length}: `, total(listed)],
    [`the other ${e.restCount}: `, printed(e.rest)],
    ["bias: ", printed(e.bias)],
  ];
  terms.append(
    element("p", "", `The ${e.top.length} largest of the ${count} contributions to ${e.digit}:`),
    table,
    ...sumLines(addends, e.computed, "the score is"),
    element("p", "", `softmax of the 10 scores: probability ${percent} for ${e.digit}`),
  );
  body.append(terms);
}

/** The dialog's title for an explanation, at `epoch`. */
export function explanationTitle(e, epoch) {
  if (e.kind === "score") {
    return `fc2: the score of digit ${e.digit}, epoch ${epoch}`;
  }
  return `${e.layer} map ${e.channel + 1}, row ${e.y + 1}, column ${e.x + 1}, epoch ${epoch}`;
}

/** Fill `body` with the explanation `e` of the page's `image` and forward pass `result`. */
export function showExplanation(body, e, image, result) {
  body.replaceChildren();
  if (e.kind === "convolution") {
    body.append(pixelPicker(e, result));
    showConvolution(body, e, image, result);
  } else if (e.kind === "pool") {
    body.append(pixelPicker(e, result));
    showPool(body, e, result);
  } else {
    showScore(body, e);
  }
}
