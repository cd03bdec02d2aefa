// Documents LAYRA writes as the client sent them: a conversation's `model_config` may be `{}`, carry
// only some keys, or carry a `model_id`. Each reads, with nulls where keys are missing, without an
// error that hides its siblings, and without its API key in the response or the log.
import assert from "node:assert/strict";
import { test } from "node:test";
import { defaultSettings, LayraWriter } from "../dev/layra-writer.js";
import { createLogger } from "../src/observability/logger.js";
import { sharedStackEnv, startGateway } from "./helpers.js";
type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any
const KEY = "sk-live-0123456789abcdef";

test("conversations with `{}`, partial and model_id-carrying snapshots all read, none hides another", async () => {
  const lines: string[] = [];
  const logger = createLogger({ logLevel: "debug" }, { write: (line: string) => void lines.push(line) });
  const shared = await sharedStackEnv();
  const gw = await startGateway(shared.env, {}, { logger });
  const url = gw.url;
  try {
    const writer = new LayraWriter(gw.app.stores, gw.config.model.url);
    const empty = await writer.createConversation("carol", "empty", [], {});
    const partial = await writer.createConversation("carol", "partial", [], { model_name: "m1", top_K: 3 });
    const withId = await writer.createConversation("carol", "with id", [], {
      ...defaultSettings({ api_key: KEY }),
      model_id: "carol_x",
    } as never);
    const odd = await writer.createConversation("carol", "odd types", [], {
      model_name: 7,
      base_used: [{ baseId: 5 }, "x"],
      temperature: "hot",
    } as never);
    const token = await gw.token("carol");
    const query = async (body: string) => {
      const response = await fetch(`${url}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify({ query: body }),
      });
      return { text: await response.clone().text(), json: await response.json() };
    };
    const settings = "modelSettings { modelName modelUrl apiKeyHint baseUsed { name baseId } temperature topK }";
    const profile = await query(`{ me { username conversations { edges { node { conversationId ${settings} } } } } }`);
    assert.equal(profile.json.errors, undefined, profile.text);
    const byId = new Map(
      profile.json.data.me.conversations.edges.map((e: Json) => [e.node.conversationId, e.node.modelSettings]),
    );
    const nulls = { modelName: null, modelUrl: null, apiKeyHint: null, baseUsed: null, temperature: null, topK: null };
    assert.deepEqual(byId.get(empty.conversation_id), nulls);
    assert.deepEqual(byId.get(partial.conversation_id), { ...nulls, modelName: "m1", topK: 3 });
    assert.equal((byId.get(withId.conversation_id) as Json).apiKeyHint, "…cdef");
    assert.deepEqual(byId.get(odd.conversation_id), { ...nulls, baseUsed: [{ name: null, baseId: null }] });
    const one = await query(`{ conversation(conversationId: "${withId.conversation_id}") { ${settings} } }`);
    assert.equal(one.json.errors, undefined, one.text);
    for (const text of [profile.text, one.text, lines.join("\n")]) assert.equal(text.includes(KEY), false);
  } finally {
    await gw.close();
    await shared.close();
  }
});
