import type { Stores } from "../src/stores/index.js";
import { defaultSettings, LayraWriter, layraTurn } from "./layra-writer.js";
import { documentPdf, type DocumentPage } from "./pdf.js";

/** The demo's documents: real PDFs, one subject per page, so a search for a page's words finds it. */
const DOCUMENTS: { base: "manuals" | "papers"; filename: string; pages: DocumentPage[] }[] = [
  {
    base: "manuals",
    filename: "router-setup.pdf",
    pages: [
      {
        heading: "Router setup",
        body: "Connect the router to the modem with the yellow cable, then power it on. The wifi network name and the wifi password are printed on the label under the router.",
      },
      {
        heading: "Firmware update",
        body: "Open the admin page, choose firmware, and upload the new image. Do not unplug the router while the update runs; it restarts by itself when the firmware is installed.",
      },
      {
        heading: "Factory reset",
        body: "Troubleshooting: when the router stops answering, hold the reset button for ten seconds until the lights blink. A factory reset erases every setting, the wifi password too.",
      },
    ],
  },
  {
    base: "manuals",
    filename: "printer.pdf",
    pages: [
      {
        heading: "Clearing a paper jam",
        body: "Open the rear door and pull the jammed paper out slowly with both hands. Close the door; the printer resumes the job.",
      },
      {
        heading: "Replacing an ink cartridge",
        body: "Lift the scanner lid, wait for the carriage to stop, press the old cartridge down and take it out. Click the new ink cartridge into place.",
      },
    ],
  },
  {
    base: "papers",
    filename: "colpali.pdf",
    pages: [
      {
        heading: "Late interaction retrieval",
        body: "Each query token finds its best matching page token, and the maxsim scores add up: multi vector retrieval keeps the detail a single vector loses.",
      },
      {
        heading: "Vision language models read page images",
        body: "Embedding the rendered page image directly keeps tables, figures and layout, with no text extraction step before indexing.",
      },
    ],
  },
];

/** What the seed uploads, for the start-up output. */
export const DEMO_UPLOADS = `${DOCUMENTS.length} generated PDFs (${DOCUMENTS.flatMap((document) => document.pages).length} pages)`;

/** How long the demo's ingestion may take: seven pages, rendered, read and embedded by the local worker. */
const INGEST_TIMEOUT_MS = 180_000;

/**
 * For user `demo`: two knowledge bases whose files are real PDFs ingested by the running worker
 * (pages in S3, vectors in Milvus), a model config whose model is the local chat stand-in, a
 * conversation whose first turn retrieved a page, a workflow with a chatflow, and a custom node.
 */
export async function seedDemo(
  stores: Stores,
  modelUrl: string,
  chatModelUrl: string,
): Promise<{ knowledgeBaseId: string; taskId: string; conversationId: string }> {
  await stores.s3.ensureBucket();
  const writer = new LayraWriter(stores, modelUrl);
  const bases = {
    manuals: await writer.createKnowledgeBase("demo", "Product manuals"),
    papers: await writer.createKnowledgeBase("demo", "Research papers"),
  };
  // The model is the local chat stand-in, so `ask` answers offline.
  const chatModel = defaultSettings({
    model_name: "stand-in reasoning",
    model_url: chatModelUrl,
    api_key: "sk-local-stand-in",
    base_used: [{ name: bases.manuals.knowledge_base_name, baseId: bases.manuals.knowledge_base_id }],
    // The stand-in's page vectors score a few points per matching word, below LAYRA's default threshold of 10.
    score_threshold: 0,
  });
  await writer.registerUser("demo", chatModel);
  // One upload per knowledge base, as a user would send them; the worker ingests both at once.
  const uploads = await Promise.all(
    (["manuals", "papers"] as const).map(async (base) => {
      const files = await Promise.all(
        DOCUMENTS.filter((document) => document.base === base).map(async (document) => ({
          filename: document.filename,
          bytes: await documentPdf(document.filename, document.pages),
          contentType: "application/pdf",
        })),
      );
      return writer.uploadFiles("demo", bases[base].knowledge_base_id, files);
    }),
  );
  await Promise.all(uploads.map((upload) => writer.taskEnded(upload.taskId, INGEST_TIMEOUT_MS)));

  const router = await writer.file(uploads[0]!.fileIds[0]!);
  const page = router.images.find((image) => image.page_number === 3)!;
  const question = layraTurn("How do I reset the router?", {
    pageKey: page.minio_filename,
    fileUsed: [
      {
        score: 14.2,
        knowledge_db_id: bases.manuals.knowledge_base_id,
        file_name: router.filename,
        image_url: page.minio_url,
        file_url: router.minio_url,
      },
    ],
  });
  const conversation = await writer.createConversation(
    "demo",
    "Router questions",
    [question, layraTurn("And the wifi password?", { parent: question.message_id })],
    chatModel,
  );
  const workflow = await writer.createWorkflow("demo", "Summarise a manual");
  await writer.createChatflow("demo", workflow.workflow_id, "First run", [layraTurn("Summarise the printer manual")]);
  await writer.saveCustomNode("demo", "summarise", { data: { nodeType: "vlm", prompt: "Summarise {{text}}" } });
  // What GraphiQL's starter tabs run against.
  return {
    knowledgeBaseId: bases.manuals.knowledge_base_id,
    taskId: uploads[0]!.taskId,
    conversationId: conversation.conversation_id,
  };
}
