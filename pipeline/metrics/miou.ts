/**
 * Dataset-level mIoU (docs/method.md §10.2, the VSPW evaluator of DVIS++/UniVS from Tube-Link `iou_cal.py`):
 * one confusion matrix accumulated over all annotated frames of all videos. Rows = evaluated GT classes; pixels
 * whose GT is not an evaluated class (ignore values such as VSPW 0/255, CamVid 11) are skipped; a prediction that
 * is not an evaluated class (e.g. a cluster labelled 0 or 255) lands in an extra "void" column, so it counts as a
 * miss (FN) of the GT class and as nobody's FP. IoU_c = TP / (TP + FP + FN); mIoU = mean over classes with at
 * least one GT pixel.
 * @module
 */

/** Per-class and mean IoU (fractions in [0, 1]; null for classes without GT pixels). */
export interface IouResult {
  /** Mean IoU over classes with GT pixels (null when there are none). */
  mIoU: number | null;
  /** IoU per class, in `classIds` order (null: no GT pixels). */
  perClass: (number | null)[];
  /** The evaluated class ids. */
  classIds: number[];
}

/** A confusion matrix over `classIds` plus a void prediction column. */
export class ConfusionMatrix {
  /** The evaluated class ids (matrix rows, in order). */
  readonly classIds: readonly number[];
  /** [C × (C + 1)] counts, row = GT class index, column = predicted class index (C = void). */
  readonly counts: Float64Array;
  readonly #index = new Map<number, number>();
  readonly #lut = new Int32Array(256).fill(-1);

  /** An empty matrix over these class ids (GT values outside them are ignored). */
  constructor(classIds: readonly number[]) {
    this.classIds = [...classIds];
    this.classIds.forEach((id, i) => {
      if (this.#index.has(id)) throw new Error(`ConfusionMatrix: duplicate class id ${id}`);
      this.#index.set(id, i);
      if (id >= 0 && id < 256) this.#lut[id] = i;
    });
    const C = this.classIds.length;
    this.counts = new Float64Array(C * (C + 1));
  }

  #idx(v: number): number {
    return v >= 0 && v < 256 ? this.#lut[v] : (this.#index.get(v) ?? -1);
  }

  /** Accumulate one frame: `gt` and `pred` are label values of the same pixels. */
  add(gt: ArrayLike<number>, pred: ArrayLike<number>): void {
    if (gt.length !== pred.length) {
      throw new Error(`ConfusionMatrix.add: ${gt.length} GT vs ${pred.length} predicted pixels`);
    }
    const C = this.classIds.length, W = C + 1;
    for (let i = 0; i < gt.length; i++) {
      const g = this.#idx(gt[i]);
      if (g < 0) continue;
      const p = this.#idx(pred[i]);
      this.counts[g * W + (p < 0 ? C : p)]++;
    }
  }

  /** Per-class IoU and mIoU. */
  result(): IouResult {
    const C = this.classIds.length, W = C + 1;
    const perClass: (number | null)[] = [];
    let sum = 0, valid = 0;
    for (let c = 0; c < C; c++) {
      let row = 0, col = 0;
      for (let j = 0; j <= C; j++) row += this.counts[c * W + j];
      for (let g = 0; g < C; g++) col += this.counts[g * W + c];
      const tp = this.counts[c * W + c];
      if (row === 0) {
        perClass.push(null);
        continue;
      }
      const iou = tp / (row + col - tp);
      perClass.push(iou);
      sum += iou;
      valid++;
    }
    return { mIoU: valid > 0 ? sum / valid : null, perClass, classIds: [...this.classIds] };
  }
}
