// A write that names a knowledge base (a conversation's or a model's base_used) racing that base's
// delete never leaves a dangling reference: both take the base's lock, and the write drops
// references whose base is gone once it holds it.
import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { gatewayForFile } from "./helpers.js";

const file = gatewayForFile();

test("createConversation with baseUsed racing deleteKnowledgeBase: no dangling reference whichever wins", async () => {
  const gw = await file.ready;
  const token = await gw.token("race");
  // Sent together the delete takes the base's lock first nearly every time, so each try sends it a
  // little later than the last, until both outcomes have occurred: the conversation refused (the
  // delete got there first) and the conversation written (its reference then removed or dropped).
  const STAGGER_MS = 20;
  const MAX_TRIES = 80;
  const outcomes = { refused: 0, written: 0 };
  for (let i = 0; i < MAX_TRIES && (i < 24 || outcomes.refused === 0 || outcomes.written === 0); i++) {
    const created = await gw.query<{ createKnowledgeBase: { knowledgeBaseId: string } }>(
      `mutation { createKnowledgeBase(name: "kb ${i}") { knowledgeBaseId } }`,
      { token },
    );
    assert.equal(created.errors, undefined, JSON.stringify(created.errors));
    const kb = created.data!.createKnowledgeBase.knowledgeBaseId;
    const [conversation, deleted] = await Promise.all([
      gw.query<{ createConversation: { conversationId: string } }>(
        `mutation($kb: String!) { createConversation(name: "c", modelSettings: { baseUsed: [{ name: "k", baseId: $kb }] }) { conversationId } }`,
        { token, variables: { kb } },
      ),
      sleep(i * STAGGER_MS).then(() =>
        gw.query(`mutation($kb: String!) { deleteKnowledgeBase(knowledgeBaseId: $kb) }`, { token, variables: { kb } }),
      ),
    ]);
    for (const response of [conversation, deleted]) {
      const code = (response.errors?.[0]?.extensions?.code as string | undefined) ?? "ok";
      assert.ok(["ok", "CONFLICT", "NOT_FOUND"].includes(code), JSON.stringify(response.errors));
    }
    if (conversation.errors) outcomes.refused++;
    else outcomes.written++;
    if (deleted.errors) {
      // The delete lost the race for the lock: finish it now, which removes the new reference too.
      const retried = await gw.query(`mutation($kb: String!) { deleteKnowledgeBase(knowledgeBaseId: $kb) }`, {
        token,
        variables: { kb },
      });
      assert.equal(retried.errors, undefined, JSON.stringify(retried.errors));
    }
    const dangling = await gw.app.stores.mongo.db
      .collection("conversations")
      .countDocuments({ "model_config.base_used.baseId": kb });
    assert.equal(dangling, 0, `try ${i}: a conversation still names the deleted base ${kb}`);
  }
  assert.ok(outcomes.refused > 0 && outcomes.written > 0, `both outcomes occurred: ${JSON.stringify(outcomes)}`);
});
