/**
 * mnist.mjs: turn a drawing into a 28x28 digit made the way MNIST's digits were made.
 *
 * MNIST's writers drew on paper; each digit was then (1) scaled, keeping its proportions, so that
 * its bounding box fits a 20x20 box, and (2) placed in a 28x28 image so that its centre of mass
 * (the ink-weighted mean position) is at the centre. A network trained on MNIST expects exactly
 * that, so the page does the same to what is drawn before running the network on it.
 *
 * An image here is `{ width, height, ink }`: `ink` holds width*height values, row by row, from 0
 * (no ink) to 255 (full ink). The result is 28 rows of 28 pixels 0..255, like a JSON sample.
 */

export const SIZE = 28; // the side of an MNIST image
export const BOX = 20; // the side of the box a digit is scaled to fit

/** The smallest rectangle holding every inked pixel, or null when there is no ink. */
export function boundingBox({ width, height, ink }) {
  let left = width;
  let right = -1;
  let top = height;
  let bottom = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (ink[y * width + x] > 0) {
        left = Math.min(left, x);
        right = Math.max(right, x);
        top = Math.min(top, y);
        bottom = Math.max(bottom, y);
      }
    }
  }
  return right < 0 ? null : { left, top, width: right - left + 1, height: bottom - top + 1 };
}

/**
 * The part of `image` inside `box`, scaled so that its longer side is `BOX` pixels: each new
 * pixel is the mean of the pixels it covers (at least one), which smooths edges into grey.
 */
export function fitInBox(image, box) {
  const scale = BOX / Math.max(box.width, box.height);
  const width = Math.max(1, Math.round(box.width * scale));
  const height = Math.max(1, Math.round(box.height * scale));
  const ink = new Float64Array(width * height);
  // The source pixels covered by new pixel i along one side: [start, end).
  const span = (i, length) => {
    const start = Math.floor(i / scale);
    return [start, Math.min(length, Math.max(start + 1, Math.floor((i + 1) / scale)))];
  };
  for (let y = 0; y < height; y++) {
    const [y0, y1] = span(y, box.height);
    for (let x = 0; x < width; x++) {
      const [x0, x1] = span(x, box.width);
      let sum = 0;
      for (let sy = y0; sy < y1; sy++) {
        for (let sx = x0; sx < x1; sx++) {
          sum += image.ink[(box.top + sy) * image.width + box.left + sx];
        }
      }
      ink[y * width + x] = sum / ((y1 - y0) * (x1 - x0));
    }
  }
  return { width, height, ink };
}

/** The ink-weighted mean position {x, y} of an image; pixel (x, y) is at position x, y. */
export function centreOfMass({ width, height, ink }) {
  let total = 0;
  let sumX = 0;
  let sumY = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const value = ink[y * width + x];
      total += value;
      sumX += value * x;
      sumY += value * y;
    }
  }
  return { x: sumX / total, y: sumY / total };
}

/** A drawing -> 28 rows of 28 integer pixels 0..255, preprocessed like MNIST; blank stays blank. */
export function mnistDigit(image) {
  const digit = Array.from({ length: SIZE }, () => new Array(SIZE).fill(0));
  const box = boundingBox(image);
  if (box === null) {
    return digit;
  }
  const fitted = fitInBox(image, box);
  const centre = centreOfMass(fitted);
  // The centre of mass goes to pixel (14, 14) of 0..27, where MNIST's digits have it.
  const dx = Math.round(SIZE / 2 - centre.x);
  const dy = Math.round(SIZE / 2 - centre.y);
  for (let y = 0; y < fitted.height; y++) {
    for (let x = 0; x < fitted.width; x++) {
      const row = digit[y + dy];
      if (row !== undefined && x + dx >= 0 && x + dx < SIZE) {
        row[x + dx] = Math.round(fitted.ink[y * fitted.width + x]);
      }
    }
  }
  return digit;
}
