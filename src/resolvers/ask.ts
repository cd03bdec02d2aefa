// `ask`: LAYRA's chat (ChatService.create_chat_stream) as a subscription (docs/ask.md). An answer runs on the
// replica that took the ask, apart from any subscriber: the asker gets its events from memory as they come, and
// they go to a Redis stream that anyone resuming by message id follows from its start, on any replica; it ends
// with exactly one turn saved as LAYRA's add_turn saves it. A stop comes from the mutation (through Redis from
// any replica) or from the asker unsubscribing while still connected; its connection dropping stops nothing.
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { AuthenticatedContext, Context, Viewer } from "../context.js";
import {
  BadUserInput,
  ChatModelFailed,
  Conflict,
  errorMessage,
  LimitExceeded,
  NotFound,
  UpstreamUnavailable,
} from "../errors.js";
import { EventChannel } from "../live/event-channel.js";
import { createLoaders } from "../loaders/index.js";
import { currentObservation } from "../observability/scope.js";
import type { FileUsed, TurnDoc, UserContentPart } from "../stores/documents.js";
import {
  ABORT_MARK,
  AnswerText,
  chatSettings,
  errorAnswer,
  historyMessages,
  modelOptions,
  PromptImages,
  type ChatSettings,
} from "./ask-prompt.js";
import { saveTurn, turnPlace } from "./conversations.js";
import { ownDocument } from "./owned-reads.js";
import { searchKnowledgeBases } from "./search.js";

export interface AskArgs {
  conversationId: string;
  question: string;
  parentMessageId?: string | null;
  tempDb?: string | null;
}

type AnswerEventType = "STARTED" | "PAGES" | "REASONING" | "TEXT" | "USAGE" | "ERROR" | "TURN";

/** One event of an answer, as stored in its Redis stream (JSON) and handed to the schema. */
export interface AnswerEvent {
  type: AnswerEventType;
  messageId: string;
  conversationId: string;
  /** True on the answer's last event. */
  last: boolean;
  pages?: FileUsed[];
  skippedKnowledgeBaseIds?: string[];
  delta?: string;
  usage?: { totalTokens: number; completionTokens: number; promptTokens: number };
  error?: { code: string; message: string };
  turn?: TurnDoc;
}

/** Why an answer was stopped before its end: a user's stop, its time limit, or the gateway's shutdown past ASK_DRAIN_MS. */
type StopReason = "user" | "time" | "shutdown";

interface RunningAnswer {
  stop(reason: StopReason): void;
  /** Settles once the answer's turn is saved and its last event written. */
  readonly done: Promise<void>;
}

/** One app's running answers, for the replica bound, local stops and the drain on shutdown. */
interface AppAnswers {
  running: Map<string, RunningAnswer>;
  draining: boolean;
}

/** Each app's answers, keyed by its Live (which every request context carries). */
const answersByApp = new WeakMap<object, AppAnswers>();
const answersOf = (live: object) => {
  let answers = answersByApp.get(live);
  if (!answers) answersByApp.set(live, (answers = { running: new Map(), draining: false }));
  return answers;
};
const runningOf = (context: Context) => answersOf(context.live).running;

/**
 * The gateway's shutdown (docs/ask.md, "Shutdown"): new asks are refused at once, running answers get
 * `drainMs` to finish, then the rest are stopped and saved as aborted. Resolves once every turn is saved.
 */
export async function drainAnswers(live: object, drainMs: number): Promise<void> {
  const answers = answersOf(live);
  answers.draining = true;
  const all = () => Promise.all([...answers.running.values()].map((answer) => answer.done));
  const drained = new AbortController();
  await Promise.race([all(), sleep(drainMs, undefined, { signal: drained.signal }).catch(() => undefined)]);
  drained.abort();
  for (const answer of answers.running.values()) answer.stop("shutdown");
  await all();
}

/** Times one phase of an answer as the tracing span `ask <phase>` (docs/ask.md, "Phases"). */
const phaseSpan = (phase: string) =>
  currentObservation()?.tracing.startSpan(`ask ${phase}`, { "layra.ask.phase": phase });

async function inPhase<T>(phase: string, work: () => Promise<T>): Promise<T> {
  const span = phaseSpan(phase);
  try {
    return await work();
  } finally {
    span?.end();
  }
}

/** Tries at saving a turn while a cascade holds its temp knowledge base's lock, 250 ms apart. */
const SAVE_ATTEMPTS = 40;

/**
 * Starts an answer to `args.question` in one of the caller's conversations and follows it. Refused before
 * anything runs: another user's or a missing conversation (NOT_FOUND), a bad question, parent or temp base
 * (BAD_USER_INPUT), settings without a model URL, and the running-answer limits (LIMIT_EXCEEDED).
 * `connectionOpen` tells, when the subscriber leaves, whether it unsubscribed (stop) or lost its connection.
 */
export async function ask(
  context: AuthenticatedContext,
  args: AskArgs,
  connectionOpen: () => boolean,
): Promise<AsyncIterable<AnswerEvent>> {
  const { username } = context.viewer;
  const limits = context.config.ask;
  const metrics = currentObservation()?.metrics;
  const answers = answersOf(context.live);
  if (answers.draining) throw new UpstreamUnavailable("gateway", "the gateway is shutting down");
  if (args.question.trim() === "") throw new BadUserInput("question", "must not be empty");
  if (args.question.length > limits.maxQuestionChars) {
    metrics?.answerRefusals.inc({ limit: "question" });
    throw new BadUserInput(
      "question",
      `must be at most ${limits.maxQuestionChars} characters, got ${args.question.length}`,
    );
  }
  const startSpan = phaseSpan("start");
  // The question is embedded while the conversation is read: retrieval needs both, neither needs the other.
  // A failure is the answer's retrieval error; an ask refused below has spent one embedding call.
  const questionVectors = context.stores.model.embedText(args.question);
  questionVectors.catch(() => undefined);
  const { running } = answers;
  if (running.size >= limits.maxAnswersPerReplica) {
    metrics?.answerRefusals.inc({ limit: "replica" });
    throw new LimitExceeded("answers running on this gateway", running.size + 1, limits.maxAnswersPerReplica);
  }
  // The user's slot is claimed while the conversation is read (Redis and Mongo, neither waits for the
  // other); an ask the conversation refuses gives it back.
  const store = context.stores.redis.answers;
  const slotTtlMs = limits.maxDurationMs + 60_000;
  const slot = store.claimUserSlot(username, limits.maxAnswersPerUser, slotTtlMs);
  slot.catch(() => undefined);
  const { conversation, parent, tempDb, settings } = await askedConversation(context, args).catch(
    async (error: unknown) => {
      if (await slot.catch(() => false)) await store.releaseUserSlot(username).catch(() => undefined);
      throw error;
    },
  );
  const claimed = await slot.catch((error: unknown) => {
    throw redisDown(error);
  });
  if (!claimed) {
    metrics?.answerRefusals.inc({ limit: "user" });
    throw new LimitExceeded("answers running for this user", limits.maxAnswersPerUser + 1, limits.maxAnswersPerUser);
  }
  const messageId = randomUUID();
  const base = { messageId, conversationId: conversation.conversation_id };
  const started: AnswerEvent = { ...base, type: "STARTED", last: false };
  try {
    await store.append(messageId, [JSON.stringify(started)], limits.streamMaxEvents, limits.streamTtlSeconds, username);
  } catch (error) {
    await store.releaseUserSlot(username).catch(() => undefined);
    throw redisDown(error);
  }
  startSpan?.end();
  // The asker's events come from the answer itself, in memory: no Redis round trip before they are sent.
  const channel = new EventChannel<AnswerEvent>();
  channel.push(started);
  const answer = new Answer(context, base, running, channel);
  channel.onEnd(() => {
    if (!answer.ended && connectionOpen()) answer.stop("user");
  });
  void answer
    .run({ question: args.question, questionVectors, parent, tempDb, settings, turns: conversation.turns })
    .finally(() => store.releaseUserSlot(username).catch(() => undefined));
  return channel;
}

/** The caller's conversation asked in, where the turn goes and its model settings; refused as `ask` says. */
async function askedConversation(context: AuthenticatedContext, args: AskArgs) {
  const conversation = await ownDocument(context, "conversation", "conversation", args.conversationId);
  const { parent, tempDb } = turnPlace(conversation, args.parentMessageId, args.tempDb);
  const settings = chatSettings(conversation.model_config ?? {});
  if (!/^https?:\/\/\S+$/.test(settings.modelUrl) || settings.modelName === "")
    throw new BadUserInput(
      "conversationId",
      "the conversation's model settings name no model (model_name and an http(s) model_url are needed)",
    );
  return { conversation, parent, tempDb, settings };
}

/** A follower of one of the caller's answers, from its first event; NOT_FOUND for another user's or an expired one. */
export async function followAnswer(
  context: AuthenticatedContext,
  messageId: string,
): Promise<AsyncIterable<AnswerEvent>> {
  await requireOwnAnswer(context, messageId);
  return follow(context, messageId);
}

/**
 * Asks the answer to stop, from any replica: it is saved as aborted, as LAYRA saves an answer whose client
 * went away. True when the stop was sent (an answer already ended is not changed).
 */
export async function stopAnswer(context: AuthenticatedContext, messageId: string): Promise<boolean> {
  await requireOwnAnswer(context, messageId);
  runningOf(context).get(messageId)?.stop("user");
  const ttlSeconds = Math.ceil(context.config.ask.maxDurationMs / 1000) + 60;
  await context.stores.redis.answers.requestStop(messageId, ttlSeconds).catch((error: unknown) => {
    throw redisDown(error);
  });
  return true;
}

async function requireOwnAnswer(context: AuthenticatedContext, messageId: string): Promise<void> {
  const owner = await context.stores.redis.answers.owner(messageId).catch((error: unknown) => {
    throw redisDown(error);
  });
  if (owner !== context.viewer.username) throw new NotFound("answer", messageId);
}

const redisDown = (error: unknown) =>
  error instanceof UpstreamUnavailable ? error : new UpstreamUnavailable("redis", errorMessage(error));

/** The answer's events from its start until its last one, read from its Redis stream on a connection of its own. */
function follow(context: Context, messageId: string): AsyncIterable<AnswerEvent> {
  const channel = new EventChannel<AnswerEvent>();
  const reader = context.stores.redis.answers.reader();
  const idleLimitMs = context.config.ask.maxDurationMs;
  channel.onEnd(() => reader.close());
  void (async () => {
    let after = "0";
    let idleSince = Date.now();
    while (!channel.isEnded) {
      const entries = await reader.read(messageId, after);
      for (const entry of entries) {
        after = entry.id;
        const event = reviveEvent(entry.event);
        channel.push(event);
        if (event.last) return channel.end();
      }
      if (entries.length > 0) idleSince = Date.now();
      // An answer whose replica stopped never writes its last event: its followers end after the answer's own bound.
      else if (Date.now() - idleSince > idleLimitMs)
        return channel.fail(new UpstreamUnavailable("answer", "the answer stopped without its last event"));
    }
  })().catch((error: unknown) => {
    if (!channel.isEnded) channel.fail(redisDown(error));
  });
  return channel;
}

function reviveEvent(json: string): AnswerEvent {
  const event = JSON.parse(json) as AnswerEvent;
  if (event.turn) event.turn.timestamp = new Date(event.turn.timestamp);
  return event;
}

interface AnswerPlan {
  question: string;
  /** The question's embedding, asked for when the ask came in. */
  questionVectors: Promise<number[][]>;
  parent: string;
  tempDb: string;
  settings: ChatSettings;
  turns: TurnDoc[];
}

/** Deltas queued together (behind a pending write, or within one turn of the event loop) merge into one event. */
const MERGEABLE = new Set<AnswerEventType>(["REASONING", "TEXT"]);

/** Queues a copy of `event`, merged into the last queued one when both are deltas of one kind. */
function queueMerged(queue: AnswerEvent[], event: AnswerEvent): void {
  const previous = queue.at(-1);
  if (previous && previous.type === event.type && MERGEABLE.has(event.type)) previous.delta += event.delta ?? "";
  else queue.push({ ...event });
}

/** One running answer: retrieval, the model call, and its turn; its events handed to the asker and written to Redis in order. */
class Answer implements RunningAnswer {
  private readonly abort = new AbortController();
  private readonly pending: AnswerEvent[] = [];
  /** The asker's events after the first of this turn of the event loop; null when none was sent in it. */
  private askerQueue: AnswerEvent[] | null = null;
  private writing: Promise<void> | null = null;
  private readonly access: Context;
  private readonly viewer: Viewer;
  private lastEmitted = false;
  private settle!: () => void;
  readonly done = new Promise<void>((resolve) => (this.settle = resolve));

  constructor(
    context: AuthenticatedContext,
    private readonly base: { messageId: string; conversationId: string },
    private readonly running: Map<string, RunningAnswer>,
    private readonly asker: EventChannel<AnswerEvent>,
  ) {
    this.viewer = context.viewer;
    // Its own loaders: the answer outlives the request that started it.
    this.access = { ...context, loaders: createLoaders(context.stores, context.viewer) };
    running.set(base.messageId, this);
  }

  /** True once the last event was emitted: a subscriber leaving after it stops nothing. */
  get ended(): boolean {
    return this.lastEmitted;
  }

  stop(reason: StopReason): void {
    if (!this.abort.signal.aborted) this.abort.abort(reason);
  }

  private get stopReason(): StopReason | null {
    return this.abort.signal.aborted ? (this.abort.signal.reason as StopReason) : null;
  }

  /** Hands the event to the asker and queues it for the Redis stream. */
  private emit(event: Omit<AnswerEvent, "messageId" | "conversationId" | "last">, last = false): void {
    const full: AnswerEvent = { ...this.base, ...event, last };
    this.lastEmitted ||= last;
    this.toAsker(full);
    queueMerged(this.pending, full);
    this.writing ??= this.flush();
  }

  /**
   * The first event of a turn of the event loop goes to the asker at once (the first token waits for
   * nothing); the rest of that turn's (a model read carries many deltas) follow merged, once it is over.
   */
  private toAsker(event: AnswerEvent): void {
    if (this.askerQueue) return queueMerged(this.askerQueue, event);
    this.deliver(event);
    this.askerQueue = [];
    setImmediate(() => this.flushAsker());
  }

  private flushAsker(): void {
    const queued = this.askerQueue ?? [];
    this.askerQueue = null;
    for (const event of queued) this.deliver(event);
  }

  private deliver(event: AnswerEvent): void {
    this.asker.push(event);
    if (event.last) this.asker.end();
  }

  /** Writes what is pending, one write at a time, until nothing is. */
  private async flush(): Promise<void> {
    const { answers } = this.access.stores.redis;
    const { streamMaxEvents, streamTtlSeconds } = this.access.config.ask;
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0).map((event) => JSON.stringify(event));
      // A failed write loses these events for followers only: the answer goes on and its turn is saved.
      await answers.append(this.base.messageId, batch, streamMaxEvents, streamTtlSeconds).catch(() => undefined);
    }
    this.writing = null;
  }

  /** Runs the answer to its saved turn; `done` settles after, however it went. */
  async run(plan: AnswerPlan): Promise<void> {
    try {
      await this.answer(plan);
    } catch (error) {
      // Unreachable by design (every failure is saved as the turn's error); the asker is told rather than left waiting.
      if (!this.lastEmitted) this.asker.fail(error);
    } finally {
      this.flushAsker();
      this.running.delete(this.base.messageId);
      this.settle();
    }
  }

  private async answer(plan: AnswerPlan): Promise<void> {
    const { config, stores } = this.access;
    const metrics = currentObservation()?.metrics;
    metrics?.answersRunning.inc();
    const started = performance.now();
    const timer = setTimeout(() => this.stop("time"), config.ask.maxDurationMs);
    const stopPoll = setInterval(() => {
      void stores.redis.answers
        .stopRequested(this.base.messageId)
        .then((stop) => stop && this.stop("user"))
        .catch(() => undefined);
    }, config.ask.stopPollMs);
    const text = new AnswerText();
    const tokens = { totalTokens: 0, completionTokens: 0, promptTokens: 0 };
    let fileUsed: FileUsed[] = [];
    const userContent: UserContentPart[] = [];
    let failure: { code: string; message: string } | null = null;
    // From the model request to its first reasoning or answer delta (or its end, when none came).
    let modelSpan: ReturnType<typeof phaseSpan> | null = null;
    const endModelSpan = () => {
      modelSpan?.end();
      modelSpan = null;
    };
    try {
      // The history's images are read while retrieval runs; the retrieved pages' once it has found them.
      const images = new PromptImages(this.access, this.viewer.username);
      const history = historyMessages(plan.turns, plan.parent, config.ask.historyDepth);
      images.prefetch(history);
      const pages = await inPhase("retrieval", () => this.retrieve(plan));
      fileUsed = pages.fileUsed;
      userContent.push(...pages.imageKeys.map((key) => ({ type: "image_url" as const, image_url: key })));
      this.emit({ type: "PAGES", pages: fileUsed, skippedKnowledgeBaseIds: pages.skipped });
      const messages = await inPhase("images", () =>
        images.messages(
          [
            ...(plan.settings.systemPrompt
              ? [{ role: "system", content: [{ type: "text" as const, text: plan.settings.systemPrompt }] }]
              : []),
            ...history,
            { role: "user", content: [...userContent, { type: "text", text: plan.question }] },
          ],
          {
            maxPixels: config.ask.imageMaxPixels,
            maxBytes: config.ask.imageMaxBytes,
            promptMaxBytes: config.ask.promptMaxImageBytes,
          },
        ),
      );
      this.throwIfStopped();
      modelSpan = phaseSpan("model");
      let first = true;
      for await (const delta of stores.chatModel.stream({
        baseUrl: plan.settings.modelUrl,
        apiKey: plan.settings.apiKey,
        model: plan.settings.modelName,
        messages,
        options: modelOptions(plan.settings),
        signal: this.abort.signal,
      })) {
        if (delta.kind === "usage") {
          const { kind: _kind, ...usage } = delta;
          Object.assign(tokens, usage);
          this.emit({ type: "USAGE", usage });
          continue;
        }
        if (first) {
          first = false;
          endModelSpan();
          metrics?.answerFirstToken.observe((performance.now() - started) / 1000);
        }
        if (delta.kind === "reasoning") text.reasoning(delta.text);
        else text.text(delta.text);
        this.emit({ type: delta.kind === "reasoning" ? "REASONING" : "TEXT", delta: delta.text });
      }
      this.throwIfStopped();
    } catch (error) {
      const reason = this.stopReason;
      if (reason === "user" || reason === "shutdown") text.cut(ABORT_MARK);
      else {
        failure =
          reason === "time"
            ? { code: "TIME_LIMIT", message: `the answer took longer than ${config.ask.maxDurationMs} ms` }
            : error instanceof ChatModelFailed
              ? { code: error.failure, message: error.message }
              : error instanceof BadUserInput || error instanceof UpstreamUnavailable
                ? { code: "RETRIEVAL", message: error.message }
                : { code: "INTERNAL", message: "the answer failed" };
        text.cut(errorAnswer(failure.message));
        this.emit({ type: "ERROR", error: failure });
      }
    } finally {
      endModelSpan();
      clearTimeout(timer);
      clearInterval(stopPoll);
    }
    const turn: TurnDoc = {
      message_id: this.base.messageId,
      parent_message_id: plan.parent,
      user_message: { role: "user", content: [...userContent, { type: "text", text: plan.question }] },
      temp_db: plan.tempDb,
      ai_message: { role: "assistant", content: text.content() },
      file_used: fileUsed,
      status: this.stopReason === "user" || this.stopReason === "shutdown" ? "aborted" : "completed",
      timestamp: new Date(),
      total_token: tokens.totalTokens,
      completion_tokens: tokens.completionTokens,
      prompt_tokens: tokens.promptTokens,
    };
    await this.save(turn);
    metrics?.answers.inc({ outcome: failure ? "failed" : turn.status });
    if (failure) metrics?.answerErrors.inc({ class: failure.code });
    metrics?.answerTokens.inc({ kind: "prompt" }, tokens.promptTokens);
    metrics?.answerTokens.inc({ kind: "completion" }, tokens.completionTokens);
    metrics?.answersRunning.dec();
    await this.writing;
  }

  private throwIfStopped(): void {
    if (this.abort.signal.aborted) throw new Error("stopped");
  }

  /**
   * The question's pages: one exact MaxSim ranking over the turn's temp base and the settings' `base_used`,
   * top_K at or above the threshold. Bases the caller does not own or that are gone are skipped and named.
   */
  private async retrieve(plan: AnswerPlan) {
    const ids = [...new Set([...(plan.tempDb ? [plan.tempDb] : []), ...plan.settings.baseIds])];
    const found = await this.access.loaders.knowledgeBase.loadMany(ids);
    const owned = ids.filter((_id, i) => found[i] && !(found[i] instanceof Error));
    const skipped = ids.filter((id) => !owned.includes(id));
    const hits = owned.length === 0 ? [] : await this.search(plan, owned);
    return {
      skipped,
      fileUsed: hits.map((hit): FileUsed => ({
        score: hit.score,
        knowledge_db_id: hit.file.knowledge_db_id,
        file_name: hit.file.filename,
        image_url: hit.image.minio_url,
        file_url: hit.file.minio_url,
      })),
      imageKeys: hits.map((hit) => hit.image.minio_filename),
    };
  }

  /** The question's top pages in `knowledgeBaseIds`, searched with its embedding. */
  private async search(plan: AnswerPlan, knowledgeBaseIds: string[]) {
    const queryVectors = await plan.questionVectors;
    const { maxQueryVectors } = this.access.config.search;
    // As a text query's search says it: the search's own check would name `queryVectors`, which no one gave.
    if (queryVectors.length > maxQueryVectors)
      throw new BadUserInput(
        "question",
        `embeds to ${queryVectors.length} token vectors; at most ${maxQueryVectors} are searched`,
      );
    return searchKnowledgeBases(this.access, {
      knowledgeBaseIds,
      queryVectors,
      topK: plan.settings.topK,
      scoreThreshold: plan.settings.scoreThreshold,
    });
  }

  /** Saves the turn once; a conversation deleted meanwhile gets none, and the followers are told either way. */
  private async save(turn: TurnDoc): Promise<void> {
    const { conversationId } = this.base;
    for (let attempt = 1; ; attempt++) {
      try {
        if (await saveTurn(this.access, this.viewer.username, conversationId, turn))
          this.emit({ type: "TURN", turn }, true);
        else
          this.emit(
            { type: "ERROR", error: { code: "NOT_FOUND", message: "the conversation was deleted: no turn was saved" } },
            true,
          );
        return;
      } catch (error) {
        if (error instanceof Conflict && attempt < SAVE_ATTEMPTS) {
          await sleep(250);
          continue;
        }
        currentObservation()?.metrics.answerErrors.inc({ class: "SAVE" });
        this.emit(
          {
            type: "ERROR",
            error: {
              code: error instanceof Conflict ? "CONFLICT" : "UPSTREAM_UNAVAILABLE",
              message: "the turn could not be saved",
            },
          },
          true,
        );
        return;
      }
    }
  }
}
