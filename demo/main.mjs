/**
 * main.mjs: the CNN Architecture demo. It loads `pretrained_cnn_data.json`, runs the network of
 * the chosen epoch on the chosen image with js/cnn.mjs, and draws every step; a click on a map
 * pixel or a bar shows the arithmetic behind it (explain.mjs).
 *
 * What the page last drew is in `window.demoState` (the tests read it): the epoch, the image,
 * the feature maps, the probabilities, the prediction, and the explanation or mistakes shown.
 */

import { argmax, forward } from "../js/cnn.mjs";
import { explain, explanationTitle, showExplanation } from "./explain.mjs";
import { LoadError, dataUrl, loadData } from "./load.mjs";
import { mnistDigit } from "./mnist.mjs";
import { DrawingPad } from "./pad.mjs";
import {
  LINES,
  drawArchitecture,
  drawBars,
  drawCurve,
  drawFeatureMaps,
  element,
  largestMagnitude,
  paintDigit,
  setText,
} from "./views.mjs";

/** The feature maps shown, each with a note on what it is. */
const MAP_NOTES = {
  conv1: "4 kernels 3×3 (left of each map), before ReLU",
  pool1: "ReLU, then the max of each 2×2",
  conv2: "8 kernels 4×3×3 (left, one slice per pool1 map), before ReLU",
  pool2: "ReLU, then the max of each 2×2",
  fc1: "128 units after ReLU",
};
const CONVOLUTIONS = ["conv1", "conv2"];

/** Below this probability the prediction is marked unsure. */
const SURE = 0.5;

const $ = (id) => document.getElementById(id);

/**
 * What is on screen: the data, the epoch, the image (a test sample or a drawing), the colour
 * scale (fixed across epochs or fitted to each picture), and what the dialog explains.
 */
const state = {
  data: null,
  epoch: 0,
  sample: null,
  image: null,
  fixedScale: true,
  kernelLimits: null, // per conv layer, the largest |weight| over every epoch
  target: null, // what the dialog explains (see explain.mjs), or null
  curveEpoch: null, // the epoch the metrics and the curve show
  passes: null, // the current image's forward passes and fixed colour scale: see passesOfImage
};

/** Forward passes per task when a drawing's colour scale is computed in the background. */
const EPOCHS_PER_TASK = 3;

/**
 * What the network makes of the current image, kept until the image changes: `results[epoch]`,
 * its forward pass at each epoch, each computed once (a slider step on a test image, whose scale
 * needs every epoch, runs none), and `limits`, the fixed colour scale: per layer, the largest
 * |value| of the maps over the epoch first shown and epochs 0 to `next - 1` (null until needed).
 */
function passesOfImage() {
  if (state.passes === null || state.passes.image !== state.image) {
    state.passes = { image: state.image, results: [], limits: null, next: 0 };
  }
  return state.passes;
}

/** The network of epoch `epoch` on the image of `passes`, computed once. */
function resultAt(passes, epoch) {
  passes.results[epoch] ??= forward(state.data.training_epochs[epoch].weights, passes.image);
  return passes.results[epoch];
}

/** Per layer, the largest |value| of its maps in `result`. */
const mapLimits = (result) =>
  Object.fromEntries(Object.keys(MAP_NOTES).map((name) => [name, largestMagnitude(result[name])]));

/** Take epochs `passes.next`.. (at most `count`) into `passes.limits`; true once all are in. */
function growLimits(passes, count) {
  const epochs = state.data.training_epochs;
  const end = Math.min(epochs.length, passes.next + count);
  for (; passes.next < end; passes.next++) {
    const limits = mapLimits(resultAt(passes, passes.next));
    for (const name of Object.keys(passes.limits)) {
      passes.limits[name] = Math.max(passes.limits[name], limits[name]);
    }
  }
  return passes.next === epochs.length;
}

/** A drawing's scale, EPOCHS_PER_TASK epochs a task; redrawn once complete, unless the image
 * has changed since (a new scale then started). */
function growLater(passes) {
  if (state.passes !== passes) {
    return;
  }
  if (growLimits(passes, EPOCHS_PER_TASK)) {
    update();
  } else {
    setTimeout(() => growLater(passes), 0);
  }
}

/**
 * Per layer, the largest |value| its maps reach for the current image over every epoch (one
 * forward pass per epoch, once per image), starting from `result`, the epoch shown. A test
 * image's is computed at once. A drawing changes on every frame of a stroke: its maps are drawn
 * on the scale of the epoch shown until the stroke ends (the legends give its ends), then the
 * other epochs are added a few per task in the background, and the maps drawn again: so a slow
 * phone keeps up with the pen, and never pauses long.
 */
function fixedLimits(passes, result) {
  if (passes.limits === null) {
    passes.limits = mapLimits(result);
    if (state.sample !== null) {
      growLimits(passes, Infinity);
    } else if (!pad.drawing) {
      setTimeout(() => growLater(passes), 0);
    }
  }
  return passes.limits;
}

/** Per conv layer, the largest |weight| of its kernels over every epoch. */
const kernelLimitsAllEpochs = (epochs) =>
  Object.fromEntries(
    CONVOLUTIONS.map((name) => [
      name,
      Math.max(...epochs.map((entry) => largestMagnitude(entry.weights[name].weight))),
    ]),
  );

/** Where each layer's colour scale ends: fixed across epochs, or fitted to this picture. */
function colourLimits(passes, result, weights) {
  if (state.fixedScale) {
    return { ...fixedLimits(passes, result), kernels: state.kernelLimits };
  }
  const limits = mapLimits(result);
  limits.kernels = Object.fromEntries(
    CONVOLUTIONS.map((name) => [name, largestMagnitude(weights[name].weight)]),
  );
  return limits;
}

/** The prediction as a class can read it: "draw a digit", unsure below 50%, or its probability. */
function showPrediction(prediction, probability) {
  const unsure = prediction !== null && probability < SURE;
  setText($("prediction"), prediction === null ? "–" : String(prediction));
  $("output-panel").classList.toggle("blank", prediction === null);
  $("output-panel").classList.toggle("unsure", unsure);
  const percent = `${(100 * probability).toFixed(1)}%`;
  setText(
    $("confidence"),
    prediction === null
      ? "draw a digit"
      : unsure
        ? `unsure: probability only ${percent}`
        : `probability ${percent}`,
  );
  return unsure;
}

/**
 * Right or wrong, whenever a test image is shown (a drawing has no label to check against);
 * the lecture's digit, wrong, is named as the confident mistake it is.
 */
function showVerdict(prediction, probability) {
  const sample = state.sample;
  let verdict = "";
  let right = null;
  if (sample !== null && prediction !== null) {
    right = prediction === sample.label;
    verdict = `${right ? "Right" : "Wrong"}: test image ${sample.index} is labelled ${sample.label}.`;
    if (sample.index === state.data.feature_map_image.index) {
      const mistake = probability >= SURE ? "a confident mistake" : "a mistake";
      verdict += ` The lecture's digit, the first ${sample.label} of the test set` +
        (right ? "." : `: ${mistake}.`);
    }
  } else if (prediction !== null) {
    verdict = "A drawing has no label: only you know whether the answer is right.";
  }
  setText($("verdict"), verdict);
  $("verdict").className = right === null ? "" : right ? "right" : "wrong";
  const spoken =
    prediction === null
      ? "Blank pad: draw a digit."
      : `Prediction ${prediction}, ${$("confidence").textContent}. ${verdict}`;
  setText($("announce"), spoken);
  return right;
}

/** Run the network of the current epoch on the current image and draw everything. */
function update() {
  const epochs = state.data.training_epochs;
  const entry = epochs[state.epoch];
  const passes = passesOfImage();
  const result = resultAt(passes, state.epoch);
  const blank = state.image.every((row) => row.every((pixel) => pixel === 0));
  const prediction = blank ? null : argmax(result.probabilities);
  const probability = blank ? 0 : result.probabilities[prediction];

  const limits = colourLimits(passes, result, entry.weights);
  drawFeatureMaps($("maps"), result, entry.weights, limits, MAP_NOTES);
  const unsure = showPrediction(prediction, probability);
  const right = showVerdict(prediction, probability);
  drawBars($("bars"), result.probabilities, prediction, unsure, (digit) =>
    openExplanation({ layer: "fc2", digit }),
  );
  for (const button of $("digits").children) {
    button.setAttribute("aria-pressed", String(Number(button.textContent) === state.sample?.label));
  }
  setText(
    $("input-caption"),
    state.sample === null
      ? "your drawing, as the network sees it"
      : `test image ${state.sample.index}, as the network sees it`,
  );

  $("epoch").value = String(state.epoch);
  setText($("epoch-value"), `${entry.epoch} of ${epochs.at(-1).epoch}`);
  const trainHadFocus = document.activeElement === $("train");
  $("train").disabled = state.epoch === epochs.length - 1;
  if (trainHadFocus && $("train").disabled) {
    $("epoch").focus(); // a disabled button drops the keyboard focus: keep it on the epochs
  }
  if (state.curveEpoch !== state.epoch) {
    showMetrics(entry); // not on every frame of a stroke: only when the epoch changes
    drawCurve($("curve"), epochs, state.epoch);
    state.curveEpoch = state.epoch;
  }

  const explanation =
    state.target === null ? null : explain(state.target, entry.weights, state.image, result);
  if (explanation !== null) {
    $("explain-title").textContent = explanationTitle(explanation, entry.epoch);
    showExplanation($("explain-body"), explanation, state.image, result);
  }

  window.demoState = {
    status: "ready",
    epoch: entry.epoch,
    metrics: {
      loss: entry.loss,
      train_accuracy: entry.train_accuracy,
      test_accuracy: entry.test_accuracy,
    },
    sample: state.sample,
    image: state.image,
    maps: Object.fromEntries(Object.keys(MAP_NOTES).map((name) => [name, result[name]])),
    probabilities: result.probabilities,
    prediction,
    unsure,
    right,
    explanation,
    scaleComplete: passes.next === epochs.length,
    mistakes: window.demoState?.mistakes ?? null,
    drawnAt: performance.now(), // milliseconds since the navigation started
  };
}

/** The epoch's training loss and accuracies, each after a sample of its curve's line. */
function showMetrics(entry) {
  const items = [
    ["loss", "training loss", entry.loss.toFixed(3)],
    ["train", "train accuracy", `${entry.train_accuracy.toFixed(1)}%`],
    ["test", "test accuracy", `${entry.test_accuracy.toFixed(1)}%`],
  ];
  if ($("metrics").children.length === 0) {
    $("metrics").append(...items.map(([key, label]) => metricLine(key, label)));
  }
  items.forEach(([, , value], i) => setText($("metrics").children[i].querySelector("b"), value));
}

/** One line of the metrics: a sample of curve `key`'s line, the label, then (in bold) a number. */
function metricLine(key, label) {
  const line = document.createElement("span");
  line.style.color = LINES[key].colour;
  const swatch = document.createElement("i");
  swatch.className = "swatch";
  swatch.style.borderTop = `3px ${LINES[key].dashed ? "dashed" : "solid"}`;
  line.append(swatch, `${label} `, document.createElement("b"));
  return line;
}

/** Make `image` the network's input (`sample`: the test image it is, or null) and draw it all. */
function setImage(image, sample) {
  state.sample = sample;
  state.image = image;
  paintDigit($("seen"), image); // here, not in update(): a slider step keeps the image
  update();
}

/** Show a test image {image, label, index}: sample `position` of the JSON's samples, or null. */
function showTestImage(image, position) {
  pad.showImage(image.image);
  setImage(image.image, { position, label: image.label, index: image.index });
}

/** Digit button d: the next of digit d's samples, or its first when another digit is shown. */
function pickDigit(digit) {
  const positions = state.data.samples.flatMap((sample, i) => (sample.label === digit ? [i] : []));
  const now = state.sample === null ? -1 : positions.indexOf(state.sample.position);
  const position = positions[(now + 1) % positions.length];
  showTestImage(state.data.samples[position], position);
}

/** Show the network as it was after epoch `index` (kept within 0..last). */
function setEpoch(index) {
  state.epoch = Math.max(0, Math.min(state.data.training_epochs.length - 1, index));
  update();
}

/** Run the network on what is drawn on the pad, preprocessed like MNIST. */
function fromDrawing() {
  setImage(mnistDigit(pad.ink()), null);
}

/** Open the dialog on the arithmetic behind `target` (see explain.mjs). */
function openExplanation(target) {
  state.target = target;
  update();
  if (!$("explain").open) {
    $("explain").showModal();
  }
}

/** The pixel of a map canvas under a click, as an explanation target. */
function pixelTarget(canvas, event) {
  const rect = canvas.getBoundingClientRect();
  const x = Math.floor(((event.clientX - rect.left) / rect.width) * canvas.width);
  const y = Math.floor(((event.clientY - rect.top) / rect.height) * canvas.height);
  return {
    layer: canvas.dataset.layer,
    channel: Number(canvas.dataset.channel),
    y: Math.max(0, Math.min(canvas.height - 1, y)),
    x: Math.max(0, Math.min(canvas.width - 1, x)),
  };
}

/** The keyboard's way in: the focused map's strongest pixel. */
function strongestPixel(canvas) {
  const map = window.demoState.maps[canvas.dataset.layer][Number(canvas.dataset.channel)];
  let best = { y: 0, x: 0 };
  map.forEach((row, y) =>
    row.forEach((value, x) => {
      if (Math.abs(value) > Math.abs(map[best.y][best.x])) {
        best = { y, x };
      }
    }),
  );
  return { layer: canvas.dataset.layer, channel: Number(canvas.dataset.channel), ...best };
}

/** Arrow keys in the dialog move the explained pixel within its map. */
const MOVES = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };

/** Move the explained pixel one step (`key` as an arrow key's); false when there is none. */
function moveTarget(key) {
  const move = MOVES[key];
  const target = state.target;
  if (move === undefined || target === null || target.layer === "fc2") {
    return false;
  }
  const map = window.demoState.maps[target.layer][target.channel];
  const y = Math.max(0, Math.min(map.length - 1, target.y + move[0]));
  const x = Math.max(0, Math.min(map[0].length - 1, target.x + move[1]));
  openExplanation({ ...target, y, x });
  return true;
}

/**
 * The epoch's most confident mistakes on the whole test set, from the JSON: each {index, label,
 * prediction, probability, image}.
 */
function mistakesAt(epoch) {
  const images = new Map(state.data.mistake_samples.map((image) => [image.index, image]));
  const mistakes = state.data.training_epochs[epoch].mistakes;
  return mistakes.map((mistake) => ({ ...mistake, image: images.get(mistake.index) }));
}

/** The dialog's title and first line over `wrong`, the mistakes of `entry`. */
function galleryText(entry, wrong) {
  const accuracy = `test accuracy ${entry.test_accuracy.toFixed(2)}%`;
  return [
    wrong.length === 0
      ? `Epoch ${entry.epoch} gets every test image right`
      : `Epoch ${entry.epoch}: its ${wrong.length} most confident mistakes on the whole test set`,
    `Out of all the test images (${accuracy}), the wrong answers with the highest probability, ` +
      "the most confident first. Press one to look inside it.",
  ];
}

/** The dialog as a gallery of this epoch's mistakes, each a button that shows that image. */
function showMistakes() {
  const entry = state.data.training_epochs[state.epoch];
  const wrong = mistakesAt(state.epoch);
  state.target = null;
  const [title, line] = galleryText(entry, wrong);
  $("explain-title").textContent = title;
  const gallery = element("div", "gallery");
  for (const { index, label, prediction, probability, image } of wrong) {
    const item = element("button", "mistake");
    item.type = "button";
    const canvas = element("canvas", "");
    canvas.width = 28;
    canvas.height = 28;
    paintDigit(canvas, image.image);
    const text = `${label} seen as ${prediction}, probability ${(100 * probability).toFixed(1)}%`;
    item.append(canvas, element("span", "", text), element("span", "index", `test image ${index}`));
    item.addEventListener("click", () => {
      $("explain").close();
      const position = state.data.samples.findIndex((sample) => sample.index === index);
      showTestImage(image, position < 0 ? null : position);
    });
    gallery.append(item);
  }
  $("explain-body").replaceChildren(element("p", "gallery-note", line), gallery);
  window.demoState.mistakes = wrong.map(({ image, ...mistake }) => mistake);
  window.demoState.explanation = null;
  if (!$("explain").open) {
    $("explain").showModal();
  }
}

const pad = new DrawingPad($("pad"), fromDrawing);

/** Wire up the controls, once the data is loaded. */
function connect(epochs) {
  for (let digit = 0; digit <= 9; digit++) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = String(digit);
    button.addEventListener("click", () => pickDigit(digit));
    $("digits").append(button);
  }
  $("epoch").max = String(epochs.length - 1);
  $("epoch").addEventListener("input", () => setEpoch(Number($("epoch").value)));
  $("train").addEventListener("click", () => setEpoch(state.epoch + 1));
  $("reset").addEventListener("click", () => setEpoch(0));
  $("mistakes").addEventListener("click", showMistakes);
  $("clear").addEventListener("click", () => {
    pad.clear();
    fromDrawing();
  });
  $("scale").addEventListener("click", () => {
    state.fixedScale = !state.fixedScale;
    showScaleChoice();
    update();
  });
  $("maps").addEventListener("click", (event) => {
    if (event.target.matches("canvas.map[role=button]")) {
      openExplanation(pixelTarget(event.target, event));
    }
  });
  $("maps").addEventListener("keydown", (event) => {
    if (event.target.matches("canvas.map[role=button]") && ["Enter", " "].includes(event.key)) {
      event.preventDefault();
      openExplanation(strongestPixel(event.target));
    }
  });
  $("skip").addEventListener("click", (event) => {
    event.preventDefault();
    $("epoch").focus();
  });
  $("explain").addEventListener("keydown", (event) => {
    if (moveTarget(event.key)) {
      event.preventDefault();
    }
  });
  $("explain").addEventListener("click", (event) => {
    if (event.target.matches(".picker canvas")) {
      openExplanation(pixelTarget(event.target, event));
    } else if (event.target.matches("button.move")) {
      const key = event.target.dataset.key;
      moveTarget(key);
      document.querySelector(`#explain-body button.move[data-key=${key}]`).focus();
    }
  });
  $("explain-close").addEventListener("click", () => $("explain").close());
  $("explain").addEventListener("close", () => {
    state.target = null;
    window.demoState.explanation = null;
    window.demoState.mistakes = null;
  });
  window.addEventListener("resize", () => drawCurve($("curve"), epochs, state.epoch));
}

/** Projector mode on or off: larger text, one screen; kept in the address (`?projector`) so
 * that a reload or a bookmark keeps it. */
function setProjector(on) {
  document.documentElement.classList.toggle("projector", on);
  $("projector").setAttribute("aria-pressed", String(on));
  const url = new URL(window.location.href);
  if (on) {
    url.searchParams.set("projector", "");
  } else {
    url.searchParams.delete("projector");
  }
  window.history.replaceState(null, "", url);
  if (state.data !== null) {
    drawCurve($("curve"), state.data.training_epochs, state.epoch);
  }
}

function showScaleChoice() {
  $("scale").setAttribute("aria-pressed", String(state.fixedScale));
  $("scale").textContent = state.fixedScale
    ? "colour scale: fixed across epochs"
    : "colour scale: fitted to this picture";
}

/** "Loading the network… 3.1 of 8.5 MB". */
function showProgress(received, total) {
  const mb = (bytes) => (bytes / 1e6).toFixed(1);
  const of = total === null ? "" : ` of ${mb(total)}`;
  $("source").textContent = `Loading the network… ${mb(received)}${of} MB`;
}

async function start() {
  setProjector(new URL(window.location.href).searchParams.has("projector"));
  $("projector").addEventListener("click", () =>
    setProjector($("projector").getAttribute("aria-pressed") !== "true"),
  );
  const url = dataUrl(window.location.href);
  const name = url.pathname.replace(/^\//, "");
  try {
    state.data = await loadData(url, name, showProgress);
  } catch (error) {
    window.showDemoError(error instanceof LoadError ? error.message : `${name}: ${error}`);
    return;
  }
  const epochs = state.data.training_epochs;
  const last = epochs.at(-1).epoch;
  $("source").textContent = `${name}: ${epochs.length} snapshots, epochs 0 to ${last}`;
  drawArchitecture($("architecture"), state.data.architecture);
  state.kernelLimits = kernelLimitsAllEpochs(epochs);
  connect(epochs);
  showScaleChoice();
  $("demo").hidden = false;
  state.epoch = epochs.length - 1;
  pickDigit(3); // the digit whose feature maps the notebooks show
}

start();
