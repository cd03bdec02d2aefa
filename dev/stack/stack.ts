// The local stack: real store servers as child processes on 127.0.0.1, data in a temporary folder.
// Installed by dev/stack/install.sh into .stack/. Each server can be stopped and started again on
// the same port and data, which is how tests take a store down and bring it back.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { randomUUID } from "node:crypto";
import { promisify } from "node:util";
import { createServer, Socket } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const STORE_SERVERS = ["mongo", "milvus", "redis", "s3", "model", "kafka"] as const;
/**
 * Servers started by default that are not stores of the gateway: `chatModel` is the OpenAI-compatible chat
 * stand-in (dev/stack/chat-model-server.ts), called at the URL a user's model settings name.
 */
const MODEL_SERVERS = ["chatModel"] as const;
const DEFAULT_SERVERS = [...STORE_SERVERS, ...MODEL_SERVERS];
/**
 * Servers started only when asked for: `milvusEngine` is the real Milvus engine (2.3, embedded by
 * PyPI's `milvus` package, dev/stack/milvus-engine.py), a second Milvus beside milvus-lite, which
 * reimplements Milvus's protocol; it takes about 40 s to start.
 */
const OPTIONAL_SERVERS = ["milvusEngine"] as const;
export type StoreServer =
  (typeof STORE_SERVERS)[number] | (typeof MODEL_SERVERS)[number] | (typeof OPTIONAL_SERVERS)[number];

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const cacheDir = process.env.LAYRA_STACK_CACHE ?? join(projectRoot, ".stack");
const S3_ACCESS_KEY = "layra-local";
const S3_SECRET_KEY = "layra-local-secret";

interface ServerSpec {
  command: string;
  args: (port: number, dataDir: string) => string[];
  env?: NodeJS.ProcessEnv;
  /** Ready when this line has been printed (default: when the port accepts connections). */
  readyLine?: string;
  startTimeoutMs?: number;
  /** Runs before every start (first start and restarts) with the server's port and data folder. */
  prepare?: (port: number, dataDir: string) => Promise<void>;
}

const kafkaLib = join(cacheDir, "kafka/lib");
const kafkaClasspath = `${kafkaLib}/*`;

/**
 * A single KRaft node (broker and controller in one JVM) for the local stack. The controller
 * listens on a second free port chosen at first start and kept in the properties file, so a
 * restart reuses it and the formatted log folder. Only this stack's own settings are here: topics are created by whoever
 * needs them (the tests, the dev start), with the partitions they need.
 */
async function prepareKafka(port: number, dataDir: string): Promise<void> {
  const properties = join(dataDir, "server.properties");
  if (existsSync(properties)) return; // a restart: same ports, same formatted log folder
  // A port the probe just released can be handed out again: the broker's own, for one.
  let controllerPort = await freePort();
  while (controllerPort === port) controllerPort = await freePort();
  await writeFile(
    properties,
    [
      "process.roles=broker,controller",
      "node.id=1",
      `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
      `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
      `advertised.listeners=PLAINTEXT://127.0.0.1:${port}`,
      "controller.listener.names=CONTROLLER",
      "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
      `log.dirs=${join(dataDir, "log")}`,
      // One node: every internal topic has one replica, and few partitions so a first consumer
      // group does not wait for 50 offset partitions to be created.
      "offsets.topic.replication.factor=1",
      "offsets.topic.num.partitions=4",
      "transaction.state.log.replication.factor=1",
      "transaction.state.log.min.isr=1",
      "group.initial.rebalance.delay.ms=0",
      "auto.create.topics.enable=false",
      "num.network.threads=2",
      "num.io.threads=2",
      "background.threads=2",
      "log.cleaner.enable=false",
      "",
    ].join("\n"),
  );
  await promisify(execFile)("java", [
    "-cp",
    kafkaClasspath,
    "kafka.tools.StorageTool",
    "format",
    "--ignore-formatted",
    // A KRaft cluster id is 16 random bytes in URL-safe base64. Joined to its option: an id that
    // starts with "-" (1 in 64) would otherwise be read as an option and the format fails.
    `--cluster-id=${Buffer.from(randomUUID().replaceAll("-", ""), "hex").toString("base64url")}`,
    "-c",
    properties,
  ]);
}

const specs: Record<StoreServer, ServerSpec> = {
  mongo: {
    command: join(cacheDir, "bin/ferretdb"),
    args: (port, dataDir) => ["--listen", `127.0.0.1:${port}`, "--data-dir", dataDir],
  },
  milvus: {
    command: join(cacheDir, "venv/bin/milvus-lite"),
    args: (port, dataDir) => ["server", "--data-dir", dataDir, "--host", "127.0.0.1", "--port", String(port)],
  },
  milvusEngine: {
    command: join(cacheDir, "milvus-venv/bin/python"),
    args: (port, dataDir) => [join(projectRoot, "dev/stack/milvus-engine.py"), dataDir, String(port)],
    readyLine: "ready",
    startTimeoutMs: 300_000,
  },
  redis: {
    command: "redis-server",
    args: (port, dataDir) => [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--dir",
      dataDir,
      "--save",
      "",
      "--appendonly",
      "no",
      "--notify-keyspace-events",
      "Khgxt",
    ],
  },
  s3: {
    command: join(cacheDir, "bin/versitygw"),
    args: (port, dataDir) => [
      "--access",
      S3_ACCESS_KEY,
      "--secret",
      S3_SECRET_KEY,
      "--port",
      `127.0.0.1:${port}`,
      "posix",
      "--sidecar",
      join(dataDir, "meta"),
      join(dataDir, "data"),
    ],
  },
  model: {
    command: process.execPath,
    args: () => ["--import", "tsx", join(projectRoot, "dev/stack/model-server.ts")],
  },
  // The OpenAI-compatible chat stand-in that answers `ask` (dev/stack/chat-model-server.ts).
  chatModel: {
    command: process.execPath,
    args: () => ["--import", "tsx", join(projectRoot, "dev/stack/chat-model-server.ts")],
  },
  kafka: {
    command: "java",
    // A small heap, the serial collector and C1 only: a test broker starts faster and stays small.
    args: (_port, dataDir) => [
      "-Xmx512m",
      "-Xms64m",
      "-XX:+UseSerialGC",
      "-XX:TieredStopAtLevel=1",
      `-Dlog4j.configuration=file:${join(projectRoot, "dev/stack/kafka/log4j.properties")}`,
      "-cp",
      kafkaClasspath,
      "kafka.Kafka",
      join(dataDir, "server.properties"),
    ],
    prepare: prepareKafka,
    // Printed by dev/stack/kafka/log4j.properties once the broker serves (node.id is 1, prepareKafka).
    readyLine: "[KafkaRaftServer nodeId=1] Kafka Server started",
  },
};

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const { port } = server.address() as { port: number };
  await new Promise<void>((done) => server.close(() => done()));
  return port;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = new Socket();
    socket.once("connect", () => {
      socket.destroy();
      done(true);
    });
    socket.once("error", () => {
      socket.destroy();
      done(false);
    });
    socket.connect(port, "127.0.0.1");
  });
}

/** A server process that ended before it was ready (a taken port, among other causes). */
class ExitedBeforeReady extends Error {}

interface Running {
  process: ChildProcess;
  output: string[];
}

export class LocalStack {
  private readonly running = new Map<StoreServer, Running>();
  /** Servers that have started once: a restart keeps their port (and data). */
  private readonly startedOnce = new Set<StoreServer>();
  /** Every stack of this process not yet closed, so a signal can stop them even mid-start. */
  private static readonly live = new Set<LocalStack>();

  /** Stops every server of every stack this process started (for signal handlers). */
  static async closeAll(): Promise<void> {
    await Promise.all([...LocalStack.live].map((stack) => stack.close()));
  }

  private constructor(
    readonly root: string,
    readonly ports: Record<StoreServer, number>,
  ) {}

  /** Starts every server (or `only` those) with fresh data under a temporary folder. */
  static async start(options: { only?: readonly StoreServer[] } = {}): Promise<LocalStack> {
    for (const server of options.only ?? DEFAULT_SERVERS) {
      if (specs[server].command.startsWith(cacheDir) && !existsSync(specs[server].command)) {
        throw new Error(`${specs[server].command} is missing: run dev/stack/install.sh first`);
      }
    }
    if (!existsSync(kafkaLib)) throw new Error(`${kafkaLib} is missing: run dev/stack/install.sh first`);
    const root = await mkdtemp(join(tmpdir(), "layra-stack-"));
    const ports = {} as Record<StoreServer, number>;
    for (const server of [...DEFAULT_SERVERS, ...OPTIONAL_SERVERS]) ports[server] = await freePort();
    const stack = new LocalStack(root, ports);
    LocalStack.live.add(stack);
    try {
      await Promise.all((options.only ?? DEFAULT_SERVERS).map((server) => stack.startServer(server)));
    } catch (error) {
      await stack.close();
      throw error;
    }
    return stack;
  }

  /** The environment that points the gateway's config at this stack (Milvus: the real engine when it runs). */
  get env() {
    const s3 = `http://127.0.0.1:${this.ports.s3}`;
    const milvus = this.running.has("milvusEngine") ? this.ports.milvusEngine : this.ports.milvus;
    return {
      MONGODB_URL: `mongodb://127.0.0.1:${this.ports.mongo}`,
      MILVUS_URI: `http://127.0.0.1:${milvus}`,
      REDIS_URL: `redis://127.0.0.1:${this.ports.redis}`,
      MINIO_URL: s3,
      MINIO_PUBLIC_URL: s3,
      MINIO_ACCESS_KEY: S3_ACCESS_KEY,
      MINIO_SECRET_KEY: S3_SECRET_KEY,
      MODEL_SERVER_URL: `http://127.0.0.1:${this.ports.model}`,
      /** Where the demo user's chat model answers (dev/seed-demo.ts); the gateway itself reads no such setting. */
      CHAT_MODEL_URL: `http://127.0.0.1:${this.ports.chatModel}/v1`,
      // The chat stand-in listens on loopback, which the gateway refuses to call unless allowed.
      CHAT_MODEL_ALLOWED_HOSTS: "127.0.0.1/32",
      KAFKA_BROKER_URL: `127.0.0.1:${this.ports.kafka}`,
    };
  }

  /**
   * Starts one server. A first start whose process exits before it is ready (most often: another
   * process took the port between the free-port probe and the bind) is retried on a new port, up
   * to three times, from an empty data folder: a server's preparation may have written its ports
   * there (Kafka's properties), and a start that failed left no data. A restart keeps its port,
   * since clients and data refer to it.
   */
  async startServer(server: StoreServer): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.startOnce(server);
        this.startedOnce.add(server);
        return;
      } catch (error) {
        if (!(error instanceof ExitedBeforeReady) || this.startedOnce.has(server) || attempt >= 3) throw error;
        await rm(join(this.root, server), { recursive: true, force: true });
        this.ports[server] = await freePort();
      }
    }
  }

  private async startOnce(server: StoreServer): Promise<void> {
    if (this.running.has(server)) return;
    const dataDir = join(this.root, server);
    await mkdir(server === "s3" ? join(dataDir, "meta") : dataDir, { recursive: true });
    if (server === "s3") await mkdir(join(dataDir, "data"), { recursive: true });
    const port = this.ports[server];
    const spec = specs[server];
    await spec.prepare?.(port, dataDir);
    const child = spawn(spec.command, spec.args(port, dataDir), {
      env: { ...process.env, ...spec.env, PORT: String(port) },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const output: string[] = [];
    const keep = (chunk: Buffer) => {
      output.push(chunk.toString());
      if (output.length > 50) output.shift();
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    this.running.set(server, { process: child, output });
    const deadline = Date.now() + (spec.startTimeoutMs ?? 60_000);
    const ready = async () =>
      spec.readyLine ? output.join("").split("\n").includes(spec.readyLine) : await accepts(port);
    const exited = () => child.exitCode !== null || child.signalCode !== null;
    // Ready means answering *and* still running: a port another process holds also accepts connections.
    while (!(await ready()) || exited()) {
      if (exited() || Date.now() > deadline) {
        this.running.delete(server);
        child.kill("SIGKILL");
        const reason = `${server} did not start on port ${port}:\n${output.join("")}`;
        throw exited() ? new ExitedBeforeReady(reason) : new Error(reason);
      }
      await new Promise((done) => setTimeout(done, 100));
    }
  }

  async stopServer(server: StoreServer): Promise<void> {
    const entry = this.running.get(server);
    if (!entry) return;
    this.running.delete(server);
    const exited = new Promise<void>((done) => {
      if (entry.process.exitCode !== null || entry.process.signalCode !== null) done();
      else entry.process.once("exit", () => done());
    });
    entry.process.kill("SIGTERM");
    const timer = setTimeout(() => entry.process.kill("SIGKILL"), 5_000);
    await exited;
    clearTimeout(timer);
  }

  async close(): Promise<void> {
    LocalStack.live.delete(this);
    await Promise.all([...this.running.keys()].map((server) => this.stopServer(server)));
    await rm(this.root, { recursive: true, force: true });
  }
}
