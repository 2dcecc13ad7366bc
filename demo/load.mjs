/**
 * load.mjs: fetch `pretrained_cnn_data.json`, reporting progress, and read and check its bytes
 * with js/validate.mjs, the same check as `node js/check.mjs` (the same answer for every file).
 *
 * Each failure is a LoadError with one sentence a lecturer can act on: the file is missing, too
 * large, not strict JSON, or fails the check (naming the key and the epoch, e.g.
 * `training_epochs[3].weights.fc1.weight` (epoch 3) has 64 rows where the network has 128).
 */

import { DataProblem, MAX_BYTES, parse, tooLarge, validate } from "../js/validate.mjs";

/** Where the page looks for the data, relative to demo/index.html; `?data=PATH` overrides it. */
export const DEFAULT_DATA = "../data/pretrained_cnn_data.json";

export class LoadError extends Error {}

/** The data's URL: `?data=...` in the page's address, else DEFAULT_DATA, relative to the page. */
export function dataUrl(pageUrl) {
  const asked = new URL(pageUrl).searchParams.get("data");
  return new URL(asked ?? DEFAULT_DATA, pageUrl);
}

/** The body of `response` as bytes; `onProgress(received, total)` after each chunk (bytes).
 * Throws a DataProblem, and stops reading, when it is larger than validate.mjs's MAX_BYTES. */
async function readWithProgress(response, onProgress) {
  // Gzipped, Content-Length counts the compressed bytes while the reader yields the JSON's.
  const gzipped = response.headers.has("Content-Encoding");
  const total = gzipped ? null : Number(response.headers.get("Content-Length")) || null;
  if (total > MAX_BYTES) {
    throw new DataProblem(tooLarge(total));
  }
  const reader = response.body.getReader();
  const chunks = [];
  let received = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) {
      break;
    }
    chunks.push(value);
    received += value.length;
    if (received > MAX_BYTES) {
      await reader.cancel();
      throw new DataProblem(tooLarge(received));
    }
    onProgress(received, total);
  }
  const bytes = new Uint8Array(received);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return bytes;
}

/**
 * The parsed JSON at `url` (called `name` in messages), checked by validate.mjs; `onProgress`
 * as in readWithProgress. Throws a LoadError, or the browser's error when the connection breaks
 * during the download.
 */
export async function loadData(url, name, onProgress) {
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
    data = parse(await readWithProgress(response, onProgress));
    validate(data);
  } catch (error) {
    if (error instanceof DataProblem) {
      throw new LoadError(`${name}: ${error.message}; run \`make data\` to write it again.`);
    }
    throw error;
  }
  return data;
}
