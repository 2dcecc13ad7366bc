/**
 * pad.mjs: a canvas to draw a digit on with a mouse, a pen or a finger (pointer events), white
 * ink on black like MNIST. It also shows a test image, enlarged, until drawing starts.
 */

import { paintDigit } from "./views.mjs";

const LINE_WIDTH = 22; // in canvas pixels, on a 280x280 canvas: about 2 pixels of 28x28

export class DrawingPad {
  /** `onDraw()` is called while a stroke is drawn (at most once per frame) and when it ends. */
  constructor(canvas, onDraw) {
    this.canvas = canvas;
    this.context = canvas.getContext("2d", { willReadFrequently: true });
    this.onDraw = onDraw;
    this.showingImage = false;
    this.last = null; // the previous point of the stroke being drawn
    this.frame = 0; // the animation frame requested for the next onDraw, 0 when none
    this.task = 0; // the task (a timeout) that runs the next onDraw, 0 when none
    this.inked = null; // what was drawn on since the pad was cleared: {left, top, right, bottom}
    canvas.addEventListener("pointerdown", (event) => this.start(event));
    canvas.addEventListener("pointermove", (event) => this.move(event));
    canvas.addEventListener("pointerup", () => this.end());
    canvas.addEventListener("pointercancel", () => this.end());
    this.clear();
  }

  /** Whether a stroke is being drawn: the pointer went down on the pad and is not up yet. */
  get drawing() {
    return this.last !== null;
  }

  /** Black, ready for a new drawing. */
  clear() {
    this.context.fillStyle = "black";
    this.context.fillRect(0, 0, this.canvas.width, this.canvas.height);
    this.showingImage = false;
    this.inked = null;
  }

  /** Show 28×28 pixels 0..255 enlarged; the next stroke starts a new drawing. */
  showImage(pixels) {
    const small = document.createElement("canvas");
    small.width = pixels[0].length;
    small.height = pixels.length;
    paintDigit(small, pixels);
    this.context.imageSmoothingEnabled = false;
    this.context.drawImage(small, 0, 0, this.canvas.width, this.canvas.height);
    this.showingImage = true;
    this.inked = { left: 0, top: 0, right: this.canvas.width, bottom: this.canvas.height };
  }

  /**
   * The drawing as {width, height, ink}: one value 0..255 per pixel (the red channel), of the
   * part drawn on only, as the rest holds no ink (mnistDigit finds the digit wherever it is). A
   * stroke's every frame reads it: the whole pad was 313 KB to copy, on a slow phone too.
   */
  ink() {
    const box = this.inked ?? { left: 0, top: 0, right: 0, bottom: 0 };
    const left = Math.max(0, Math.floor(box.left));
    const top = Math.max(0, Math.floor(box.top));
    const width = Math.max(0, Math.min(this.canvas.width, Math.ceil(box.right)) - left);
    const height = Math.max(0, Math.min(this.canvas.height, Math.ceil(box.bottom)) - top);
    const ink = new Uint8ClampedArray(width * height);
    if (ink.length > 0) {
      const rgba = this.context.getImageData(left, top, width, height).data;
      for (let i = 0; i < ink.length; i++) {
        ink[i] = rgba[4 * i];
      }
    }
    return { width, height, ink };
  }

  /** Take the ink of a pen tip at `point` into `inked`: a square of the line's width, and a
   * pixel more on each side where the edge is smoothed. */
  markInked({ x, y }) {
    const r = LINE_WIDTH / 2 + 1;
    const box = this.inked ?? { left: x, top: y, right: x, bottom: y };
    this.inked = {
      left: Math.min(box.left, x - r),
      top: Math.min(box.top, y - r),
      right: Math.max(box.right, x + r),
      bottom: Math.max(box.bottom, y + r),
    };
  }

  /** The pointer's position in canvas pixels (the canvas may be shown larger or smaller). */
  point(event) {
    const rect = this.canvas.getBoundingClientRect();
    return {
      x: ((event.clientX - rect.left) * this.canvas.width) / rect.width,
      y: ((event.clientY - rect.top) * this.canvas.height) / rect.height,
    };
  }

  start(event) {
    event.preventDefault();
    this.canvas.setPointerCapture(event.pointerId);
    if (this.showingImage) {
      this.clear();
    }
    this.last = this.point(event);
    this.dot(this.last); // a tap without movement leaves ink too
  }

  move(event) {
    if (this.last === null) {
      return;
    }
    const next = this.point(event);
    this.line(this.last, next);
    this.last = next;
    // One onDraw per frame at most, in a task of its own right after the frame that shows the
    // new line: the network's update then waits for no drawing, nor the drawing for it (on a
    // slow phone, together they made one long task that held up the pen).
    if (this.frame === 0 && this.task === 0) {
      this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        this.task = setTimeout(() => {
          this.task = 0;
          this.onDraw();
        }, 0);
      });
    }
  }

  end() {
    if (this.last === null) {
      return;
    }
    this.last = null;
    cancelAnimationFrame(this.frame);
    clearTimeout(this.task);
    this.frame = 0;
    this.task = 0;
    this.onDraw();
  }

  dot({ x, y }) {
    this.markInked({ x, y });
    this.context.fillStyle = "white";
    this.context.beginPath();
    this.context.arc(x, y, LINE_WIDTH / 2, 0, 2 * Math.PI);
    this.context.fill();
  }

  line(from, to) {
    this.markInked(from); // a straight line with round ends lies in its two ends' squares
    this.markInked(to);
    const c = this.context;
    c.strokeStyle = "white";
    c.lineWidth = LINE_WIDTH;
    c.lineCap = "round";
    c.lineJoin = "round";
    c.beginPath();
    c.moveTo(from.x, from.y);
    c.lineTo(to.x, to.y);
    c.stroke();
  }
}
