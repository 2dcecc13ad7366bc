/**
 * views.mjs: draw what the page shows: the architecture, feature maps on a diverging colour
 * scale, the probability bars and the training curve. Each function draws from plain numbers.
 */

const NEGATIVE = [33, 102, 172]; // blue, for the most negative value of the scale
const POSITIVE = [178, 24, 43]; // red, for the most positive value
const ZERO = [255, 255, 255]; // white, for zero

/** The training curves' lines; the numbers above the curve show them as their legend. */
export const LINES = {
  loss: { colour: "#d95f02", dashed: false },
  train: { colour: "#7570b3", dashed: true },
  test: { colour: "#1b9e77", dashed: false },
};

/** Create an element with a class and text. */
function element(tag, className, text) {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

/** A shape [4, 26, 26] as "4×26×26". */
export const shapeText = (shape) => shape.join("×");

/** The boxes input -> conv1 -> ... -> output, each with its output shape. */
export function drawArchitecture(container, architecture) {
  const a = architecture;
  const layers = [
    ["input", "", a.input_shape],
    ["conv1", "3×3 conv", a.conv1.output_shape],
    ["pool1", "ReLU, 2×2 max", a.pool1.output_shape],
    ["conv2", "3×3 conv", a.conv2.output_shape],
    ["pool2", "ReLU, 2×2 max", a.pool2.output_shape],
    ["flatten", "", [a.flatten.output_features]],
    ["fc1", "linear, ReLU", [a.fc1.hidden_units]],
    ["fc2", "linear, softmax", [a.output.classes]],
  ];
  container.replaceChildren();
  layers.forEach(([name, operation, shape], i) => {
    if (i > 0) {
      container.append(element("span", "arrow", "→"));
    }
    const box = element("div", "layer");
    box.dataset.layer = name;
    box.append(element("b", "name", name), element("span", "shape", shapeText(shape)));
    box.append(element("span", "operation", operation));
    container.append(box);
  });
}

/** The colour of `value` on a scale from -limit (blue) through 0 (white) to +limit (red). */
export function divergingColour(value, limit) {
  const t = limit > 0 ? Math.max(-1, Math.min(1, value / limit)) : 0;
  const end = t < 0 ? NEGATIVE : POSITIVE;
  return ZERO.map((zero, i) => Math.round(zero + (end[i] - zero) * Math.abs(t)));
}

/** The largest |value| in a nested array: the half-width of a symmetric colour scale. */
export function largestMagnitude(values) {
  return values.flat(Infinity).reduce((largest, value) => Math.max(largest, Math.abs(value)), 0);
}

/** Paint rows of numbers [H][W] onto a canvas of H×W pixels (CSS enlarges it, pixelated). */
export function paintMap(canvas, rows, limit) {
  canvas.height = rows.length;
  canvas.width = rows[0].length;
  const context = canvas.getContext("2d");
  const image = context.createImageData(canvas.width, canvas.height);
  rows.flat().forEach((value, i) => {
    image.data.set([...divergingColour(value, limit), 255], 4 * i);
  });
  context.putImageData(image, 0, 0);
}

/** Paint 28×28 pixels 0..255 as MNIST shows them: white ink on black. */
export function paintDigit(canvas, pixels) {
  const context = canvas.getContext("2d");
  const image = context.createImageData(pixels[0].length, pixels.length);
  pixels.flat().forEach((value, i) => image.data.set([value, value, value, 255], 4 * i));
  context.putImageData(image, 0, 0);
}

/** The legend of a colour scale: a gradient bar labelled -limit, 0 and +limit. */
function scaleLegend(limit) {
  const legend = element("div", "scale");
  const number = limit.toPrecision(3);
  legend.append(
    element("span", "low", `−${number}`),
    element("span", "bar"),
    element("span", "high", `+${number}`),
  );
  legend.title = "blue: negative, white: zero, red: positive";
  return legend;
}

/** A row for one layer: its name, shape and note, its colour scale, a canvas per channel. */
function layerRow(name, shape, note, channels) {
  const row = element("div", `layer-maps ${name}`);
  const title = element("div", "title");
  title.append(element("b", "", name), element("span", "shape", shapeText(shape)));
  title.append(element("span", "note", note), scaleLegend(0));
  const canvases = element("div", "channels");
  canvases.append(...channels.map(() => element("canvas", "map")));
  row.append(title, canvases);
  return row;
}

/**
 * One row per layer, one canvas per channel, on a colour scale shared by the layer's channels
 * with its range shown. `maps` is {conv1, pool1, conv2, pool2, fc1}; fc1 is drawn as one strip.
 */
export function drawFeatureMaps(container, maps, notes) {
  for (const [name, note] of Object.entries(notes)) {
    const channels = name === "fc1" ? [[maps.fc1]] : maps[name];
    const shape =
      name === "fc1"
        ? [maps.fc1.length]
        : [channels.length, channels[0].length, channels[0][0].length];
    let row = container.querySelector(`.layer-maps.${name}`);
    if (row === null) {
      row = layerRow(name, shape, note, channels);
      container.append(row);
    }
    const limit = largestMagnitude(channels);
    row.querySelector(".scale").replaceWith(scaleLegend(limit));
    row.querySelectorAll("canvas").forEach((canvas, i) => paintMap(canvas, channels[i], limit));
  }
}

/** Ten bars, one per digit, the predicted digit highlighted. */
export function drawBars(container, probabilities, predicted) {
  container.replaceChildren();
  probabilities.forEach((probability, digit) => {
    const row = element("div", digit === predicted ? "bar-row predicted" : "bar-row");
    const bar = element("span", "bar");
    bar.style.width = `${(100 * probability).toFixed(2)}%`;
    const track = element("span", "track");
    track.append(bar);
    row.append(
      element("span", "digit", String(digit)),
      track,
      element("span", "percent", `${(100 * probability).toFixed(1)}%`),
    );
    container.append(row);
  });
}

/**
 * Training loss (left axis) and train/test accuracy in percent (right axis) over the epochs,
 * with the current epoch marked by a vertical line and dots.
 */
export function drawCurve(canvas, epochs, current) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const c = canvas.getContext("2d");
  c.scale(ratio, ratio);
  c.clearRect(0, 0, width, height);
  const font = getComputedStyle(canvas).fontFamily;
  c.font = `14px ${font}`;

  const box = { left: 46, right: width - 50, top: 12, bottom: height - 30 };
  const last = epochs.at(-1).epoch;
  const x = (epoch) => box.left + ((box.right - box.left) * epoch) / Math.max(1, last);
  const maxLoss = Math.max(...epochs.map((entry) => entry.loss));
  const yLoss = (loss) => box.bottom - ((box.bottom - box.top) * loss) / (1.05 * maxLoss);
  const yAccuracy = (percent) => box.bottom - ((box.bottom - box.top) * percent) / 100;

  // Axes, ticks and labels.
  c.strokeStyle = "#999";
  c.lineWidth = 1;
  c.strokeRect(box.left, box.top, box.right - box.left, box.bottom - box.top);
  c.fillStyle = "#333";
  c.textAlign = "center";
  c.textBaseline = "top";
  // Label every `step` epochs, at least 32 pixels apart.
  const step = [1, 2, 5, 10, 20, 50].find((n) => (n * (box.right - box.left)) / last >= 32) ?? 100;
  for (let epoch = 0; epoch <= last; epoch += step) {
    c.fillText(String(epoch), x(epoch), box.bottom + 6);
  }
  c.textBaseline = "middle";
  c.textAlign = "right";
  c.fillStyle = LINES.loss.colour;
  for (const loss of [0, maxLoss / 2, maxLoss]) {
    c.fillText(loss.toFixed(1), box.left - 6, yLoss(loss));
  }
  c.textAlign = "left";
  c.fillStyle = "#333";
  for (const percent of [0, 50, 100]) {
    c.fillText(`${percent}%`, box.right + 6, yAccuracy(percent));
  }

  // The three curves.
  const curves = [
    ["loss", LINES.loss, yLoss],
    ["train_accuracy", LINES.train, yAccuracy],
    ["test_accuracy", LINES.test, yAccuracy],
  ];
  for (const [key, { colour, dashed }, y] of curves) {
    c.strokeStyle = colour;
    c.lineWidth = 2.5;
    c.setLineDash(dashed ? [6, 4] : []);
    c.beginPath();
    c.moveTo(x(epochs[0].epoch), y(epochs[0][key]));
    for (const entry of epochs.slice(1)) {
      c.lineTo(x(entry.epoch), y(entry[key]));
    }
    c.stroke();
  }
  c.setLineDash([]);

  // The current epoch: a vertical line and a dot on each curve.
  const now = epochs[current];
  c.strokeStyle = "#222";
  c.lineWidth = 1.5;
  c.beginPath();
  c.moveTo(x(now.epoch), box.top);
  c.lineTo(x(now.epoch), box.bottom);
  c.stroke();
  for (const [key, { colour }, y] of curves) {
    c.fillStyle = colour;
    c.beginPath();
    c.arc(x(now.epoch), y(now[key]), 5, 0, 2 * Math.PI);
    c.fill();
  }
}
