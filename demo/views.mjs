/**
 * views.mjs: draw what the page shows: the architecture, the feature maps and kernels on their
 * colour scales, the probability bars and the training curve. Each function draws plain numbers.
 *
 * Two colour scales, both darker for lower values, so that they still read on a projector that
 * washes colours out (or in greyscale): a two-sided one for values before ReLU (the convolutions
 * and their kernels: dark blue for negative, grey for zero, light orange for positive) and a
 * one-sided one for values after ReLU, which are never negative (black for zero, as the input's
 * background, to light orange).
 */

/** Colour stops [t, [r, g, b]] of each scale, t from -1 (or 0) to 1. */
export const SCALES = {
  twoSided: [
    [-1, [20, 40, 110]],
    [-0.5, [70, 110, 175]],
    [0, [140, 140, 140]],
    [0.5, [215, 150, 80]],
    [1, [255, 235, 180]],
  ],
  oneSided: [
    [0, [0, 0, 0]],
    [0.5, [175, 85, 40]],
    [1, [255, 235, 180]],
  ],
};

/** Which layers hold values after ReLU (one-sided scale). */
const AFTER_RELU = new Set(["pool1", "pool2", "fc1"]);

/** The training curves' lines (each at least 4.5:1 against white, as its labels are text). */
export const LINES = {
  loss: { colour: "#9a3c00", dashed: false },
  train: { colour: "#5e56a8", dashed: true },
  test: { colour: "#006b4b", dashed: false },
};

/** Create an element with a class and text. */
export function element(tag, className, text) {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

/** Set the text of `node`, only when it changes: each new text costs the page a layout, and an
 * update sets some thirty texts, many of them as they were (on every frame of a stroke). */
export function setText(node, text) {
  if (node.textContent !== text) {
    node.textContent = text;
  }
}

/** A shape [4, 26, 26] as "4×26×26". */
const shapeText = (shape) => shape.join("×");

/** A number for a label: 3 significant digits, a true minus sign. */
export const numberText = (value) => value.toPrecision(3).replace("-", "−");

/** The boxes input -> conv1 -> ... -> output, each with its output shape. */
export function drawArchitecture(container, architecture) {
  const a = architecture;
  const layers = [
    ["input", a.input_shape],
    ["conv1", a.conv1.output_shape],
    ["pool1", a.pool1.output_shape],
    ["conv2", a.conv2.output_shape],
    ["pool2", a.pool2.output_shape],
    ["flatten", [a.flatten.output_features]],
    ["fc1", [a.fc1.hidden_units]],
    ["fc2", [a.output.classes]],
  ];
  container.replaceChildren();
  layers.forEach(([name, shape], i) => {
    if (i > 0) {
      container.append(element("span", "arrow", "→"));
    }
    const box = element("div", "layer");
    box.dataset.layer = name;
    box.append(element("b", "name", name), element("span", "shape", shapeText(shape)));
    container.append(box);
  });
}

/** The colour [r, g, b] of `value` on `scale` (SCALES.twoSided or .oneSided) reaching its ends
 * at ±limit. */
export function scaleColour(value, limit, scale) {
  const rgba = [0, 0, 0, 0];
  writeColour(rgba, 0, value, limit, scale);
  return rgba.slice(0, 3);
}

/**
 * Write the colour of `value` (see scaleColour) into `pixels` from `offset`: r, g, b, then an
 * opaque alpha. paintMap calls it for each of the page's 5000 map pixels on every update, so it
 * makes no array (a slow phone spent more time making and dropping arrays than on the maths).
 */
function writeColour(pixels, offset, value, limit, scale) {
  const low = scale[0][0];
  const t = limit > 0 ? Math.max(low, Math.min(1, value / limit)) : 0;
  let upper = 0; // the first stop at or above t
  while (upper < scale.length - 1 && scale[upper][0] < t) {
    upper++;
  }
  const [t0, c0] = scale[Math.max(0, upper - 1)];
  const [t1, c1] = scale[upper];
  const f = t1 > t0 ? (t - t0) / (t1 - t0) : 0; // 0 on the first stop itself
  for (let i = 0; i < 3; i++) {
    pixels[offset + i] = Math.round(c0[i] + (c1[i] - c0[i]) * f);
  }
  pixels[offset + 3] = 255;
}

/** The largest |value| in a nested array: where a colour scale ends. */
export function largestMagnitude(values) {
  return values.flat(Infinity).reduce((largest, value) => Math.max(largest, Math.abs(value)), 0);
}

/** Each canvas's pixels as paintMap last wrote them: reused, as a new ImageData for each of 37
 * canvases on every update kept the garbage collector busy on a slow phone. */
const images = new WeakMap();

/** An ImageData of `width`×`height` pixels for `context`'s canvas, the one of its last paint. */
function imageOf(context, width, height) {
  let image = images.get(context);
  if (image?.width !== width || image.height !== height) {
    image = context.createImageData(width, height);
    images.set(context, image);
  }
  return image;
}

/**
 * Paint rows of numbers [H][W] onto a canvas of W×H pixels (CSS enlarges it, pixelated); rows
 * that are `null` stay transparent (the gaps between stacked kernels).
 */
export function paintMap(canvas, rows, limit, scale) {
  const height = rows.length;
  const width = rows.find((row) => row !== null).length;
  if (canvas.width !== width || canvas.height !== height) {
    canvas.width = width; // a new size clears the canvas and costs a layout: only when it changes
    canvas.height = height;
  }
  const context = canvas.getContext("2d");
  const image = imageOf(context, width, height);
  rows.forEach((row, y) => {
    if (row === null) {
      image.data.fill(0, 4 * y * width, 4 * (y + 1) * width); // transparent
      return;
    }
    for (let x = 0; x < width; x++) {
      writeColour(image.data, 4 * (y * width + x), row[x], limit, scale);
    }
  });
  context.putImageData(image, 0, 0); // replaces every pixel, the transparent ones too
}

/** Paint 28×28 pixels 0..255 as MNIST shows them: white ink on black. */
export function paintDigit(canvas, pixels) {
  const context = canvas.getContext("2d");
  const image = context.createImageData(pixels[0].length, pixels.length);
  pixels.flat().forEach((value, i) => {
    image.data.fill(value, 4 * i, 4 * i + 3); // grey: red, green and blue alike
    image.data[4 * i + 3] = 255;
  });
  context.putImageData(image, 0, 0);
}

/** The legend of a colour scale: a gradient bar between its ends (see labelEnds). */
function scaleLegend(oneSided, what) {
  const scale = oneSided ? SCALES.oneSided : SCALES.twoSided;
  const legend = element("div", "scale");
  const bar = element("span", "bar");
  const low = scale[0][0];
  const stops = scale.map(([t, rgb]) => `rgb(${rgb.join(" ")}) ${(100 * (t - low)) / (1 - low)}%`);
  bar.style.background = `linear-gradient(to right, ${stops.join(", ")})`;
  legend.append(element("span", "what", what), element("span", "low"), bar);
  legend.append(element("span", "high"));
  return legend;
}

/** Label a legend's ends: −limit and +limit, or 0 and +limit when one-sided. */
function labelEnds(legend, limit, oneSided) {
  setText(legend.querySelector(".low"), oneSided ? "0" : `−${numberText(limit)}`);
  setText(legend.querySelector(".high"), `+${numberText(limit)}`);
}

/** A row for one layer: its title, note and legends, and per channel a map (and its kernels). */
function layerRow(name, shape, note, channels, kernels) {
  const row = element("div", `layer-maps ${name}`);
  const title = element("div", "title");
  title.append(element("b", "", name), element("span", "shape", shapeText(shape)));
  const scales = element("div", "scales");
  if (kernels === undefined) {
    scales.append(scaleLegend(AFTER_RELU.has(name), ""));
  } else {
    scales.append(scaleLegend(false, "maps"), scaleLegend(false, "kernels"));
  }
  title.append(element("span", "note", note), scales);
  const units = element("div", "channels");
  channels.forEach((_, channel) => {
    const unit = element("div", "unit");
    if (kernels !== undefined) {
      const kernel = element("canvas", "kernel");
      kernel.setAttribute("aria-hidden", "true");
      unit.append(kernel);
    }
    const box = element("div", "map-box");
    const map = element("canvas", "map");
    map.dataset.layer = name;
    map.dataset.channel = String(channel);
    if (name !== "fc1") {
      map.tabIndex = 0;
      map.setAttribute("role", "button");
    } else {
      map.setAttribute("role", "img");
    }
    box.append(map);
    unit.append(box);
    units.append(unit);
  });
  row.append(title, units);
  return row;
}

/** Each kernel canvas's kernel and scale end as last painted: the kernels change with the epoch,
 * not with the image, so the frames of a stroke paint none of them. */
const paintedKernels = new WeakMap();

/** A kernel [C][3][3] as rows to paint: its C 3×3 slices stacked, one empty row between. */
function stackedKernel(kernel) {
  return kernel.flatMap((slice, i) => (i === 0 ? slice : [null, ...slice]));
}

/**
 * One row per layer (`notes` gives their order and notes), one canvas per channel, drawn on the
 * layer's colour scale reaching its ends at `limits[name]`; conv1 and conv2 also show their
 * kernels (`weights`) beside their maps, on the two-sided scale ending at `limits.kernels[name]`.
 * `maps` is {conv1, pool1, conv2, pool2, fc1}; fc1 is drawn as one strip.
 */
export function drawFeatureMaps(container, maps, weights, limits, notes) {
  for (const [name, note] of Object.entries(notes)) {
    const channels = name === "fc1" ? [[maps.fc1]] : maps[name];
    const kernels = name.startsWith("conv") ? weights[name].weight : undefined;
    const shape =
      name === "fc1"
        ? [maps.fc1.length]
        : [channels.length, channels[0].length, channels[0][0].length];
    let row = container.querySelector(`.layer-maps.${name}`);
    if (row === null) {
      row = layerRow(name, shape, note, channels, kernels);
      container.append(row);
    }
    const oneSided = AFTER_RELU.has(name);
    const scale = oneSided ? SCALES.oneSided : SCALES.twoSided;
    const [mapLegend, kernelLegend] = row.querySelectorAll(".scale");
    labelEnds(mapLegend, limits[name], oneSided);
    if (kernels !== undefined) {
      labelEnds(kernelLegend, limits.kernels[name], false);
    }
    row.querySelectorAll("canvas.map").forEach((canvas, i) => {
      paintMap(canvas, channels[i], limits[name], scale);
      const values = channels[i].flat();
      const range = `${numberText(Math.min(...values))} to ${numberText(Math.max(...values))}`;
      canvas.setAttribute(
        "aria-label",
        name === "fc1"
          ? `fc1: 128 units after ReLU, ${values.filter((v) => v > 0).length} active, ${range}`
          : `${name} map ${i + 1} of ${channels.length}, ${shapeText(shape.slice(1))}, values ` +
              `${range}; Enter explains the selected pixel, arrow keys move it`,
      );
    });
    row.querySelectorAll("canvas.kernel").forEach((canvas, i) => {
      const shown = paintedKernels.get(canvas);
      if (shown?.kernel !== kernels[i] || shown.limit !== limits.kernels[name]) {
        paintMap(canvas, stackedKernel(kernels[i]), limits.kernels[name], SCALES.twoSided);
        paintedKernels.set(canvas, { kernel: kernels[i], limit: limits.kernels[name] });
      }
    });
  }
}

/**
 * Ten bars, one per digit, the predicted digit highlighted (none when `predicted` is null); each
 * row is a button (`onPick(digit)`), which the page uses to explain that digit's score.
 */
export function drawBars(container, probabilities, predicted, unsure, onPick) {
  if (container.children.length !== probabilities.length) {
    container.replaceChildren(
      ...probabilities.map((_, digit) => {
        const row = element("button", "bar-row");
        row.type = "button";
        const track = element("span", "track");
        track.append(element("span", "bar"));
        row.append(element("span", "digit", String(digit)), track, element("span", "percent"));
        row.addEventListener("click", () => onPick(digit));
        return row;
      }),
    );
  }
  probabilities.forEach((probability, digit) => {
    const row = container.children[digit];
    row.classList.toggle("predicted", digit === predicted);
    row.classList.toggle("unsure", digit === predicted && unsure);
    const percent = `${(100 * probability).toFixed(1)}%`;
    row.querySelector(".bar").style.width = `${(100 * probability).toFixed(2)}%`;
    setText(row.querySelector(".percent"), percent);
    row.setAttribute("aria-label", `digit ${digit}: ${percent}; explain its score`);
  });
}

/**
 * Where the accuracy axis starts: the lowest accuracy after epoch 0, rounded down to 10%, so
 * that the climb from 90% to 98% fills a good part of the curve; the untrained network's 10%
 * (epoch 0) then lies below the axis and is marked there. 0 when there is no epoch after 0.
 */
export function accuracyAxisStart(epochs) {
  const trained = epochs.filter((entry) => entry.epoch > 0);
  const lowest = Math.min(...trained.flatMap((e) => [e.train_accuracy, e.test_accuracy]));
  return trained.length === 0 ? 0 : Math.max(0, 10 * Math.floor(lowest / 10));
}

/** Each curve canvas's lines as last drawn, with what they were drawn for: see drawCurve. */
const curveLines = new WeakMap();

/**
 * Training loss (left axis) and train/test accuracy in percent (right axis, from
 * accuracyAxisStart to 100%) over the epochs, with axis titles and the current epoch marked by
 * a vertical line and dots (a triangle on the axis for a value below it). The lines are drawn
 * once per size and font, on a canvas of their own, and copied: a slider step draws the marks.
 */
export function drawCurve(canvas, epochs, current) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
    canvas.width = Math.round(width * ratio); // a new size clears the canvas: only when it changes
    canvas.height = Math.round(height * ratio);
  }
  const style = getComputedStyle(canvas);
  const size = parseFloat(style.fontSize);
  const font = `${size}px ${style.fontFamily}`;
  const plot = curvePlot(epochs, width, height, size);

  let lines = curveLines.get(canvas);
  const drawnFor = `${canvas.width} ${canvas.height} ${ratio} ${font}`;
  if (lines?.drawnFor !== drawnFor || lines.epochs !== epochs) {
    lines = { drawnFor, epochs, canvas: document.createElement("canvas") };
    lines.canvas.width = canvas.width;
    lines.canvas.height = canvas.height;
    const c = lines.canvas.getContext("2d");
    c.setTransform(ratio, 0, 0, ratio, 0, 0);
    c.font = font;
    drawCurveLines(c, plot, epochs, width, height, size);
    curveLines.set(canvas, lines);
  }
  const c = canvas.getContext("2d");
  c.setTransform(1, 0, 0, 1, 0, 0);
  c.clearRect(0, 0, canvas.width, canvas.height);
  c.drawImage(lines.canvas, 0, 0);
  c.setTransform(ratio, 0, 0, ratio, 0, 0);
  drawCurveMarks(c, plot, epochs[current]);
  canvas.dataset.accuracyAxis = `${plot.low} ${100}`;
}

/** Where the curves go on a canvas of `width`×`height` CSS pixels, its text `size` px high. */
function curvePlot(epochs, width, height, size) {
  const box = {
    left: 2.9 * size,
    right: width - 4.2 * size,
    top: 0.6 * size,
    bottom: height - 2.6 * size,
  };
  const last = epochs.at(-1).epoch;
  const x = (epoch) => box.left + ((box.right - box.left) * epoch) / Math.max(1, last);
  const maxLoss = Math.max(...epochs.map((entry) => entry.loss));
  const yLoss = (loss) => box.bottom - ((box.bottom - box.top) * loss) / (1.05 * maxLoss);
  const low = accuracyAxisStart(epochs);
  const yAccuracy = (percent) =>
    box.bottom - ((box.bottom - box.top) * (percent - low)) / (100 - low);
  const curves = [
    ["loss", LINES.loss, yLoss],
    ["train_accuracy", LINES.train, yAccuracy],
    ["test_accuracy", LINES.test, yAccuracy],
  ];
  return { box, last, x, maxLoss, yLoss, low, yAccuracy, curves };
}

/** The axes, their ticks, labels and titles, and the three curves, on context `c`. */
function drawCurveLines(c, plot, epochs, width, height, size) {
  const { box, last, x, maxLoss, yLoss, low, yAccuracy, curves } = plot;
  c.strokeStyle = "#767676";
  c.lineWidth = 1;
  c.strokeRect(box.left, box.top, box.right - box.left, box.bottom - box.top);
  c.fillStyle = "#333";
  c.textAlign = "center";
  c.textBaseline = "top";
  // Label every `step` epochs, at least two digits' room apart.
  const room = 2.2 * size;
  const steps = [1, 2, 5, 10, 20, 50];
  const step = steps.find((n) => (n * (box.right - box.left)) / last >= room) ?? 100;
  for (let epoch = 0; epoch <= last; epoch += step) {
    c.fillText(String(epoch), x(epoch), box.bottom + 0.3 * size);
  }
  c.fillText("epoch", (box.left + box.right) / 2, box.bottom + 1.35 * size);
  c.textBaseline = "middle";
  c.textAlign = "right";
  c.fillStyle = LINES.loss.colour;
  for (const loss of [0, maxLoss / 2, maxLoss]) {
    c.fillText(loss.toFixed(1), box.left - 0.3 * size, yLoss(loss));
  }
  c.textAlign = "left";
  c.fillStyle = "#333";
  for (const percent of [low, (low + 100) / 2, 100]) {
    c.fillText(`${percent}%`, box.right + 0.3 * size, yAccuracy(percent));
  }
  const middle = (box.top + box.bottom) / 2;
  verticalText(c, "loss", 0.6 * size, middle, LINES.loss.colour);
  if (c.measureText("accuracy").width <= height) {
    verticalText(c, "accuracy", width - 0.6 * size, middle, "#333"); // on a tall enough curve
  }

  // The three curves, cut at the box (an accuracy below the axis runs out of its bottom).
  c.save();
  c.beginPath();
  c.rect(box.left, box.top, box.right - box.left, box.bottom - box.top);
  c.clip();
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
  c.restore();
}

/** The epoch `now` on context `c`: a vertical line and a dot on each curve. */
function drawCurveMarks(c, plot, now) {
  const { box, x, curves } = plot;
  c.strokeStyle = "#222";
  c.lineWidth = 1.5;
  c.beginPath();
  c.moveTo(x(now.epoch), box.top);
  c.lineTo(x(now.epoch), box.bottom);
  c.stroke();
  for (const [key, { colour }, y] of curves) {
    c.fillStyle = colour;
    c.beginPath();
    const at = y(now[key]);
    if (at > box.bottom) {
      // Below the axis: a triangle on it, pointing down.
      c.moveTo(x(now.epoch) - 6, box.bottom - 8);
      c.lineTo(x(now.epoch) + 6, box.bottom - 8);
      c.lineTo(x(now.epoch), box.bottom);
    } else {
      c.arc(x(now.epoch), at, 5, 0, 2 * Math.PI);
    }
    c.fill();
  }
}

/** Text turned a quarter left, centred on (x, y): an axis title. */
function verticalText(c, text, x, y, colour) {
  c.save();
  c.translate(x, y);
  c.rotate(-Math.PI / 2);
  c.textAlign = "center";
  c.fillStyle = colour;
  c.fillText(text, 0, 0);
  c.restore();
}
