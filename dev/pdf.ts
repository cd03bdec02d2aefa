// Real PDFs for the demo data and the search tests, drawn with pdf-lib: A4 pages with a heading and
// wrapped body text, which the worker renders like any upload and the local model server reads (OCR).
import { PDFDocument, StandardFonts, rgb, type PDFFont } from "pdf-lib";

export interface DocumentPage {
  heading: string;
  body: string;
}

const A4 = [595, 842] as const;
const MARGIN = 64;

/** `text` broken into lines no wider than `width` at `size` points. */
function wrap(text: string, font: PDFFont, size: number, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter(Boolean)) {
    const candidate = line ? `${line} ${word}` : word;
    if (line && font.widthOfTextAtSize(candidate, size) > width) {
      lines.push(line);
      line = word;
    } else line = candidate;
  }
  if (line) lines.push(line);
  return lines;
}

/** A PDF with one A4 page per entry: the document's title small at the top, the heading, the body. */
export async function documentPdf(title: string, pages: DocumentPage[]): Promise<Buffer> {
  const pdf = await PDFDocument.create();
  pdf.setTitle(title);
  const regular = await pdf.embedFont(StandardFonts.Helvetica);
  const bold = await pdf.embedFont(StandardFonts.HelveticaBold);
  const width = A4[0] - 2 * MARGIN;
  for (const [index, spec] of pages.entries()) {
    const page = pdf.addPage([...A4]);
    let y = A4[1] - MARGIN;
    page.drawText(title, { x: MARGIN, y, size: 10, font: regular, color: rgb(0.4, 0.4, 0.4) });
    page.drawLine({
      start: { x: MARGIN, y: y - 8 },
      end: { x: A4[0] - MARGIN, y: y - 8 },
      thickness: 0.5,
      color: rgb(0.6, 0.6, 0.6),
    });
    y -= 56;
    for (const line of wrap(spec.heading, bold, 22, width)) {
      page.drawText(line, { x: MARGIN, y, size: 22, font: bold });
      y -= 30;
    }
    y -= 10;
    for (const line of wrap(spec.body, regular, 13, width)) {
      page.drawText(line, { x: MARGIN, y, size: 13, font: regular });
      y -= 20;
    }
    page.drawText(`${index + 1} / ${pages.length}`, { x: A4[0] / 2 - 12, y: MARGIN / 2, size: 10, font: regular });
  }
  return Buffer.from(await pdf.save());
}
