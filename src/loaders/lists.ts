import type { PagedList } from "../lib/pagination.js";
import type { ReadSchedule } from "../lib/read-schedule.js";
import type { KnowledgeBaseDoc } from "../stores/documents.js";
import type { ByIdLoader } from "./by-id.js";
import type { LoaderSetScope } from "./index.js";
import { LISTED_IDS_STAGE } from "./scope.js";

/**
 * A list of the caller's documents whose reads the schedule tracks. `onPage` gets each page, its
 * offset and whether it is the whole list (read from the start and shorter than asked for).
 */
function trackedList<D>(
  reads: ReadSchedule,
  list: PagedList<D>,
  onPage: (docs: D[], offset: number, whole: boolean) => void,
): PagedList<D> {
  return {
    count: () => reads.track(() => list.count()),
    page: async (offset, limit) => {
      const docs = await reads.track(() => list.page(offset, limit));
      onPage(docs, offset, offset === 0 && docs.length < limit);
      return docs;
    },
  };
}

/**
 * The caller's list whose first page is read in the by-id loader's next batch, with its ids (one
 * command for both); other pages read at once. Every page primes the loader.
 */
function firstPageInBatch<D, L>(list: PagedList<D>, loader: ByIdLoader<D, L>, of: L): PagedList<D> {
  return {
    count: list.count,
    page: async (offset, limit) => {
      const docs = offset === 0 ? await loader.firstPage(of, limit) : await list.page(offset, limit);
      loader.primeRead(docs);
      return docs;
    },
  };
}

/** The caller's paged lists; each page read primes its collection's by-id loader. */
export type OwnedLists = ReturnType<typeof ownedLists>;

export function ownedLists({ stores, viewer, loaders }: LoaderSetScope) {
  const { mongo } = stores;
  const { reads } = loaders;
  // Only pages of the viewer's own documents stand in for the loaders' reads.
  const own = (username: string) => username === viewer?.username;
  /** The caller's listed knowledge bases, once a first page read them all. */
  let wholeKnowledgeBases: KnowledgeBaseDoc[] | null = null;
  return {
    // The first page waits for the by-id batch and is read with it (the temp bases that turns name
    // are known only once the conversations are read): one command. Other pages read at once.
    knowledgeBases: (username: string): PagedList<KnowledgeBaseDoc> => {
      const list = trackedList(reads, mongo.knowledgeBases.list(username), () => undefined);
      if (!own(username)) return list;
      const shared = firstPageInBatch(list, loaders.knowledgeBase, null);
      return {
        count: list.count,
        page: async (offset, limit) => {
          const docs = await shared.page(offset, limit);
          if (offset === 0 && docs.length < limit) wholeKnowledgeBases = docs;
          return docs;
        },
      };
    },
    /**
     * The files of the caller's listed knowledge bases. Their ids wait for the knowledge-base
     * batches: when this request read the whole list, the ids come from it without a read. The
     * first page without a keyword is read in the files batch with its ids.
     */
    files: async (username: string, keyword: string | null | undefined) => {
      await reads.turn(LISTED_IDS_STAGE);
      const knowledgeBaseIds =
        own(username) && wholeKnowledgeBases
          ? wholeKnowledgeBases.map((kb) => kb.knowledge_base_id)
          : await reads.track(() => mongo.knowledgeBases.listedIds(username));
      const list = trackedList(reads, mongo.files.list(username, knowledgeBaseIds, keyword), (docs) => {
        if (own(username)) loaders.file.primeRead(docs);
      });
      return own(username) && !keyword ? firstPageInBatch(list, loaders.file, knowledgeBaseIds) : list;
    },
    conversations: (username: string) =>
      trackedList(reads, mongo.conversations.list(username), (docs) => {
        if (own(username)) loaders.conversation.primeRead(docs);
      }),
    // The list and the by-workflow windows read the same documents in the same order.
    chatflows: (username: string) =>
      trackedList(reads, mongo.chatflows.list(username), (docs, offset, whole) => {
        if (!own(username)) return;
        loaders.chatflow.primeRead(docs);
        if (offset === 0) loaders.chatflowsByWorkflow.primePrefix(docs, whole);
      }),
    workflows: (username: string) =>
      trackedList(reads, mongo.workflows.list(username), (docs) => {
        if (own(username)) loaders.workflow.primeRead(docs);
      }),
  };
}
