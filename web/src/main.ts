// The example app: paste a token, browse knowledge bases and their files' pages, upload a PDF and
// watch it being ingested, search, ask a conversation a question and watch the answer stream in. Every operation is a typed document generated from
// src/operations.graphql; page data is only ever set as text or attributes, never as HTML.
import { Gateway, type Session } from "./api";
import {
  AskDocument,
  ConversationsDocument,
  CreateKnowledgeBaseDocument,
  FilePagesDocument,
  LibraryDocument,
  ProfileDocument,
  SearchDocument,
  StopAnswerDocument,
  TaskProgressDocument,
  UploadFilesDocument,
  type LibraryQuery,
  type TaskProgressSubscription,
} from "./gql/graphql";
import "./style.css";

const SESSION_KEY = "layra.session";
const THUMBNAILS = 3;
/** Pages a "more pages" click adds: a 300-page file loads in steps, never all at once. */
const MORE_PAGES = 24;

const byId = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const ui = {
  error: byId<HTMLParagraphElement>("error"),
  login: byId<HTMLFormElement>("login"),
  endpoint: byId<HTMLInputElement>("endpoint"),
  token: byId<HTMLTextAreaElement>("token"),
  signedIn: byId<HTMLDivElement>("signed-in"),
  username: byId<HTMLElement>("username"),
  logout: byId<HTMLButtonElement>("logout"),
  knowledgeBase: byId<HTMLSelectElement>("knowledge-base"),
  create: byId<HTMLFormElement>("create"),
  newName: byId<HTMLInputElement>("new-name"),
  library: byId<HTMLDivElement>("library"),
  upload: byId<HTMLFormElement>("upload"),
  file: byId<HTMLInputElement>("file"),
  progress: byId<HTMLProgressElement>("progress"),
  progressText: byId<HTMLSpanElement>("progress-text"),
  search: byId<HTMLFormElement>("search"),
  query: byId<HTMLInputElement>("query"),
  hits: byId<HTMLOListElement>("hits"),
  ask: byId<HTMLFormElement>("ask"),
  conversation: byId<HTMLSelectElement>("conversation"),
  question: byId<HTMLInputElement>("question"),
  stop: byId<HTMLButtonElement>("stop"),
  answerPages: byId<HTMLDivElement>("answer-pages"),
  reasoning: byId<HTMLParagraphElement>("reasoning"),
  answer: byId<HTMLParagraphElement>("answer"),
  answerStatus: byId<HTMLParagraphElement>("answer-status"),
};

let gateway: Gateway | null = null;
/** Each conversation's last turn, so the next question continues its branch (LAYRA's parent_message_id). */
const lastTurns = new Map<string, string>();
/** The answer streaming now, for the stop button. */
let answering: string | null = null;

function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

const count = (n: number, noun: string) => `${n} ${noun}${n === 1 ? "" : "s"}`;

function thumbnail(url: string | null | undefined, alt: string): HTMLElement {
  // A null url means the page's object is not the owner's: show the label alone.
  return url ? element("img", { src: url, alt }) : element("span", {}, alt);
}

function showError(error: unknown): void {
  ui.error.textContent = error instanceof Error ? error.message : String(error);
  ui.error.hidden = false;
}

/** Runs a form's action, with its button disabled meanwhile and any error shown. */
function onSubmit(form: HTMLFormElement, action: () => Promise<void>): void {
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const button = form.querySelector("button");
    if (button) button.disabled = true;
    ui.error.hidden = true;
    action()
      .catch(showError)
      .finally(() => {
        if (button) button.disabled = false;
      });
  });
}

function signedIn(): Gateway {
  if (!gateway) throw new Error("log in first");
  return gateway;
}

async function logIn(session: Session): Promise<void> {
  const candidate = new Gateway(session);
  const { me } = await candidate.execute(ProfileDocument, {});
  if (!me) throw new Error("the gateway did not accept this token");
  gateway = candidate;
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
  ui.username.textContent = me.username;
  ui.login.hidden = true;
  ui.signedIn.hidden = false;
  await Promise.all([refreshLibrary(), refreshConversations()]);
}

function logOut(): void {
  gateway?.close();
  gateway = null;
  sessionStorage.removeItem(SESSION_KEY);
  ui.signedIn.hidden = true;
  ui.login.hidden = false;
}

type KnowledgeBase = NonNullable<NonNullable<LibraryQuery["me"]>["knowledgeBases"]>["edges"][number]["node"];

type LibraryFile = KnowledgeBase["files"]["edges"][number]["node"];

/** A file's first thumbnails and, while it has pages not shown, a button adding the next MORE_PAGES of them. */
function renderFile(file: LibraryFile): HTMLElement {
  const pageThumbnail = (page: LibraryFile["pages"][number]) =>
    thumbnail(page.url, `${file.filename} page ${page.pageNumber}`);
  const thumbnails = element("div", { class: "thumbnails" }, ...file.pages.map(pageThumbnail));
  const item = element("li", {}, `${file.filename} (${count(file.pageCount, "page")})`, thumbnails);
  let shown = file.pages.length;
  if (shown >= file.pageCount) return item;
  const more = element("button", { type: "button" });
  const label = () => (more.textContent = `More pages (${shown} of ${file.pageCount} shown)`);
  label();
  more.addEventListener("click", () => {
    more.disabled = true;
    ui.error.hidden = true;
    signedIn()
      .execute(FilePagesDocument, { fileId: file.fileId, first: MORE_PAGES, offset: shown })
      .then(({ file: loaded }) => {
        const pages = loaded?.pages ?? [];
        thumbnails.append(...pages.map(pageThumbnail));
        shown += pages.length;
        // An empty batch means the file lost pages since the library was read: nothing more to show.
        if (shown >= file.pageCount || pages.length === 0) more.remove();
        else label();
      })
      .catch(showError)
      .finally(() => (more.disabled = false));
  });
  item.append(more);
  return item;
}

function renderKnowledgeBase(base: KnowledgeBase): HTMLElement {
  const files = base.files.edges.map(({ node: file }) => renderFile(file));
  return element(
    "article",
    {},
    element("h3", {}, `${base.name} (${count(base.fileCount, "file")})`),
    files.length ? element("ul", {}, ...files) : element("p", {}, "No files yet."),
  );
}

async function refreshLibrary(select?: string): Promise<void> {
  const { me } = await signedIn().execute(LibraryDocument, { thumbnails: THUMBNAILS });
  const bases = me?.knowledgeBases?.edges.map((edge) => edge.node) ?? [];
  const selected = select ?? ui.knowledgeBase.value;
  ui.knowledgeBase.replaceChildren(
    ...bases.map((base) => element("option", { value: base.knowledgeBaseId }, base.name)),
  );
  if (bases.some((base) => base.knowledgeBaseId === selected)) ui.knowledgeBase.value = selected;
  ui.library.replaceChildren(
    ...(bases.length ? bases.map(renderKnowledgeBase) : [element("p", {}, "No knowledge bases yet.")]),
  );
}

function selectedKnowledgeBase(): string {
  if (!ui.knowledgeBase.value) throw new Error("create or choose a knowledge base first");
  return ui.knowledgeBase.value;
}

/**
 * The task's percent counted in pages: finished files plus the current file's share of pages done.
 * A file whose pages are all done counts only once it is finished (the worker may not have moved
 * on yet); the caller keeps the bar from going back.
 */
function pagePercent(state: TaskProgressSubscription["taskProgress"]): number {
  const total = state.total ?? 0;
  if (!total) return state.percent ?? 0;
  const finished = (state.processed ?? 0) + state.failedFiles.length;
  const { pagesDone, pagesTotal } = state;
  const current = pagesTotal && typeof pagesDone === "number" && pagesDone < pagesTotal ? pagesDone / pagesTotal : 0;
  return Math.max(state.percent ?? 0, Math.min(100, ((finished + current) / total) * 100));
}

async function upload(): Promise<void> {
  const file = ui.file.files?.[0];
  if (!file) throw new Error("choose a PDF");
  ui.progress.value = 0;
  ui.progressText.textContent = "uploading";
  const { uploadFiles } = await signedIn().upload(UploadFilesDocument, { knowledgeBaseId: selectedKnowledgeBase() }, [
    file,
  ]);
  if (!uploadFiles) throw new Error("the knowledge base is gone");
  for await (const { taskProgress: state } of signedIn().subscribe(TaskProgressDocument, {
    taskId: uploadFiles.taskId,
  })) {
    ui.progress.value = Math.max(ui.progress.value, pagePercent(state));
    const page = state.pagesTotal ? `, page ${state.pagesDone ?? 0}/${state.pagesTotal}` : "";
    ui.progressText.textContent = `${state.status ?? "waiting"}: ${state.processed ?? 0}/${state.total ?? 0} files${page}`;
    if (state.failedFiles.length) ui.progressText.textContent += ` (failed: ${state.failedFiles.join(", ")})`;
  }
  ui.upload.reset();
  await refreshLibrary();
}

async function search(): Promise<void> {
  const { searchKnowledgeBase: hits } = await signedIn().execute(SearchDocument, {
    knowledgeBaseId: selectedKnowledgeBase(),
    query: ui.query.value,
    topK: 5,
  });
  ui.hits.replaceChildren(
    ...(hits ?? []).map((hit) =>
      element(
        "li",
        {},
        `${hit.file.filename}, page ${hit.page.pageNumber} (score ${hit.score.toFixed(2)})`,
        element(
          "div",
          { class: "thumbnails" },
          thumbnail(hit.page.url, `hit: ${hit.file.filename} page ${hit.page.pageNumber}`),
        ),
      ),
    ),
  );
  if (!hits?.length) ui.hits.replaceChildren(element("li", {}, "No matching pages."));
}

async function refreshConversations(): Promise<void> {
  const { me } = await signedIn().execute(ConversationsDocument, {});
  const conversations = me?.conversations?.edges.map((edge) => edge.node) ?? [];
  lastTurns.clear();
  for (const conversation of conversations) {
    const last = conversation.turns.edges.at(-1)?.node.messageId;
    if (last) lastTurns.set(conversation.conversationId, last);
  }
  ui.conversation.replaceChildren(
    ...conversations.map((conversation) =>
      element("option", { value: conversation.conversationId }, conversation.name),
    ),
  );
}

async function ask(): Promise<void> {
  const conversationId = ui.conversation.value;
  if (!conversationId) throw new Error("this user has no conversation yet (createConversation in GraphiQL)");
  ui.answerPages.replaceChildren();
  ui.reasoning.textContent = "";
  ui.answer.textContent = "";
  ui.answerStatus.textContent = "asking";
  try {
    for await (const { ask: event } of signedIn().subscribe(AskDocument, {
      conversationId,
      question: ui.question.value,
      parentMessageId: lastTurns.get(conversationId) ?? null,
    })) {
      if (event.type === "STARTED") {
        answering = event.messageId;
        ui.stop.disabled = false;
      } else if (event.type === "PAGES") {
        ui.answerPages.replaceChildren(
          ...(event.pages ?? []).map((page, rank) =>
            thumbnail(page.imageUrl, `retrieved ${rank + 1}: ${page.fileName} (score ${page.score.toFixed(2)})`),
          ),
        );
      } else if (event.type === "REASONING") ui.reasoning.append(event.delta ?? "");
      else if (event.type === "TEXT") ui.answer.append(event.delta ?? "");
      else if (event.type === "ERROR" && event.error) showError(`${event.error.code}: ${event.error.message}`);
      else if (event.type === "TURN" && event.turn) {
        lastTurns.set(conversationId, event.turn.messageId);
        ui.answerStatus.textContent = `saved: ${event.turn.status}`;
      }
    }
  } finally {
    answering = null;
    ui.stop.disabled = true;
  }
}

async function stop(): Promise<void> {
  if (!answering) return;
  ui.stop.disabled = true;
  await signedIn().execute(StopAnswerDocument, { messageId: answering });
}

onSubmit(ui.login, () => logIn({ endpoint: ui.endpoint.value.trim(), token: ui.token.value.trim() }));
onSubmit(ui.create, async () => {
  const { createKnowledgeBase } = await signedIn().execute(CreateKnowledgeBaseDocument, { name: ui.newName.value });
  ui.create.reset();
  await refreshLibrary(createKnowledgeBase?.knowledgeBaseId);
});
onSubmit(ui.upload, upload);
onSubmit(ui.search, search);
onSubmit(ui.ask, ask);
ui.stop.addEventListener("click", () => void stop().catch(showError));
ui.logout.addEventListener("click", logOut);

ui.endpoint.value = import.meta.env.VITE_GRAPHQL_ENDPOINT ?? "/graphql";
const saved = sessionStorage.getItem(SESSION_KEY);
if (saved) {
  logIn(JSON.parse(saved) as Session).catch((error: unknown) => {
    logOut();
    showError(error);
  });
} else {
  ui.login.hidden = false;
}
