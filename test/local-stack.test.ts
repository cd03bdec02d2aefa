// The local stack (dev/stack/stack.ts) that every test starts: a server whose first start fails
// because its port was taken between the probe and the bind is started again on a new port.
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { test } from "node:test";
import { Admin } from "@platformatic/kafka";
import { LocalStack } from "../dev/stack/stack.js";

test("a Kafka broker whose port is taken at its first start comes up on new ports and answers", async () => {
  const stack = await LocalStack.start({ only: [] });
  const blocked = stack.ports.kafka;
  // Another process holds the broker's port: the first start exits on its bind.
  const squatter = createServer().listen(blocked, "127.0.0.1");
  await new Promise((resolve) => squatter.once("listening", resolve));
  try {
    await stack.startServer("kafka");
    assert.notEqual(stack.ports.kafka, blocked, "the retry chose another port");
    // The properties written for the failed start named the taken port: the broker must listen
    // where the stack now says it does.
    const admin = new Admin({ clientId: "local-stack-test", bootstrapBrokers: [`127.0.0.1:${stack.ports.kafka}`] });
    try {
      await admin.createTopics({ topics: ["stack-retry"], partitions: 1, replicas: 1 });
      const topics = await admin.listTopics();
      assert.ok(topics.includes("stack-retry"), JSON.stringify(topics));
    } finally {
      await admin.close();
    }
  } finally {
    squatter.close();
    await stack.close();
  }
});
