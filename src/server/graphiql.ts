// GraphiQL, served by the gateway itself: Yoga's own renderer package (@graphql-yoga/render-graphiql)
// inlines GraphiQL, its styles, fonts and editor workers into one page, so the IDE works on a
// private network with no CDN. Development and test only (config.introspection).
import { parse, validate, type GraphQLSchema } from "graphql";
import type { GraphiQLOptions } from "graphql-yoga";
import type { Config } from "../config.js";
import { CSRF_HEADER } from "../plugins/index.js";

export interface GraphiQLSettings {
  /** Headers the IDE opens with (development: the demo user's `Authorization`). Never used in production. */
  headers?: Record<string, string>;
  /** Values for the starter tabs' variables (development: a demo knowledge base, its finished upload task, a conversation). */
  starterVariables?: { knowledgeBaseId?: string; taskId?: string; conversationId?: string };
}

/** The operations a newcomer finds in GraphiQL's tabs; those the schema cannot run yet are left out. */
export const STARTER_OPERATIONS: { name: string; query: string; variables?: Record<string, unknown> }[] = [
  {
    name: "Profile",
    query: `# The caller, their knowledge bases, files and page thumbnails.
query Profile {
  me {
    username
    knowledgeBases(first: 10) {
      totalCount
      edges {
        node {
          knowledgeBaseId
          name
          files(first: 10) {
            edges { node { fileId filename pageCount pages { pageNumber url } } }
          }
        }
      }
    }
  }
}
`,
  },
  {
    name: "Search",
    query: `# Pages whose words match the query, best first. Any knowledgeBaseId from the Profile tab works.
query Search($knowledgeBaseId: String!, $query: String!) {
  searchKnowledgeBase(knowledgeBaseId: $knowledgeBaseId, query: $query, topK: 5) {
    score
    page { pageNumber url }
    file { filename }
  }
}
`,
    variables: { knowledgeBaseId: "", query: "router reset" },
  },
  {
    name: "Upload",
    // Comment lines short enough to show whole beside the toolbar in a 1400 px wide window.
    query: `# Run the README's curl: GraphiQL cannot send files.
# Or upload in the example app (web/). Put the taskId
# it answers into the Progress tab to watch its pages.
mutation Upload($knowledgeBaseId: String!, $files: [Upload!]!) {
  uploadFiles(knowledgeBaseId: $knowledgeBaseId, files: $files) {
    taskId
    knowledgeBaseId
    files { id filename url }
  }
}
`,
    variables: { knowledgeBaseId: "", files: [] },
  },
  {
    name: "Progress",
    // Only changes to selected fields are sent: without the page fields a long file shows nothing until it ends.
    query: `# Live ingestion progress of an upload: the state at once, then every change (page by page).
# The taskId below is the demo's finished upload; put the taskId of your own upload there.
subscription Progress($taskId: String!) {
  taskProgress(taskId: $taskId) {
    status
    processed
    total
    percent
    currentFile
    pagesDone
    pagesTotal
    failedFiles
    message
    end
  }
}
`,
    variables: { taskId: "" },
  },
  {
    name: "Ask",
    query: `# A question answered from the conversation's knowledge bases by its own chat model, streamed:
# STARTED (the message id stopAnswer takes), PAGES, REASONING and TEXT pieces, USAGE, then the saved TURN.
# The conversationId below is the demo's; Profile's knowledge bases hold the pages it retrieves.
subscription Ask($conversationId: String!, $question: String!) {
  ask(conversationId: $conversationId, question: $question) {
    type
    messageId
    delta
    pages { score fileName imageUrl }
    usage { totalTokens }
    error { code message }
    turn { messageId status aiMessage }
  }
}
`,
    variables: { conversationId: "", question: "How do I do a factory reset of the router?" },
  },
];

/** A tab's variables with the values the settings know filled in (the rest stay as written). */
function starterVariables(variables: Record<string, unknown>, settings: GraphiQLSettings): Record<string, unknown> {
  const known = settings.starterVariables ?? {};
  return Object.fromEntries(
    Object.entries(variables).map(([name, value]) => [name, known[name as keyof typeof known] ?? value]),
  );
}

/** GraphiQL's options, or false when it is off (production). */
export function graphiqlOptions(
  config: Config,
  schema: GraphQLSchema,
  settings: GraphiQLSettings = {},
): GraphiQLOptions | false {
  if (!config.introspection) return false;
  const headers = JSON.stringify(settings.headers ?? {}, null, 2);
  return {
    title: "LAYRA GraphQL gateway",
    subscriptionsProtocol: config.graphiql.subscriptionsProtocol,
    // Sent with every request, so GET queries and SSE subscriptions pass the CSRF check.
    additionalHeaders: { [CSRF_HEADER]: "1" },
    headers,
    defaultHeaders: headers,
    // The token must not outlive the tab in the browser's storage.
    shouldPersistHeaders: false,
    defaultTabs: STARTER_OPERATIONS.filter((operation) => validate(schema, parse(operation.query)).length === 0).map(
      (operation) => ({
        query: operation.query,
        variables: operation.variables
          ? JSON.stringify(starterVariables(operation.variables, settings), null, 2)
          : null,
        headers,
      }),
    ),
  };
}

/**
 * Keeps every starter tab where it is drawn when pressed. GraphiQL's tabs are framer-motion reorder items
 * held inside the tab bar; re-measuring the bar after the first render leaves each tab but the last with a
 * stale offset (translateX of a few hundred px) that GraphiQL's own CSS hides only while the tab is unfocused.
 * Pressing a tab focuses it, so it jumps away from the pointer, the release lands elsewhere and no click
 * happens: the first click on any tab but the last left the previous tab active. Dragging a tab still
 * reorders it on release; it just no longer follows the pointer on the way.
 */
const TAB_FIX_STYLE = "<style>.graphiql-tab { transform: none !important; }</style>";

/** Yoga's own renderer, loaded only when GraphiQL is on (it holds about 9 MB of inlined assets). */
export function graphiqlRenderer(): (options: GraphiQLOptions) => Promise<string> {
  let page: Promise<string> | undefined;
  // The options are fixed for the app's lifetime: render the page once.
  return (options) =>
    (page ??= import("@graphql-yoga/render-graphiql").then(({ renderGraphiQL }) => {
      const html = renderGraphiQL(options);
      // After GraphiQL's own styles, so the rule wins over theirs; a page without a head would lose the fix silently.
      if (!html.includes("</head>")) throw new Error("GraphiQL's page has no </head> to add the tab style to");
      return html.replace("</head>", `${TAB_FIX_STYLE}</head>`);
    }));
}
