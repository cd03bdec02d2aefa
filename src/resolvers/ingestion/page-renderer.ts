// Turns an uploaded original into page PNGs as LAYRA's convert_file_to_images does, written to a temporary folder
// and read back a batch at a time so a long document never sits in memory whole (docs/ingestion.md, "The worker").
import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import sharp from "sharp";
import type { Config } from "../../config.js";
import { extensionOf, sourceKind } from "../../lib/ingestion-contract.js";
import { errorMessage } from "../../errors.js";

const run = promisify(execFile);

/** The file itself cannot be converted: retrying will not help. */
export class ConversionError extends Error {}

interface RenderedPages {
  pageCount: number;
  /** The PNG of page `index` (0-based). */
  page(index: number): Promise<Buffer>;
  /** Removes the temporary folder. */
  dispose(): Promise<void>;
}

export interface Renderer {
  render(original: Buffer, filename: string): Promise<RenderedPages>;
}

const lastLine = (text: string) =>
  text
    .trim()
    .split("\n")
    .filter((line) => line.trim())
    .slice(-1)[0] ?? "";

export function createRenderer(config: Config): Renderer {
  const { dpi, pdftoppmPath, sofficePath } = config.ingest;
  // An A4 page's long side (11.69 inches) at the DPI, as LAYRA sizes images.
  const longSide = Math.floor(11.69 * dpi);

  async function renderPdf(pdf: string, folder: string): Promise<string[]> {
    try {
      await run(pdftoppmPath, ["-png", "-r", String(dpi), pdf, join(folder, "page")], { maxBuffer: 1024 * 1024 });
    } catch (error) {
      const failure = error as NodeJS.ErrnoException & { stderr?: string };
      if (failure.code === "ENOENT")
        throw new Error(`the PDF renderer ${pdftoppmPath} (poppler-utils) is not installed`, { cause: error });
      throw new ConversionError(`the PDF cannot be rendered: ${lastLine(failure.stderr ?? "") || failure.message}`, {
        cause: error,
      });
    }
    // pdftoppm names pages page-1.png or page-01.png ... depending on the page count.
    const pages = (await readdir(folder))
      .map((name) => ({ name, number: /^page-(\d+)\.png$/.exec(name)?.[1] }))
      .filter((entry): entry is { name: string; number: string } => entry.number !== undefined)
      .sort((a, b) => Number(a.number) - Number(b.number))
      .map((entry) => join(folder, entry.name));
    if (pages.length === 0) throw new ConversionError("the PDF has no pages");
    return pages;
  }

  async function officeToPdf(source: string, folder: string, extension: string): Promise<string> {
    try {
      await run(sofficePath, ["--headless", "--convert-to", "pdf", "--outdir", folder, source], {
        timeout: 10 * 60_000,
      });
    } catch (error) {
      const failure = error as NodeJS.ErrnoException & { stderr?: string };
      if (failure.code === "ENOENT")
        throw new ConversionError(
          `.${extension} files need LibreOffice (${sofficePath}), which is not installed where the worker runs`,
          { cause: error },
        );
      throw new ConversionError(`LibreOffice could not convert the document: ${lastLine(failure.stderr ?? "")}`, {
        cause: error,
      });
    }
    return join(folder, "source.pdf");
  }

  return {
    render: async (original, filename) => {
      const kind = sourceKind(filename);
      if (!kind) throw new ConversionError("Unsupported file type");
      const folder = await mkdtemp(join(tmpdir(), "layra-render-"));
      const dispose = () => rm(folder, { recursive: true, force: true });
      try {
        let pages: string[];
        if (kind === "image") {
          const png = join(folder, "page-1.png");
          try {
            await sharp(original, { pages: 1 })
              .removeAlpha()
              .toColourspace("srgb")
              .resize({
                width: longSide,
                height: longSide,
                fit: "inside",
                withoutEnlargement: true,
                kernel: "lanczos3",
              })
              .png()
              .toFile(png);
          } catch (error) {
            throw new ConversionError(`Image processing failed: ${errorMessage(error)}`, {
              cause: error,
            });
          }
          pages = [png];
        } else {
          const extension = extensionOf(filename);
          const source = join(folder, `source.${extension}`);
          await writeFile(source, original);
          const pdf = kind === "pdf" ? source : await officeToPdf(source, folder, extension);
          pages = await renderPdf(pdf, folder);
        }
        return { pageCount: pages.length, page: (index) => readFile(pages[index]!), dispose };
      } catch (error) {
        await dispose();
        throw error;
      }
    },
  };
}
