import type { Stores } from "../src/stores/index.js";
import { defaultSettings, LayraWriter, layraTurn } from "./layra-writer.js";

/**
 * For user `demo`: two knowledge bases with files (pages in S3, vectors in Milvus), a model config whose
 * model is the local chat stand-in (so `ask` answers offline), a conversation whose first turn retrieved a
 * page, a workflow with a chatflow, and a custom node.
 */
export async function seedDemo(stores: Stores, modelUrl: string, chatModelUrl: string): Promise<void> {
  await stores.s3.ensureBucket();
  const writer = new LayraWriter(stores, modelUrl);
  const manuals = await writer.createKnowledgeBase("demo", "Product manuals");
  const papers = await writer.createKnowledgeBase("demo", "Research papers");
  const chatModel = defaultSettings({
    model_name: "stand-in reasoning",
    model_url: chatModelUrl,
    api_key: "sk-local-stand-in",
    base_used: [{ name: manuals.knowledge_base_name, baseId: manuals.knowledge_base_id }],
    // The stand-in's page vectors score a few points per matching word, below LAYRA's default threshold of 10.
    score_threshold: 0,
  });
  await writer.registerUser("demo", chatModel);
  const router = await writer.ingestFile("demo", manuals.knowledge_base_id, {
    filename: "router-setup.pdf",
    pages: [
      { text: "router setup guide wifi password" },
      { text: "firmware update steps" },
      { text: "factory reset troubleshooting" },
    ],
  });
  await writer.ingestFile("demo", manuals.knowledge_base_id, {
    filename: "printer.docx",
    pages: [{ text: "printer paper jam" }, { text: "ink cartridge replacement" }],
  });
  await writer.ingestFile("demo", papers.knowledge_base_id, {
    filename: "colpali.pdf",
    pages: [{ text: "late interaction multi vector retrieval maxsim" }, { text: "vision language model page images" }],
  });

  const page = router.images[2]!;
  const question = layraTurn("How do I reset the router?", {
    pageKey: page.minio_filename,
    fileUsed: [
      {
        score: 14.2,
        knowledge_db_id: manuals.knowledge_base_id,
        file_name: router.filename,
        image_url: page.minio_url,
        file_url: router.minio_url,
      },
    ],
  });
  await writer.createConversation(
    "demo",
    "Router questions",
    [question, layraTurn("And the wifi password?", { parent: question.message_id })],
    chatModel,
  );
  const workflow = await writer.createWorkflow("demo", "Summarise a manual");
  await writer.createChatflow("demo", workflow.workflow_id, "First run", [layraTurn("Summarise the printer manual")]);
  await writer.saveCustomNode("demo", "summarise", { data: { nodeType: "vlm", prompt: "Summarise {{text}}" } });
}
