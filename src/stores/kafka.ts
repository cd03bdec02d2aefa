// LAYRA's task queue (Kafka, topic `task_generation`): the gateway's producer, the worker's
// consumer-group member and a small admin, all through @platformatic/kafka (pure TypeScript,
// maintained, installed from the npm registry alone: no native library downloaded at install time).
import { Admin, Consumer, Producer, type Message, type MessagesStream } from "@platformatic/kafka";
import type { Config } from "../config.js";
import type { WorkflowTaskMessage } from "../lib/workflow-graph.js";
import { UpstreamUnavailable, errorMessage } from "../errors.js";
import { probe, type StoreHealth } from "./health.js";
import { observeStoreCall } from "./observe.js";
import { withTimeout } from "./timeout.js";

/** One message as it travels: raw value bytes and string headers (LAYRA's `priority`). */
interface QueueMessage {
  value: Buffer;
  headers: Record<string, string>;
}

export interface ReceivedMessage extends QueueMessage {
  topic: string;
  partition: number;
  offset: bigint;
  /** Broker timestamp in ms; the same on every redelivery of this message. */
  timestamp: number;
  /** Commits this message's offset (and every earlier one of its partition) for the group. */
  commit(): Promise<void>;
}

export interface KafkaConsumerHandle {
  messages: AsyncIterable<ReceivedMessage>;
  /**
   * Why this member can no longer consume (its stream failed, or a heartbeat did: the client then stops
   * heartbeating and the group evicts it), null while it can. A lost member is replaced, not repaired.
   */
  readonly lost: string | null;
  /** Leaves the group and closes the connections; rejects when the broker cannot be reached to leave. */
  close(): Promise<void>;
}

export interface KafkaStore {
  topic: string;
  /** Produces messages to `topic` (the task topic by default), without key: the partitioner spreads them. */
  produce(messages: QueueMessage[], topic?: string): Promise<void>;
  /** LAYRA's `send_workflow_task`: the message as JSON with its `priority` header (`normal`), on the task topic. */
  produceWorkflowTask(message: WorkflowTaskMessage): Promise<void>;
  /** Joins the configured consumer group on the task topic; offsets are committed by the caller only. */
  consume(): Promise<KafkaConsumerHandle>;
  /** Creates the topic with `partitions` when it does not exist (dev stack and tests). */
  ensureTopic(topic: string, partitions: number): Promise<void>;
  health(): Promise<StoreHealth>;
  close(): Promise<void>;
}

function headersOf(message: Message<Buffer, Buffer, Buffer, Buffer>): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [key, value] of message.headers) headers[key.toString("utf8")] = value.toString("utf8");
  return headers;
}

export function createKafkaStore(config: Config): KafkaStore {
  const { brokers, topic, groupId, clientId } = config.kafka;
  const timeout = <T>(work: Promise<T>) => withTimeout("kafka", config.storeTimeoutMs, work);
  // Created on first use: a gateway that never uploads never connects to Kafka.
  let producer: Producer<Buffer, Buffer, string, string> | null = null;
  let admin: Admin | null = null;
  const consumers = new Set<KafkaConsumerHandle>();
  const adminClient = () =>
    (admin ??= new Admin({ clientId: `${clientId}-admin`, bootstrapBrokers: brokers, timeout: config.storeTimeoutMs }));

  return {
    topic,
    produce: (messages, target = topic) =>
      observeStoreCall(
        "kafka",
        async () => {
          producer ??= new Producer({
            clientId,
            bootstrapBrokers: brokers,
            timeout: config.storeTimeoutMs,
            // LAYRA's header values are strings; values stay raw bytes (its JSON, encoded once).
            serializers: {
              headerKey: (key?: string) => Buffer.from(key ?? ""),
              headerValue: (v?: string) => Buffer.from(v ?? ""),
            },
            // acks from the leader at least, so an answered upload has its messages on the broker.
            acks: -1,
          });
          try {
            await timeout(
              producer.send({
                messages: messages.map((message) => ({
                  topic: target,
                  value: message.value,
                  headers: message.headers,
                })),
              }),
            );
          } catch (error) {
            throw new UpstreamUnavailable("kafka", errorMessage(error));
          }
        },
        "produce",
      ),
    produceWorkflowTask(message) {
      return this.produce([{ value: Buffer.from(JSON.stringify(message)), headers: { priority: "normal" } }]);
    },
    consume: async () => {
      const consumer = new Consumer({
        groupId,
        clientId,
        bootstrapBrokers: brokers,
        // A file can take minutes: the group must not evict a member that is busy rendering.
        sessionTimeout: config.kafka.sessionTimeoutMs,
        heartbeatInterval: Math.min(3_000, Math.floor(config.kafka.sessionTimeoutMs / 3)),
        rebalanceTimeout: 600_000,
        // One message at a time in hand: the stream does not run far ahead of the worker.
        highWaterMark: 1,
        maxWaitTime: 1_000,
      });
      // close(true) leaves the group at once; its overloads hide the promise from the type checker.
      const closeConsumer = () => Promise.resolve(consumer.close(true) as unknown);
      let stream: MessagesStream<Buffer, Buffer, Buffer, Buffer>;
      try {
        // `committed`, falling back to the earliest offset: a new group reads what was queued before it.
        stream = await consumer.consume({
          topics: [topic],
          autocommit: false,
          mode: "committed",
          fallbackMode: "earliest",
        });
      } catch (error) {
        await closeConsumer().catch(() => undefined);
        throw new UpstreamUnavailable("kafka", errorMessage(error));
      }
      let lost: string | null = null;
      stream.on("error", (error: unknown) => (lost ??= `the message stream failed: ${errorMessage(error)}`));
      consumer.on(
        "consumer:heartbeat:error",
        ({ error }: { error?: unknown }) => (lost ??= `a heartbeat failed: ${errorMessage(error)}`),
      );
      // Emitted when rejoining the group failed; unheard, an "error" event would end the process.
      consumer.on("error", (error: unknown) => (lost ??= `rejoining the group failed: ${errorMessage(error)}`));
      async function* messages(): AsyncGenerator<ReceivedMessage> {
        for await (const message of stream) {
          yield {
            topic: message.topic,
            partition: message.partition,
            offset: message.offset,
            timestamp: Number(message.timestamp),
            value: message.value ?? Buffer.alloc(0),
            headers: headersOf(message),
            commit: () => observeStoreCall("kafka", async () => void (await message.commit()), "commit"),
          };
        }
      }
      const handle: KafkaConsumerHandle = {
        messages: messages(),
        get lost() {
          return lost;
        },
        close: async () => {
          await stream.close().catch(() => undefined);
          try {
            await closeConsumer();
          } catch (error) {
            throw new UpstreamUnavailable("kafka", errorMessage(error));
          }
          consumers.delete(handle);
        },
      };
      consumers.add(handle);
      return handle;
    },
    ensureTopic: (name, partitions) =>
      observeStoreCall(
        "kafka",
        async () => {
          const existing = await timeout(adminClient().listTopics());
          if (existing.includes(name)) return;
          try {
            await timeout(adminClient().createTopics({ topics: [name], partitions, replicas: 1 }));
          } catch (error) {
            // Another process created it first.
            if (!/already exists/i.test(errorMessage(error))) throw error;
          }
        },
        "ensureTopic",
      ),
    health: () => probe("kafka", () => timeout(adminClient().metadata({ topics: [], forceUpdate: true }))),
    close: async () => {
      await Promise.allSettled([...consumers].map((consumer) => consumer.close()));
      await Promise.allSettled([producer?.close(), admin?.close()]);
      producer = null;
      admin = null;
    },
  };
}
