import DataLoader from "dataloader";
import type { FileDoc } from "../stores/documents.js";
import { observedBatch } from "./observe.js";
import { FILES_STAGE, scheduled, type FindOwned, type LoaderScope } from "./scope.js";

/** The caller's file that holds a page image (`files.images[].images_id`), for page-image node ids. */
export function fileByImageLoader({ viewer, loaders }: LoaderScope, findByImageIds: FindOwned<FileDoc>) {
  return new DataLoader<string, FileDoc | null>(
    observedBatch("files.images.images_id", async (imageIds: readonly string[]) => {
      if (!viewer) return imageIds.map(() => null);
      const byImage = new Map<string, FileDoc>();
      const docs = await loaders.reads.track(() => findByImageIds(viewer.username, imageIds));
      for (const doc of docs) for (const image of doc.images) byImage.set(image.images_id, doc);
      return imageIds.map((id) => byImage.get(id) ?? null);
    }),
    scheduled(loaders.reads, FILES_STAGE),
  );
}
