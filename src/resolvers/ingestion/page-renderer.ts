// Turns an uploaded original into page PNGs as LAYRA's convert_file_to_images does, within bounds: the page
// count and every page's size are read first (pdfinfo), each page is rendered at the highest resolution up
// to EMBEDDING_IMAGE_DPI that keeps it under RENDER_MAX_PAGE_PIXELS, a few pages at a time as they are read,
// and every renderer run is time-limited (docs/ingestion.md, "Rendering bounds").
import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import sharp from "sharp";
import type { Config } from "../../config.js";
import { extensionOf, sourceKind } from "../../lib/ingestion-contract.js";
import { errorMessage } from "../../errors.js";
import {
  createRenderFolder,
  ProcessFailed,
  ProcessTimeout,
  removeStaleRenderFolders,
  runInGroup,
} from "./render-process.js";

/** The file itself cannot be converted: retrying will not help. */
export class ConversionError extends Error {}

/** The file has more pages than RENDER_MAX_PAGES: refused before any page is rendered. */
export class PageLimitExceeded extends ConversionError {}

/** The worker is stopping: the file is neither done nor failed, and its message is delivered again. */
export class RendererStopped extends Error {}

interface RenderedPages {
  /** Known before any page is rendered. */
  pageCount: number;
  /** The PNG of page `index` (0-based). Pages are read forward: files well behind the last one read are removed. */
  page(index: number): Promise<Buffer>;
  /** Kills a render in progress and removes the temporary folder. */
  dispose(): Promise<void>;
}

export interface Renderer {
  render(original: Buffer, filename: string): Promise<RenderedPages>;
  /** Removes what a killed worker left behind (folders, renderers still running); answers the folders removed. */
  removeStale(): Promise<number>;
  /** Kills every renderer running; renders in hand and later ones fail with RendererStopped. */
  stop(): void;
}

/** How one page is rendered: its resolution and the PNG's size, as pdftoppm makes it. */
interface PagePlan {
  dpi: number;
  width: number;
  height: number;
}

/**
 * Past this many pixels on a side a page is scaled down whatever its area: a strip hundreds of inches
 * long is no more legible to the model at full width, and poppler gives up on huge bitmaps with a 1x1 PNG.
 */
const MAX_PAGE_SIDE_PIXELS = 16_384;
/** Pages per pdftoppm run (more when a batch is larger): each run parses the file again. */
const MIN_CHUNK_PAGES = 16;

/**
 * The resolution for a page of `width` x `height` points rotated by `rotation` degrees: the configured
 * DPI, lowered until the PNG (pdftoppm rounds each side up) fits the pixel and side caps.
 */
function planPage(
  box: { width: number; height: number; rotation: number },
  limits: { dpi: number; maxPixels: number },
): PagePlan {
  const sides = (dpi: number) => [Math.ceil((box.width * dpi) / 72), Math.ceil((box.height * dpi) / 72)] as const;
  const fits = ([w, h]: readonly [number, number]) =>
    w * h <= limits.maxPixels && Math.max(w, h) <= MAX_PAGE_SIDE_PIXELS;
  let dpi = Math.min(
    limits.dpi,
    72 * Math.sqrt(limits.maxPixels / (box.width * box.height)),
    (72 * MAX_PAGE_SIDE_PIXELS) / Math.max(box.width, box.height),
  );
  // Rounding up can add a pixel per side: step down until the rounded size fits too.
  while (!fits(sides(dpi))) dpi *= 0.995;
  const [w, h] = sides(dpi);
  return box.rotation % 180 === 0 ? { dpi, width: w, height: h } : { dpi, width: h, height: w };
}

/**
 * Reads `pdfinfo -box` output: the page count, then each page's MediaBox (what pdftoppm renders) and
 * rotation. Only lines after the last `Pages:` count, so a title holding such lines changes nothing.
 */
function parsePdfInfo(output: string): {
  pageCount: number;
  pages: Map<number, { width: number; height: number; rotation: number }>;
} {
  const lines = output.split("\n");
  const countLine = lines.findLastIndex((line) => /^Pages:\s+\d+\s*$/.test(line));
  if (countLine < 0) throw new ConversionError("the PDF's page count cannot be read");
  const pageCount = Number(/\d+/.exec(lines[countLine]!)![0]);
  const pages = new Map<number, { width: number; height: number; rotation: number }>();
  const entry = (page: number) => pages.get(page) ?? pages.set(page, { width: 0, height: 0, rotation: 0 }).get(page)!;
  for (const line of lines.slice(countLine + 1)) {
    const box = /^Page\s+(\d+) MediaBox:\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s*$/.exec(line);
    if (box) {
      const [x1, y1, x2, y2] = box.slice(2).map(Number) as [number, number, number, number];
      Object.assign(entry(Number(box[1])), { width: Math.abs(x2 - x1), height: Math.abs(y2 - y1) });
    }
    const rotation = /^Page\s+(\d+) rot:\s+(-?\d+)\s*$/.exec(line);
    if (rotation) entry(Number(rotation[1])).rotation = ((Number(rotation[2]) % 360) + 360) % 360;
  }
  return { pageCount, pages };
}

const lastLine = (text: string) =>
  text
    .trim()
    .split("\n")
    .filter((line) => line.trim())
    .slice(-1)[0] ?? "";

/** A missing converter is the worker's fault, not the file's: a plain error, retried like a store failure. */
const isMissing = (error: unknown) => (error as NodeJS.ErrnoException).code === "ENOENT";

export function createRenderer(config: Config): Renderer {
  const { dpi, pdftoppmPath, pdfinfoPath, sofficePath, maxPages, maxPagePixels, pageTimeoutMs } = config.ingest;
  const chunkPages = Math.max(MIN_CHUNK_PAGES, config.ingest.batchPages);
  // An A4 page's long side (11.69 inches) at the DPI, as LAYRA sizes images.
  const longSide = Math.floor(11.69 * dpi);
  const stopping = new AbortController();

  async function readPlans(pdf: string, folder: string, signal: AbortSignal): Promise<PagePlan[]> {
    let output: string;
    try {
      output = await runInGroup(pdfinfoPath, ["-box", "-f", "1", "-l", String(maxPages), pdf], {
        timeoutMs: pageTimeoutMs,
        // Seven lines of at most ~80 characters per page, plus the document's metadata.
        maxOutputBytes: 64 * 1024 + maxPages * 600,
        signal,
        folder,
      });
    } catch (error) {
      if (isMissing(error))
        throw new Error(`the PDF reader ${pdfinfoPath} (poppler-utils) is not installed`, { cause: error });
      if (error instanceof ProcessTimeout)
        throw new ConversionError(`reading the PDF's pages took longer than ${pageTimeoutMs} ms`, { cause: error });
      if (error instanceof ProcessFailed)
        throw new ConversionError(`the PDF cannot be read: ${lastLine(error.stderr) || error.message}`, {
          cause: error,
        });
      throw error;
    }
    const { pageCount, pages } = parsePdfInfo(output);
    if (pageCount === 0) throw new ConversionError("the PDF has no pages");
    if (pageCount > maxPages)
      throw new PageLimitExceeded(`the PDF has ${pageCount} pages, more than the ${maxPages} a file may have`);
    return Array.from({ length: pageCount }, (_, index) => {
      const box = pages.get(index + 1);
      if (!box || !(box.width > 0 && box.height > 0 && Number.isFinite(box.width * box.height)))
        throw new ConversionError(`page ${index + 1} has no usable size`);
      return planPage(box, { dpi, maxPixels: maxPagePixels });
    });
  }

  /** Runs of consecutive pages with one resolution, at most `chunkPages` long: one pdftoppm run each. */
  function chunksOf(plans: PagePlan[]): { first: number; last: number }[] {
    const chunks: { first: number; last: number }[] = [];
    plans.forEach((plan, index) => {
      const current = chunks.at(-1);
      if (current && current.last - current.first + 1 < chunkPages && plans[current.first]!.dpi === plan.dpi)
        current.last = index;
      else chunks.push({ first: index, last: index });
    });
    return chunks;
  }

  function pdfPages(pdf: string, folder: string, plans: PagePlan[], signal: AbortSignal) {
    const chunks = chunksOf(plans);
    const chunkOfPage = chunks.flatMap((chunk, c) => Array.from({ length: chunk.last - chunk.first + 1 }, () => c));
    const rendered = new Map<number, Promise<string[]>>();

    async function renderChunk(c: number): Promise<string[]> {
      const { first, last } = chunks[c]!;
      const pages = last - first + 1;
      const range = pages === 1 ? `page ${first + 1}` : `pages ${first + 1}-${last + 1}`;
      const prefix = `c${c}`;
      try {
        const args = ["-png", "-r", String(plans[first]!.dpi), "-f", String(first + 1), "-l", String(last + 1)];
        await runInGroup(pdftoppmPath, [...args, pdf, join(folder, prefix)], {
          timeoutMs: pages * pageTimeoutMs,
          maxOutputBytes: 64 * 1024,
          signal,
          folder,
        });
      } catch (error) {
        if (isMissing(error))
          throw new Error(`the PDF renderer ${pdftoppmPath} (poppler-utils) is not installed`, { cause: error });
        if (error instanceof ProcessTimeout)
          throw new ConversionError(`${range} took longer than ${pages * pageTimeoutMs} ms to render`, {
            cause: error,
          });
        if (error instanceof ProcessFailed)
          throw new ConversionError(`the PDF cannot be rendered: ${lastLine(error.stderr) || error.message}`, {
            cause: error,
          });
        throw error;
      }
      // pdftoppm pads page numbers to the document's page count: c0-1.png or c0-0001.png.
      const files = new Map(
        (await readdir(folder)).flatMap((name) => {
          const number = new RegExp(`^${prefix}-(\\d+)\\.png$`).exec(name)?.[1];
          return number === undefined ? [] : [[Number(number) - 1, join(folder, name)] as const];
        }),
      );
      const paths: string[] = [];
      for (let index = first; index <= last; index++) {
        const path = files.get(index);
        const { width, height } = path ? await sharp(path).metadata() : {};
        const plan = plans[index]!;
        // Poppler answers a page it cannot allocate with a 1x1 PNG and success: never pass that on as the page.
        if (!path || Math.abs((width ?? 0) - plan.width) > 2 || Math.abs((height ?? 0) - plan.height) > 2)
          throw new ConversionError(`page ${index + 1} could not be rendered`);
        paths.push(path);
      }
      return paths;
    }

    const chunk = (c: number) => {
      let pending = rendered.get(c);
      if (!pending) {
        pending = renderChunk(c);
        // A chunk rendered ahead may fail before anyone reads it: its error is answered to that read.
        pending.catch(() => {});
        rendered.set(c, pending);
      }
      return pending;
    };

    /** Removes the files of chunks entirely more than a chunk behind `index` (a batch spans at most two). */
    async function releaseBefore(index: number) {
      for (const [c, pending] of rendered)
        if (chunks[c]!.last < index - chunkPages) {
          rendered.delete(c);
          const paths = await pending.catch((): string[] => []);
          await Promise.all(paths.map((path) => rm(path, { force: true })));
        }
    }

    return {
      page: async (index: number) => {
        const c = chunkOfPage[index];
        if (c === undefined) throw new RangeError(`page ${index} of ${plans.length}`);
        await releaseBefore(index);
        const paths = await chunk(c);
        // Render the next pages while these are embedded.
        if (c + 1 < chunks.length) void chunk(c + 1);
        return readFile(paths[index - chunks[c]!.first]!);
      },
      settled: () => Promise.allSettled(rendered.values()),
    };
  }

  async function officeToPdf(source: string, folder: string, extension: string, signal: AbortSignal) {
    try {
      await runInGroup(sofficePath, ["--headless", "--convert-to", "pdf", "--outdir", folder, source], {
        timeoutMs: 10 * 60_000,
        maxOutputBytes: 1024 * 1024,
        signal,
        folder,
      });
    } catch (error) {
      if (isMissing(error))
        throw new ConversionError(
          `.${extension} files need LibreOffice (${sofficePath}), which is not installed where the worker runs`,
          { cause: error },
        );
      if (error instanceof ProcessTimeout || error instanceof ProcessFailed)
        throw new ConversionError(
          `LibreOffice could not convert the document: ${error instanceof ProcessFailed ? lastLine(error.stderr) : error.message}`,
          { cause: error },
        );
      throw error;
    }
    return join(folder, "source.pdf");
  }

  async function imagePage(original: Buffer, folder: string): Promise<string> {
    const png = join(folder, "page-1.png");
    try {
      await sharp(original, { pages: 1 })
        .removeAlpha()
        .toColourspace("srgb")
        .resize({ width: longSide, height: longSide, fit: "inside", withoutEnlargement: true, kernel: "lanczos3" })
        .png()
        .toFile(png);
    } catch (error) {
      throw new ConversionError(`Image processing failed: ${errorMessage(error)}`, { cause: error });
    }
    return png;
  }

  return {
    render: async (original, filename) => {
      const kind = sourceKind(filename);
      if (!kind) throw new ConversionError("Unsupported file type");
      if (stopping.signal.aborted) throw stopping.signal.reason;
      const folder = await createRenderFolder();
      const cancel = new AbortController();
      const stop = () => cancel.abort(stopping.signal.reason);
      stopping.signal.addEventListener("abort", stop, { once: true });
      const { signal } = cancel;
      let settled = async (): Promise<unknown> => undefined;
      const dispose = async () => {
        stopping.signal.removeEventListener("abort", stop);
        cancel.abort(new Error("the render was disposed"));
        await settled();
        await rm(folder, { recursive: true, force: true });
      };
      try {
        if (kind === "image") {
          const png = await imagePage(original, folder);
          return { pageCount: 1, page: () => readFile(png), dispose };
        }
        const extension = extensionOf(filename);
        const source = join(folder, `source.${extension}`);
        await writeFile(source, original);
        const pdf = kind === "pdf" ? source : await officeToPdf(source, folder, extension, signal);
        const plans = await readPlans(pdf, folder, signal);
        const pages = pdfPages(pdf, folder, plans, signal);
        settled = pages.settled;
        return { pageCount: plans.length, page: pages.page, dispose };
      } catch (error) {
        await dispose();
        throw error;
      }
    },
    removeStale: removeStaleRenderFolders,
    stop: () => stopping.abort(new RendererStopped("the worker is stopping")),
  };
}
