import type { Stores } from "../src/stores/index.js";
import { LayraWriter } from "../test/fixtures/layra-writer.js";

/** Two knowledge bases with files, pages in S3 and vectors in Milvus, and a model config, for user `demo`. */
export async function seedDemo(stores: Stores, modelUrl: string): Promise<void> {
  await stores.s3.ensureBucket();
  const writer = new LayraWriter(stores, modelUrl);
  const manuals = await writer.createKnowledgeBase("demo", "Product manuals");
  const papers = await writer.createKnowledgeBase("demo", "Research papers");
  await writer.registerUser("demo", { base_used: [{ name: manuals.knowledge_base_name, baseId: manuals.knowledge_base_id }] });
  await writer.ingestFile("demo", manuals.knowledge_base_id, {
    filename: "router-setup.pdf",
    pages: [{ text: "router setup guide wifi password" }, { text: "firmware update steps" }, { text: "factory reset troubleshooting" }],
  });
  await writer.ingestFile("demo", manuals.knowledge_base_id, {
    filename: "printer.docx",
    pages: [{ text: "printer paper jam" }, { text: "ink cartridge replacement" }],
  });
  await writer.ingestFile("demo", papers.knowledge_base_id, {
    filename: "colpali.pdf",
    pages: [{ text: "late interaction multi vector retrieval maxsim" }, { text: "vision language model page images" }],
  });
}
