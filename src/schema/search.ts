import { searchKnowledgeBases, type SearchHit } from "../resolvers/search.js";
import { builder } from "./builder.js";
import type { ArgBuilder } from "./lists.js";
import { File, PageImage } from "./file.js";
import { KnowledgeBase } from "./knowledge-base.js";

const SearchHitRef = builder.objectRef<SearchHit>("SearchHit").implement({
  description: "A page that matches a search, with its exact MaxSim score.",
  fields: (t) => ({
    score: t.exposeFloat("score", {
      description: "Sum over query vectors of the best inner product with any of the page's vectors.",
    }),
    page: t.field({ type: PageImage, resolve: (hit) => ({ image: hit.image, file: hit.file }) }),
    file: t.field({ type: File, resolve: (hit) => hit.file }),
    knowledgeBase: t.field({ type: KnowledgeBase, resolve: (hit) => hit.knowledgeBase }),
  }),
});

/** The arguments both search fields share. */
const searchArgs = (arg: ArgBuilder) => ({
  query: arg.string({
    required: false,
    description: "Text, embedded by LAYRA's model server. Give this or queryVectors.",
  }),
  queryVectors: arg({
    type: arg.listRef(["Float"]),
    required: false,
    description: "Ready query token vectors (each of the collection's dimension, 128 for ColQwen). Give this or query.",
  }),
  topK: arg.int({ required: true, defaultValue: 10, description: "How many pages to return, 1 to 100 by default." }),
  scoreThreshold: arg.float({ required: false, description: "Leave out pages scoring below this raw MaxSim sum." }),
});

builder.queryFields((fields) => {
  const t = fields.withAuth({ loggedIn: true });
  return {
    searchKnowledgeBase: t.field({
      type: [SearchHitRef],
      // Nullable so that a failed search (model server or Milvus down) fails this field only.
      nullable: true,
      description:
        "The caller's knowledge base's pages that best match the query, best first (exact two-stage MaxSim).",
      args: { knowledgeBaseId: t.arg.string({ required: true }), ...searchArgs(fields.arg) },
      resolve: (_root, { knowledgeBaseId, ...args }, context) =>
        searchKnowledgeBases(context, { knowledgeBaseIds: [knowledgeBaseId], ...args }),
    }),
    searchKnowledgeBases: t.field({
      type: [SearchHitRef],
      nullable: true,
      description:
        "One search over several of the caller's knowledge bases (as LAYRA's chat searches its temp base and base_used), merged by score.",
      args: { knowledgeBaseIds: t.arg.stringList({ required: true }), ...searchArgs(fields.arg) },
      resolve: (_root, args, context) => searchKnowledgeBases(context, args),
    }),
  };
});
