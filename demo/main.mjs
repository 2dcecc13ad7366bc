/**
 * main.mjs: the CNN Architecture demo. It loads `pretrained_cnn_data.json`, runs the network of
 * the chosen epoch on the chosen image with js/cnn.mjs, and draws every step.
 *
 * What the page last drew is in `window.demoState` (the tests read it): the epoch, the image,
 * the feature maps, the probabilities and the prediction.
 */

import { argmax, forward } from "../js/cnn.mjs";
import { LoadError, dataUrl, loadData } from "./load.mjs";
import { mnistDigit } from "./mnist.mjs";
import { DrawingPad } from "./pad.mjs";
import {
  LINES,
  drawArchitecture,
  drawBars,
  drawCurve,
  drawFeatureMaps,
  paintDigit,
} from "./views.mjs";

/** The feature maps shown, each with a note on what it is. */
const MAP_NOTES = {
  conv1: "4 filters 3×3, before ReLU",
  pool1: "ReLU, max of each 2×2",
  conv2: "8 filters 4×3×3, before ReLU",
  pool2: "ReLU, max of each 2×2",
  fc1: "128 units after ReLU",
};

const $ = (id) => document.getElementById(id);

/** What is on screen: the data, the epoch, and the image (a test sample or a drawing). */
const state = { data: null, epoch: 0, sample: null, image: null };

/** Run the network of the current epoch on the current image and draw everything. */
function update() {
  const entry = state.data.training_epochs[state.epoch];
  const result = forward(entry.weights, state.image);
  const prediction = argmax(result.probabilities);

  paintDigit($("seen"), state.image);
  drawFeatureMaps($("maps"), result, MAP_NOTES);
  drawBars($("bars"), result.probabilities, prediction);
  $("prediction").textContent = String(prediction);
  for (const button of $("digits").children) {
    button.setAttribute("aria-pressed", String(Number(button.textContent) === state.sample?.label));
  }
  $("input-caption").textContent =
    state.sample === null
      ? "your drawing"
      : `test image #${state.sample.index}, labelled ${state.sample.label}`;

  const epochs = state.data.training_epochs;
  $("epoch").value = String(state.epoch);
  $("epoch-value").textContent = `${entry.epoch} of ${epochs.at(-1).epoch}`;
  $("train").disabled = state.epoch === epochs.length - 1;
  showMetrics(entry);
  drawCurve($("curve"), epochs, state.epoch);

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
  $("metrics").replaceChildren(
    ...items.map(([key, label, value]) => {
      const line = document.createElement("span");
      line.style.color = LINES[key].colour;
      const swatch = document.createElement("i");
      swatch.className = "swatch";
      swatch.style.borderTop = `3px ${LINES[key].dashed ? "dashed" : "solid"}`;
      const number = document.createElement("b");
      number.textContent = value;
      line.append(swatch, `${label} `, number);
      return line;
    }),
  );
}

/** Show test sample `position` (0..99) of the JSON. */
function showSample(position) {
  const sample = state.data.samples[position];
  state.sample = { position, label: sample.label, index: sample.index };
  state.image = sample.image;
  pad.showImage(sample.image);
  update();
}

/** Digit button d: the next of digit d's samples, or its first when another digit is shown. */
function pickDigit(digit) {
  const positions = state.data.samples.flatMap((sample, i) => (sample.label === digit ? [i] : []));
  const now = state.sample === null ? -1 : positions.indexOf(state.sample.position);
  showSample(positions[(now + 1) % positions.length]);
}

/** Show the network as it was after epoch `index` (kept within 0..last). */
function setEpoch(index) {
  state.epoch = Math.max(0, Math.min(state.data.training_epochs.length - 1, index));
  update();
}

/** Run the network on what is drawn on the pad, preprocessed like MNIST. */
function fromDrawing() {
  state.sample = null;
  state.image = mnistDigit(pad.ink());
  update();
}

/** Show a LoadError's message instead of the demo, its `quoted` parts as code. */
function showError(message) {
  const error = $("error");
  error.replaceChildren(
    ...message.split("`").map((part, i) => {
      if (i % 2 === 0) {
        return part;
      }
      const code = document.createElement("code");
      code.textContent = part;
      return code;
    }),
  );
  error.hidden = false;
  $("source").textContent = "The network could not be loaded.";
  $("demo").hidden = true;
  window.demoState = { status: "error", error: message };
}

const pad = new DrawingPad($("pad"), fromDrawing);

async function start() {
  const url = dataUrl(window.location.href);
  const name = url.pathname.replace(/^\//, "");
  try {
    state.data = await loadData(url, name);
  } catch (error) {
    showError(error instanceof LoadError ? error.message : `${name}: ${error}`);
    return;
  }
  const epochs = state.data.training_epochs;
  const last = epochs.length - 1;
  $("source").textContent =
    `${name}: ${epochs.length} snapshots, epochs 0 to ${epochs[last].epoch}`;
  drawArchitecture($("architecture"), state.data.architecture);
  for (let digit = 0; digit <= 9; digit++) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = String(digit);
    button.addEventListener("click", () => pickDigit(digit));
    $("digits").append(button);
  }
  $("epoch").max = String(last);
  $("epoch").addEventListener("input", () => setEpoch(Number($("epoch").value)));
  $("train").addEventListener("click", () => setEpoch(state.epoch + 1));
  $("reset").addEventListener("click", () => setEpoch(0));
  $("clear").addEventListener("click", () => {
    pad.clear();
    fromDrawing();
  });
  window.addEventListener("resize", () => drawCurve($("curve"), epochs, state.epoch));
  $("demo").hidden = false;
  state.epoch = last;
  pickDigit(3); // the digit whose feature maps the notebooks show
}

start();
