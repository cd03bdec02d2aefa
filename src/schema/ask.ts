// Answers (docs/ask.md): `ask` starts one and follows it, `answer` follows one again by message id (from any
// replica), `stopAnswer` stops one.
import { ask, followAnswer, stopAnswer, type AnswerEvent } from "../resolvers/ask.js";
import { whileTokenValid } from "../resolvers/auth.js";
import type { Context } from "../context.js";
import { builder } from "./builder.js";
import { freshLoaders } from "./progress.js";
import { listSize } from "./lists.js";
import { MAX_TOP_K } from "../resolvers/ask-prompt.js";
import { RetrievedPage, Turn } from "./turn.js";

const AnswerEventType = builder.enumType("AnswerEventType", {
  description: "What an answer event carries, in the order they come.",
  values: {
    STARTED: { description: "First: the answer's server-generated message id (stop or follow it by this id)." },
    PAGES: { description: "The retrieved pages (LAYRA's file_used) and the knowledge bases skipped." },
    REASONING: { description: "A piece of the model's reasoning (LAYRA's `thinking`)." },
    TEXT: { description: "A piece of the answer." },
    USAGE: { description: "The model's token counts (LAYRA's `token`)." },
    ERROR: {
      description: "The answer failed: `error` says how; a TURN (saved with LAYRA's error text) follows unless `last`.",
    },
    TURN: { description: "Last: the turn as saved." },
  } as const,
});

const AnswerUsage = builder.objectRef<NonNullable<AnswerEvent["usage"]>>("AnswerUsage").implement({
  fields: (t) => ({
    totalTokens: t.exposeInt("totalTokens"),
    completionTokens: t.exposeInt("completionTokens"),
    promptTokens: t.exposeInt("promptTokens"),
  }),
});

const AnswerError = builder.objectRef<NonNullable<AnswerEvent["error"]>>("AnswerError").implement({
  description: 'Why an answer failed; codes in docs/errors.md, "Answers".',
  fields: (t) => ({ code: t.exposeString("code"), message: t.exposeString("message") }),
});

const AnswerEventRef = builder.objectRef<AnswerEvent>("AnswerEvent").implement({
  description:
    "One event of an answer: STARTED, PAGES, REASONING and TEXT deltas, USAGE, then the saved TURN (or a last ERROR).",
  fields: (t) => ({
    type: t.expose("type", { type: AnswerEventType }),
    messageId: t.exposeString("messageId"),
    conversationId: t.exposeString("conversationId"),
    last: t.exposeBoolean("last", { description: "True on the answer's last event." }),
    pages: t.field({
      type: [RetrievedPage],
      nullable: true,
      ...listSize(MAX_TOP_K),
      description: "PAGES: the retrieved pages, best first, with fresh short-lived URLs.",
      resolve: (event) => event.pages ?? null,
    }),
    skippedKnowledgeBaseIds: t.stringList({
      nullable: true,
      description: "PAGES: knowledge bases of the settings or the turn that are not the caller's or no longer exist.",
      resolve: (event) => event.skippedKnowledgeBaseIds ?? null,
    }),
    delta: t.string({
      nullable: true,
      description: "REASONING and TEXT: the next piece.",
      resolve: (event) => event.delta ?? null,
    }),
    usage: t.field({ type: AnswerUsage, nullable: true, resolve: (event) => event.usage ?? null }),
    error: t.field({ type: AnswerError, nullable: true, resolve: (event) => event.error ?? null }),
    turn: t.field({ type: Turn, nullable: true, resolve: (event) => event.turn ?? null }),
  }),
});

/**
 * Whether the subscriber's graphql-ws connection is still open: leaving while it is means an unsubscribe (the
 * answer stops); leaving because it closed (or over SSE, where the two look alike) lets the answer run on.
 */
const connectionOpen = (context: Context) => () =>
  (context as Context & { socket?: { readyState: number } }).socket?.readyState === 1;

builder.subscriptionFields((fields) => {
  const t = fields.withAuth({ loggedIn: true });
  return {
    ask: t.field({
      type: AnswerEventRef,
      description:
        "Answers a question in one of the caller's conversations as LAYRA's chat does (docs/ask.md) and saves the turn. Unsubscribing over WebSocket stops the answer (saved as aborted); a dropped connection does not, and over SSE neither does (stop it with `stopAnswer`): follow it again with `answer`.",
      args: {
        conversationId: t.arg.string({ required: true }),
        question: t.arg.string({ required: true }),
        parentMessageId: t.arg.string({ description: "The turn answered after (default: a new root turn)." }),
        tempDb: t.arg.string({
          description:
            "The temp knowledge base of files uploaded with this question (`temp_{conversationId}_{uuid4}`).",
        }),
      },
      subscribe: async (_root, args, context) =>
        whileTokenValid(context.live.tokenChecks, context.viewer, await ask(context, args, connectionOpen(context))),
      resolve: (event, _args, context) => freshLoaders(event, context),
    }),
    answer: t.field({
      type: AnswerEventRef,
      description:
        "Follows one of the caller's answers by message id from its first event to its last, on any gateway replica, while its events are kept (ASK_STREAM_TTL_SECONDS). Leaving never stops it.",
      args: { messageId: t.arg.string({ required: true }) },
      subscribe: async (_root, args, context) =>
        whileTokenValid(context.live.tokenChecks, context.viewer, await followAnswer(context, args.messageId)),
      resolve: (event, _args, context) => freshLoaders(event, context),
    }),
  };
});

builder.mutationFields((fields) => {
  const t = fields.withAuth({ loggedIn: true });
  return {
    stopAnswer: t.boolean({
      description:
        'Stops one of the caller\'s answers from any replica; it is saved as aborted (" ⚠️ Abort By User"), as LAYRA saves one its client left.',
      args: { messageId: t.arg.string({ required: true }) },
      resolve: (_root, args, context) => stopAnswer(context, args.messageId),
    }),
  };
});
