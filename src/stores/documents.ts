// LAYRA's MongoDB document shapes (docs/layra-contract.md, "MongoDB collections"), field names kept as LAYRA
// writes them: `files.knowledge_db_id`, `images[].images_id`, 1-based `page_number`, and so on.
import type { ObjectId } from "mongodb";

export interface FileRef {
  file_id: string;
  filename: string;
  minio_filename: string;
  minio_url: string;
  created_at: Date;
}

export interface KnowledgeBaseDoc {
  _id?: ObjectId;
  knowledge_base_id: string;
  knowledge_base_name: string;
  username: string;
  files: FileRef[];
  used_chat: unknown[];
  created_at: Date;
  last_modify_at: Date;
  /** True only for temp (chat-upload) knowledge bases; LAYRA never soft-deletes. */
  is_delete: boolean;
}

export interface PageImageDoc {
  images_id: string;
  minio_filename: string;
  minio_url: string;
  page_number: number;
}

export interface FileDoc {
  _id?: ObjectId;
  file_id: string;
  filename: string;
  username: string;
  minio_filename: string;
  minio_url: string;
  knowledge_db_id: string;
  images: PageImageDoc[];
  created_at: Date;
  last_modify_at: Date;
  is_delete: boolean;
}

export interface BaseUsed {
  name: string;
  baseId: string;
}

/** The snake_case model settings LAYRA snapshots into each conversation (no model_id). */
export interface ModelSettings {
  model_name: string;
  model_url: string;
  api_key: string;
  base_used: BaseUsed[];
  system_prompt: string;
  temperature: number;
  max_length: number;
  top_P: number;
  top_K: number;
  score_threshold: number;
}

export interface ModelDoc extends ModelSettings {
  model_id: string;
}

export interface ModelConfigDoc {
  _id?: ObjectId;
  username: string;
  selected_model: string;
  models: ModelDoc[];
}

export type UserContentPart = { type: "image_url"; image_url: string } | { type: "text"; text: string };

export interface FileUsed {
  score: number;
  knowledge_db_id: string;
  file_name: string;
  image_url: string;
  file_url: string;
}

export interface TurnDoc {
  message_id: string;
  parent_message_id: string;
  user_message: { role: "user"; content: UserContentPart[] | string };
  temp_db: string;
  ai_message: { role: "assistant"; content: string };
  file_used: FileUsed[];
  status: string;
  timestamp: Date;
  total_token: number;
  completion_tokens: number;
  prompt_tokens: number;
}

export interface ConversationDoc {
  _id?: ObjectId;
  conversation_id: string;
  conversation_name: string;
  username: string;
  model_config: ModelSettings;
  turns: TurnDoc[];
  created_at: Date;
  last_modify_at: Date;
  is_read: boolean;
  is_delete: boolean;
}

export interface ChatflowDoc {
  _id?: ObjectId;
  chatflow_id: string;
  workflow_id: string;
  chatflow_name: string;
  username: string;
  turns: TurnDoc[];
  created_at: Date;
  last_modify_at: Date;
  is_read: boolean;
  is_delete: boolean;
}

export interface WorkflowDoc {
  _id?: ObjectId;
  workflow_id: string;
  username: string;
  workflow_name: string;
  workflow_config: Record<string, unknown>;
  nodes: Record<string, unknown>[];
  edges: Record<string, unknown>[];
  start_node: string;
  global_variables: Record<string, string>;
  created_at: Date;
  last_modify_at: Date;
  is_delete: boolean;
}

export interface CustomNodesDoc {
  _id?: ObjectId;
  username: string;
  custom_nodes: Record<string, Record<string, unknown>>;
}
