// Compact page codes for the in-memory search (docs/performance.md, "Search: compact codes"). Each page
// vector d is kept as int8 codes c with a float32 scale s, r >= ||d - s·c|| (what the codes leave out) and
// n >= ||s·c||. A query vector q is coded the same way in int16: q = t·a + f. Then
//   q·d = s·t·(a·c) + s·(f·c) + q·(d - s·c),   so   |q·d - s·t·(a·c)| <= ||f||·n + ||q||·r
// (Cauchy-Schwarz), and one pass of integer products over the codes bounds every page's MaxSim from above
// and below: only pages whose upper bound reaches the k-th best lower bound need their float vectors.
// A 128-d vector takes 140 bytes instead of 512.

import { setImmediate as setImmediatePromise } from "node:timers/promises";
import { CODE_SCAN_WASM } from "./code-scan-wasm.js";
import { SLICE_MS } from "./maxsim.js";
import { ENTRY_OVERHEAD_BYTES } from "./page-vector-cache.js";
import { entryFloor } from "./threshold.js";

/**
 * Covers the double-precision rounding of the bounds and of MaxSimScores' exact sums (relative, about
 * dim·1e-16 of ||q||·||d||), so that every bound stays a bound; per query vector and page.
 */
const ROUNDING_SLACK = 1e-9;

/** Rows are padded with zero codes to whole 16-byte SIMD steps. */
export const strideOf = (dim: number) => Math.ceil(dim / 16) * 16;

/** One page's vectors as codes: row i is `codes[i*stride .. (i+1)*stride)`, `scales[i]`, `errors[i]`, `norms[i]`. */
export interface PageCodes {
  readonly rows: number;
  readonly codes: Int8Array;
  readonly scales: Float32Array;
  /** Per row, at least the norm of what the codes leave out (rounded up, never down). */
  readonly errors: Float32Array;
  /** Per row, at least the norm of the vector the codes stand for (s·c). */
  readonly norms: Float32Array;
  /** The largest norm + error of a row: what the rounding slack scales with. */
  readonly largestNorm: number;
  /** The bytes of the four arrays. */
  readonly byteLength: number;
}

const codeBytes = (vectorCount: number, dim: number) =>
  vectorCount * (strideOf(dim) + 3 * Float32Array.BYTES_PER_ELEMENT);

/** What a page of `vectorCount` vectors takes as codes in the cache, for planning before it is read. */
export const pageCodeBytes = (vectorCount: number, dim: number) => codeBytes(vectorCount, dim) + ENTRY_OVERHEAD_BYTES;

/** A page's codes from its four arrays (encoded here, or read back from the bucket). */
export function pageCodesOf(
  rows: number,
  dim: number,
  arrays: Pick<PageCodes, "codes" | "scales" | "errors" | "norms">,
  largestNorm: number,
): PageCodes {
  return { rows, ...arrays, largestNorm, byteLength: codeBytes(rows, dim) };
}

/** float32 rounds to nearest (relative error at most 2^-24): raising by 2^-20 first rounds up. */
const roundUp32 = (value: number) => Math.fround(value * (1 + 2 ** -20));

/** Encodes a page's row-major float32 vectors: per row, the scale maps its largest magnitude to 127. */
export function encodePage(vectors: Float32Array, dim: number): PageCodes {
  const rows = vectors.length / dim;
  const stride = strideOf(dim);
  const codes = new Int8Array(rows * stride);
  const scales = new Float32Array(rows);
  const errors = new Float32Array(rows);
  const norms = new Float32Array(rows);
  let largestNorm = 0;
  for (let row = 0; row < rows; row++) {
    const offset = row * dim;
    let largest = 0;
    for (let k = 0; k < dim; k++) largest = Math.max(largest, Math.abs(vectors[offset + k]!));
    // The residual is taken against the scale as stored (float32), not the double it came from.
    const scale = Math.fround(largest / 127);
    let residual = 0;
    let norm = 0;
    for (let k = 0; k < dim; k++) {
      const value = vectors[offset + k]!;
      const code = scale === 0 ? 0 : Math.max(-127, Math.min(127, Math.round(value / scale)));
      codes[row * stride + k] = code;
      residual += (value - scale * code) ** 2;
      norm += (scale * code) ** 2;
    }
    scales[row] = scale;
    errors[row] = roundUp32(Math.sqrt(residual));
    norms[row] = roundUp32(Math.sqrt(norm));
    largestNorm = Math.max(largestNorm, norms[row]! + errors[row]!);
  }
  return pageCodesOf(rows, dim, { codes, scales, errors, norms }, largestNorm);
}

/** A page's MaxSim lies in [lower, upper]. */
export interface ScoreBounds {
  lower: number;
  upper: number;
}

interface CodeScanExports {
  memory: WebAssembly.Memory;
  dots(codes: number, rows: number, stride: number, query: number, quads: number, out: number): void;
  terms(
    dots: number,
    rows: number,
    quads: number,
    queryCount: number,
    rowParams: number,
    queryParams: number,
    out: number,
  ): void;
}

/** Compiled once; each CodeBounds has its own instance and memory, so interleaved searches never share one. */
let codeScanModule: WebAssembly.Module | null = null;
const WASM_PAGE_BYTES = 65536;

/** Bounds pages from their codes, one query at a time (docs/performance.md, "Search: compact codes"). */
export class CodeBounds {
  private readonly queryCount: number;
  private readonly stride: number;
  /** Query vectors are taken four at a time by the kernel; the last group is padded with zero vectors. */
  private readonly quads: number;
  /** Per query vector: its int16 codes' scale t, ||f|| and ||q|| (both rounded up). */
  private readonly queryNorms: Float64Array;
  private readonly scan: CodeScanExports;
  /** Where the kernel finds the query's t, ||f|| and ||q|| (float64, after the query's codes at 0). */
  private readonly queryParamsAt: number;
  /** Where the kernel writes each query vector's (upper, lower) term pair for the page. */
  private readonly termsAt: number;
  /** Where the page's codes go in the kernel's memory. */
  private readonly codesAt: number;
  readonly bounds = new Map<string, ScoreBounds>();

  constructor(query: Float32Array, dim: number) {
    const queryCount = (this.queryCount = query.length / dim);
    const stride = (this.stride = strideOf(dim));
    this.quads = Math.ceil(queryCount / 4);
    // Every i32 sum of `stride` products of an int8 and an int16 code stays below 2^31.
    const largestCode = Math.min(32767, Math.floor((2 ** 31 - 1) / (127 * stride)));
    codeScanModule ??= new WebAssembly.Module(Buffer.from(CODE_SCAN_WASM, "base64"));
    this.scan = new WebAssembly.Instance(codeScanModule).exports as unknown as CodeScanExports;
    // The query's codes (a multiple of 32 bytes), then its three float64 parameters, then the term pairs.
    this.queryParamsAt = this.quads * 4 * stride * 2;
    this.termsAt = this.queryParamsAt + 3 * queryCount * 8;
    this.codesAt = this.termsAt + 2 * queryCount * 8;
    this.grow(this.codesAt);
    const queryCodes = new Int16Array(this.scan.memory.buffer, 0, this.quads * 4 * stride);
    const params = new Float64Array(this.scan.memory.buffer, this.queryParamsAt, 3 * queryCount);
    for (let q = 0; q < queryCount; q++) {
      let largest = 0;
      let norm = 0;
      for (let k = 0; k < dim; k++) {
        largest = Math.max(largest, Math.abs(query[q * dim + k]!));
        norm += query[q * dim + k]! ** 2;
      }
      const scale = largest / largestCode;
      let residual = 0;
      for (let k = 0; k < dim; k++) {
        const value = query[q * dim + k]!;
        const code = scale === 0 ? 0 : Math.max(-largestCode, Math.min(largestCode, Math.round(value / scale)));
        queryCodes[q * stride + k] = code;
        residual += (value - scale * code) ** 2;
      }
      params[q] = scale;
      params[queryCount + q] = Math.sqrt(residual) * (1 + 2 ** -40);
      params[2 * queryCount + q] = Math.sqrt(norm) * (1 + 2 ** -40);
    }
    this.queryNorms = params.slice(2 * queryCount);
  }

  /** Bounds whole pages in one pass over their codes, giving the event loop back every SLICE_MS. */
  async addPages(pages: Iterable<[string, PageCodes]>): Promise<void> {
    let sliceStart = performance.now();
    for (const [pageId, page] of pages) {
      this.addPage(pageId, page);
      if (performance.now() - sliceStart < SLICE_MS) continue;
      await setImmediatePromise();
      sliceStart = performance.now();
    }
  }

  /**
   * Per query vector, the largest of s·t·(a·c) ± (||f||·n + ||q||·r) over the page's rows; summed,
   * these bound the page's MaxSim. The integer products and the terms come from the kernel.
   */
  addPage(pageId: string, page: PageCodes): void {
    const { queryCount, stride, quads, codesAt, termsAt, queryNorms } = this;
    const { rows } = page;
    const dotsAt = codesAt + rows * stride;
    const rowParamsAt = dotsAt + rows * quads * 16;
    this.grow(rowParamsAt + rows * 12);
    const memory = this.scan.memory.buffer;
    new Int8Array(memory, codesAt, rows * stride).set(page.codes);
    const rowParams = new Float32Array(memory, rowParamsAt, rows * 3);
    rowParams.set(page.scales);
    rowParams.set(page.errors, rows);
    rowParams.set(page.norms, 2 * rows);
    this.scan.dots(codesAt, rows, stride, 0, quads, dotsAt);
    this.scan.terms(dotsAt, rows, quads, queryCount, rowParamsAt, this.queryParamsAt, termsAt);
    const terms = new Float64Array(memory, termsAt, 2 * queryCount);
    let upper = 0;
    let lower = 0;
    for (let q = 0; q < queryCount; q++) {
      const slack = ROUNDING_SLACK * (1 + queryNorms[q]! * page.largestNorm);
      upper += terms[2 * q]! + slack;
      lower += terms[2 * q + 1]! - slack;
    }
    this.bounds.set(pageId, { lower, upper });
  }

  /** Grows the kernel's memory to at least `bytes`. */
  private grow(bytes: number): void {
    const { memory } = this.scan;
    if (memory.buffer.byteLength < bytes) memory.grow(Math.ceil((bytes - memory.buffer.byteLength) / WASM_PAGE_BYTES));
  }
}

/**
 * What a page must reach to be in the top k: the k-th best lower bound (or the caller's threshold, when
 * higher). At least k pages score that much, so a page whose upper bound is below it cannot enter.
 */
export function codesFloor(bounds: ReadonlyMap<string, ScoreBounds>, k: number, threshold: number): number {
  return entryFloor(
    [...bounds.values()].map((bound) => bound.lower),
    k,
    threshold,
  );
}

/**
 * The pages that may be in the top k: those whose upper bound reaches the k-th best lower bound (and
 * the caller's threshold). Every other page scores below k pages, or below the threshold, whatever
 * its exact score.
 */
export function mayEnterTopK(bounds: ReadonlyMap<string, ScoreBounds>, k: number, threshold: number): string[] {
  const floor = codesFloor(bounds, k, threshold);
  return [...bounds].filter(([, bound]) => bound.upper >= floor).map(([pageId]) => pageId);
}
