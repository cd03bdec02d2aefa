// bench/user-graph: the seed's whole-profile read through the gateway over HTTP, against the same
// reads done directly with the MongoDB driver (the floor), measured side by side in one run.
// 100 knowledge bases x 20 files x 10 pages, 50 conversations x 20 turns.
import type { CommandStartedEvent } from "mongodb";
import { mongoCollections } from "../src/stores/mongo.js";
import type { ConversationDoc, FileDoc, KnowledgeBaseDoc } from "../src/stores/documents.js";
import { defaultSettings, layraId, layraTurn, storedUrl } from "../dev/layra-writer.js";
import { startGateway } from "../test/helpers.js";
import { MongoWireCounter } from "../test/fixtures/mongo-wire-counter.js";
import { LocalStack } from "../dev/stack/stack.js";
import { ms, percentile, timeRuns } from "./stats.js";

const KBS = 100,
  FILES = 20,
  PAGES = 10,
  CONVERSATIONS = 50,
  TURNS = 20,
  RUNS = Number(process.env.RUNS ?? 30);
const USER = "bench";

const profile = (withUrls: boolean) => `{ me { username
  modelConfig { selectedModelId models { modelId modelName apiKeyHint } }
  customNodes { name }
  knowledgeBases(first: 100) { totalCount edges { node { knowledgeBaseId name createdAt
    files(first: 20) { totalCount edges { node { fileId filename ${withUrls ? "url" : ""} pages { imageId pageNumber ${withUrls ? "url" : ""} } } } } } } }
  conversations(first: 50) { totalCount edges { node { conversationId name turns(first: 20) { edges { node { messageId userText aiMessage timestamp } } } } } }
  workflows(first: 50) { totalCount edges { node { workflowId name } } } } }`;

const stack = await LocalStack.start({ only: ["mongo", "redis", "s3", "model", "milvus"] });
// The gateway's Mongo traffic goes through a counting proxy: its command count is read on the wire.
const counter = await MongoWireCounter.start(stack.env.MONGODB_URL);
const gateway = await startGateway(
  { ...stack.env, MONGODB_URL: counter.url },
  { GRAPHQL_MAX_COST: "10000000", GRAPHQL_MAX_DEPTH: "20" },
);
const mongo = { ...mongoCollections(gateway.app.stores.mongo.db), client: gateway.app.stores.mongo.client };
try {
  const now = new Date();
  const kbs: KnowledgeBaseDoc[] = [];
  const files: FileDoc[] = [];
  for (let k = 0; k < KBS; k++) {
    const kb: KnowledgeBaseDoc = {
      knowledge_base_id: layraId(USER),
      knowledge_base_name: `kb ${k}`,
      username: USER,
      files: [],
      used_chat: [],
      created_at: now,
      last_modify_at: now,
      is_delete: false,
    };
    for (let f = 0; f < FILES; f++) {
      const fileId = layraId(USER);
      const key = `${USER}_doc${k}_${f}.pdf`;
      files.push({
        file_id: fileId,
        filename: `doc ${k}-${f}.pdf`,
        username: USER,
        minio_filename: key,
        minio_url: storedUrl(key),
        knowledge_db_id: kb.knowledge_base_id,
        images: Array.from({ length: PAGES }, (_, p) => ({
          images_id: layraId(USER),
          minio_filename: `${USER}_p${k}_${f}_${p}.png`,
          minio_url: storedUrl("x"),
          page_number: p + 1,
        })),
        created_at: now,
        last_modify_at: now,
        is_delete: false,
      });
      kb.files.push({
        file_id: fileId,
        filename: `doc ${k}-${f}.pdf`,
        minio_filename: key,
        minio_url: storedUrl(key),
        created_at: now,
      });
    }
    kbs.push(kb);
  }
  await mongo.knowledgeBases.insertMany(kbs);
  for (let i = 0; i < files.length; i += 500) await mongo.files.insertMany(files.slice(i, i + 500));
  const conversations: ConversationDoc[] = Array.from({ length: CONVERSATIONS }, (_, c) => ({
    conversation_id: layraId(USER),
    conversation_name: `c${c}`,
    username: USER,
    model_config: defaultSettings(),
    turns: Array.from({ length: TURNS }, (_, t) => layraTurn(`question ${t}`)),
    created_at: now,
    last_modify_at: now,
    is_read: false,
    is_delete: false,
  }));
  await mongo.conversations.insertMany(conversations);
  await mongo.modelConfig.insertOne({
    username: USER,
    selected_model: "m",
    models: [{ model_id: "m", ...defaultSettings() }],
  });

  const token = await gateway.token(USER);
  const viaGateway = (query: string) => async () => {
    const response = await fetch(`${gateway.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify({ query }),
    });
    const body = (await response.json()) as { errors?: unknown };
    if (body.errors) throw new Error(JSON.stringify(body.errors));
  };
  // The floor: the same documents read with the driver, in the gateway's query shape (one past
  // each page, so a short page gives the total without a count).
  const direct = async () => {
    const filter = { username: USER, is_delete: false };
    const [, , kbPage] = await Promise.all([
      mongo.modelConfig.findOne({ username: USER }),
      mongo.nodes.findOne({ username: USER }),
      mongo.knowledgeBases.find(filter, { limit: 101, sort: { created_at: -1, knowledge_base_id: 1 } }).toArray(),
      mongo.conversations.find(filter, { limit: 51, sort: { last_modify_at: -1, conversation_id: 1 } }).toArray(),
      mongo.workflows.find(filter, { limit: 51, sort: { last_modify_at: -1, workflow_id: 1 } }).toArray(),
    ]);
    const ids = kbPage.flatMap((kb) => kb.files.slice(0, 20).map((ref) => ref.file_id));
    await mongo.files.find({ file_id: { $in: ids }, username: USER }, { batchSize: ids.length + 1 }).toArray();
  };

  const commands: string[] = [];
  const count = (event: CommandStartedEvent) =>
    commands.push(`${event.commandName} ${String((event.command as Record<string, unknown>)[event.commandName])}`);
  await viaGateway(profile(false))(); // connections and the index build stay out of the count
  await gateway.app.indexesReady;
  counter.reset();
  mongo.client.on("commandStarted", count);
  await viaGateway(profile(false))();
  mongo.client.off("commandStarted", count);
  const onWire = counter.total();
  const byCollection = counter.byCollection();

  for (let i = 0; i < 3; i++) {
    await viaGateway(profile(false))();
    await direct();
  }
  // Interleave so both sides see the same machine state.
  const gatewaySamples: number[] = [],
    directSamples: number[] = [],
    urlSamples: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    gatewaySamples.push(...(await timeRuns(1, viaGateway(profile(false)))));
    directSamples.push(...(await timeRuns(1, direct)));
    if (i % 3 === 0) urlSamples.push(...(await timeRuns(1, viaGateway(profile(true)))));
  }
  const p50 = percentile(gatewaySamples, 50);
  const floor = percentile(directSamples, 50);
  console.log(
    `bench/user-graph: ${KBS} KBs x ${FILES} files x ${PAGES} pages, ${CONVERSATIONS} conversations x ${TURNS} turns, ${RUNS} runs`,
  );
  console.log(`  gateway over HTTP      p50 ${ms(p50)}  p95 ${ms(percentile(gatewaySamples, 95))}`);
  console.log(`  driver reads (floor)   p50 ${ms(floor)}`);
  console.log(`  ratio gateway/floor    ${(p50 / floor).toFixed(2)}  (target <= 1.5)`);
  console.log(`Mongo commands on the wire: ${onWire}`);
  console.log(
    `Mongo commands by collection: ${[...byCollection]
      .sort()
      .map(([name, n]) => `${name}=${n}`)
      .join(" ")}`,
  );
  console.log(`Mongo commands by the driver: ${commands.length} (${commands.sort().join(", ")})`);
  console.log(`  with ${KBS * FILES * (PAGES + 1)} fresh presigned URLs: p50 ${ms(percentile(urlSamples, 50))}`);
} finally {
  await gateway.close();
  await counter.close();
  await stack.close();
}
