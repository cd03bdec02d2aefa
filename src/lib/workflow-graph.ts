// What LAYRA's workflow endpoint checks before it queues a run, ported so the gateway refuses the same
// graphs with the same messages before anything is written (docs/workflows.md, "Starting a run"):
// the structural checks of its `WorkflowGraph` (what makes `engine.graph[0]` false), the shape of its
// `Workflow` request model, and its editor's conversion of saved React-Flow nodes into that request.

/** LAYRA's ValueError: the message is LAYRA's own text. */
class WorkflowGraphError extends Error {}

/**
 * What LAYRA's construction fails on with another exception (a missing key, a wrong type): its
 * endpoint answers `System Error: ...` with Python's text; the gateway says what is wrong instead.
 */
export class WorkflowShapeError extends Error {}

/** Bounds on a run's request, checked before anything is written (docs/workflows.md, "Bounds"). */
export const WORKFLOW_LIMITS = {
  nodes: 500,
  edges: 1_000,
  globalVariables: 500,
  /** Characters of one node's `code`. */
  codeChars: 100_000,
  userMessageChars: 100_000,
  /** LAYRA builds the graph recursively: past about 330 levels Python's recursion limit fails the run. */
  graphDepth: 300,
  /** The queued message, under Kafka's default 1 MB `message.max.bytes`. */
  messageBytes: 900_000,
} as const;

type Json = Record<string, unknown>;

interface TreeNode {
  id: string;
  type: unknown;
  data: unknown;
  children: TreeNode[];
  loopInfo: TreeNode[];
  parents: TreeNode[];
  /** LAYRA declares it and checks it but never fills it: kept so the checks read the same. */
  loopNext: TreeNode[];
  loopParent: TreeNode | null;
  loopChildren: TreeNode[];
  loopLast: TreeNode[];
  condition: number | null;
}

/** Python's `str()` of a JSON value inside an f-string (enough for names and handles). */
function pyStr(value: unknown): string {
  if (typeof value === "string") return value;
  if (value === null || value === undefined) return "None";
  if (typeof value === "boolean") return value ? "True" : "False";
  return typeof value === "number" ? String(value) : JSON.stringify(value);
}

/** Python's `int(text)` for the decimal texts it accepts (surrounding spaces, a sign, `_` between digits). */
function pyInt(text: string): number | null {
  const trimmed = text.trim();
  return /^[+-]?\d+(_\d+)*$/.test(trimmed) ? Number.parseInt(trimmed.replaceAll("_", ""), 10) : null;
}

const isObject = (value: unknown): value is Json =>
  value !== null && typeof value === "object" && !Array.isArray(value);

/** LAYRA's WorkflowGraph construction, step for step, so the first error found is LAYRA's first. */
class WorkflowGraph {
  private readonly instances = new Map<string, TreeNode>();
  private readonly nodes: Map<string, Json>;
  private depth = 0;

  constructor(
    nodes: Json[],
    private readonly edges: Json[],
    startNode: string,
  ) {
    this.nodes = new Map(nodes.map((node) => [node.id as string, node]));
    const root = this.treeNode(startNode, "start", { name: "Start" });
    this.buildGraph(root, null, null);
    this.validateHierarchy();
    this.checkDirectedCycles();
  }

  /** LAYRA's TreeNode is one instance per id: type and data are those of its first creation. */
  private treeNode(id: string, type: unknown, data: unknown): TreeNode {
    let node = this.instances.get(id);
    if (!node) {
      node = {
        id,
        type,
        data,
        children: [],
        loopInfo: [],
        parents: [],
        loopNext: [],
        loopParent: null,
        loopChildren: [],
        loopLast: [],
        condition: null,
      };
      this.instances.set(id, node);
    }
    return node;
  }

  private name(node: TreeNode): string {
    if (!isObject(node.data) || !("name" in node.data))
      throw new WorkflowShapeError(`node ${JSON.stringify(node.id)} has no data.name`);
    return pyStr(node.data.name);
  }

  private buildGraph(node: TreeNode, parent: TreeNode | null, loopParent: TreeNode | null): void {
    if (++this.depth > WORKFLOW_LIMITS.graphDepth)
      throw new WorkflowShapeError(
        `the graph nests more than ${WORKFLOW_LIMITS.graphDepth} levels deep, more than LAYRA's engine can build`,
      );
    node.loopParent = loopParent;
    if (loopParent) loopParent.loopChildren.push(node);
    if (parent && !node.parents.includes(parent)) node.parents.push(parent);
    for (const edge of this.edges.filter((e) => e.source === node.id)) this.processEdge(node, edge, loopParent);
    this.depth--;
  }

  private processEdge(node: TreeNode, edge: Json, loopParent: TreeNode | null): void {
    const sourceHandle = "sourceHandle" in edge ? edge.sourceHandle : "";
    const targetId = edge.target;
    const definition = typeof targetId === "string" ? this.nodes.get(targetId) : undefined;
    if (!definition) throw new WorkflowShapeError(`an edge from ${JSON.stringify(node.id)} targets no node`);
    if (!("type" in definition) || !("data" in definition))
      throw new WorkflowShapeError(`node ${JSON.stringify(targetId)} needs a type and data`);
    const target = this.treeNode(targetId as string, definition.type, definition.data);
    if (typeof sourceHandle !== "string")
      throw new WorkflowShapeError(`an edge from ${JSON.stringify(node.id)} has a sourceHandle that is not a string`);

    try {
      if (sourceHandle === "") {
        this.validateNormalEdge(node, target, loopParent);
        this.addChild(node, target, loopParent);
      } else if (sourceHandle.startsWith("condition")) {
        const conditionIndex = pyInt(sourceHandle.split("-").at(-1)!);
        if (conditionIndex === null) throw new WorkflowGraphError(`非法condition类型: ${sourceHandle}`);
        this.validateConditionEdge(node, target, loopParent);
        target.condition = conditionIndex;
        this.addChild(node, target, loopParent);
      } else if (sourceHandle === "loop_body") {
        if (node.type !== "loop") throw new WorkflowGraphError("非循环节点使用loop_body边");
        this.addLoopChild(node, target);
      } else if (sourceHandle === "loop_next") {
        this.validateLoopNextEdge(node, target);
        if (!target.loopLast.includes(node)) target.loopLast.push(node);
      } else {
        throw new WorkflowGraphError(`非法边类型: ${sourceHandle}`);
      }
    } catch (error) {
      if (!(error instanceof WorkflowGraphError)) throw error;
      throw new WorkflowGraphError(`节点 ${this.name(node)} -> ${this.name(target)}: ${error.message}`);
    }
  }

  private crossLevel(source: TreeNode, target: TreeNode): WorkflowGraphError {
    return new WorkflowGraphError(
      `跨层级连接: ${this.name(source)}(层级:${this.hierarchyPath(source)}) -> ${this.name(target)}(层级:${this.hierarchyPath(target)})`,
    );
  }

  private validateNormalEdge(source: TreeNode, target: TreeNode, loopParent: TreeNode | null): void {
    if (target.loopParent !== null && target.loopParent !== loopParent) throw this.crossLevel(source, target);
  }

  private validateConditionEdge(source: TreeNode, target: TreeNode, loopParent: TreeNode | null): void {
    if (source.type !== "condition") throw new WorkflowGraphError("非条件节点使用condition边");
    if (target.loopParent !== null && target.loopParent !== loopParent) throw this.crossLevel(source, target);
  }

  private validateLoopNextEdge(node: TreeNode, target: TreeNode): void {
    if (node.loopParent !== target) throw new WorkflowGraphError("循环节点的loop_next边出口不是原loop节点");
    if (node.type === "condition") throw new WorkflowGraphError("循环节点的loop_next出口不能是condition节点");
    if (target.type !== "loop") throw new WorkflowGraphError("非循环节点使用loop_next边");
    if (target.loopNext.length >= 1) throw new WorkflowGraphError("循环节点只能有一个loop_next出口");
  }

  private hierarchyPath(node: TreeNode): string {
    const path: string[] = [];
    // A loop whose body is the loop itself nests in itself: LAYRA loops forever here.
    for (let current = node.loopParent; current; current = current.loopParent) {
      if (path.length > this.instances.size)
        throw new WorkflowShapeError(`loop node ${JSON.stringify(node.id)} is nested in itself`);
      path.push(this.name(current));
    }
    return path.length > 0 ? path.reverse().join("->") : "root";
  }

  private addChild(parent: TreeNode, child: TreeNode, loopParent: TreeNode | null): void {
    if (parent.children.includes(child)) return;
    parent.children.push(child);
    this.buildGraph(child, parent, loopParent);
  }

  private addLoopChild(loopNode: TreeNode, child: TreeNode): void {
    if (loopNode.loopInfo.includes(child)) return;
    loopNode.loopInfo.push(child);
    if (loopNode.loopInfo.length > 1) throw new WorkflowGraphError("循环节点只能有一个loop_body入口");
    this.buildGraph(child, null, loopNode);
  }

  private validateHierarchy(): void {
    for (const node of this.instances.values()) {
      for (const child of node.children) {
        if (child.loopParent !== node.loopParent) {
          throw new WorkflowGraphError(
            `子节点层级断裂: ${this.name(node)} -> ${this.name(child)}\n父层级: ${this.hierarchyPath(node)}\n子层级: ${this.hierarchyPath(child)}`,
          );
        }
      }
    }
  }

  private checkDirectedCycles(): void {
    const visited = new Map<string, 1 | 2>();
    const pathNames: string[] = [];
    const dfs = (current: TreeNode): string[] | null => {
      const state = visited.get(current.id);
      if (state === 1) return [...pathNames, this.name(current)];
      if (state === 2) return null;
      visited.set(current.id, 1);
      pathNames.push(this.name(current));
      for (const child of [...current.children, ...current.loopInfo, ...current.loopNext]) {
        const cycle = dfs(child);
        if (cycle) return cycle;
      }
      visited.set(current.id, 2);
      pathNames.pop();
      return null;
    };
    for (const node of this.instances.values()) {
      if (visited.has(node.id)) continue;
      const cycle = dfs(node);
      if (cycle) throw new WorkflowGraphError(`检测到有向环: ${cycle.join(" -> ")}\n循环请使用loop节点包裹！`);
    }
  }
}

/**
 * LAYRA's check of a run's graph: null when its engine accepts it, else the `msg` its execute endpoint
 * answers with `code: -1` (`工作流验证失败: ...`). Throws WorkflowShapeError where LAYRA fails otherwise.
 */
export function workflowGraphProblem(nodes: Json[], edges: Json[], startNode: string): string | null {
  try {
    new WorkflowGraph(nodes, edges, startNode);
    return null;
  } catch (error) {
    if (error instanceof WorkflowGraphError) return `工作流验证失败: ${error.message}`;
    throw error;
  }
}

/** Drops undefined members, as JSON.stringify does in LAYRA's editor before it posts. */
const defined = (object: Json): Json => Object.fromEntries(Object.entries(object).filter(([, v]) => v !== undefined));

const member = (value: unknown, key: string): unknown => (isObject(value) ? value[key] : undefined);

/** The editor's `-1` for a setting left at the provider default. */
const orDefault = (config: unknown, useDefault: string, key: string) =>
  member(config, useDefault) ? -1 : member(config, key);

/** Only the MCP tools a node uses, per server (LAYRA's editor, `filterMcpConfig`). */
function usedMcpTools(mcpConfig: unknown, mcpUse: unknown): Json {
  if (!isObject(mcpConfig) || !isObject(mcpUse)) return {};
  const used: Json = {};
  for (const [server, names] of Object.entries(mcpUse)) {
    const config = mcpConfig[server];
    if (!isObject(config)) continue;
    const tools = Array.isArray(config.mcpTools) ? config.mcpTools : [];
    const wanted = Array.isArray(names) ? names : [];
    used[server] = { ...config, mcpTools: tools.filter((tool) => wanted.includes(member(tool, "name"))) };
  }
  return used;
}

/** A saved React-Flow node as LAYRA's editor sends it to `/workflow/execute`. */
export function executionNode(node: Json): Json {
  const data = isObject(node.data) ? node.data : {};
  const model = data.modelConfig;
  return {
    id: node.id,
    type: data.nodeType,
    data: defined({
      name: data.label,
      code: data.code,
      conditions: data.conditions,
      loopType: data.loopType,
      maxCount: data.maxCount,
      condition: data.condition,
      pip: data.pip,
      imageUrl: data.imageUrl,
      modelConfig: defined({
        model_name: member(model, "modelName"),
        model_url: member(model, "modelURL"),
        api_key: member(model, "apiKey"),
        base_used: member(model, "baseUsed"),
        system_prompt: member(model, "systemPrompt"),
        temperature: orDefault(model, "useTemperatureDefault", "temperature"),
        max_length: orDefault(model, "useMaxLengthDefault", "maxLength"),
        top_P: orDefault(model, "useTopPDefault", "topP"),
        top_K: orDefault(model, "useTopKDefault", "topK"),
        score_threshold: orDefault(model, "useScoreThresholdDefault", "scoreThreshold"),
      }),
      prompt: data.prompt,
      vlmInput: data.vlmInput,
      chatflowOutputVariable: data.chatflowOutputVariable,
      isChatflowInput: data.isChatflowInput,
      isChatflowOutput: data.isChatflowOutput,
      useChatHistory: data.useChatHistory,
      mcpUse: usedMcpTools(data.mcpConfig, data.mcpUse),
    }),
  };
}

/** A saved React-Flow edge as LAYRA's editor sends it: its handle becomes `condition-{label}`, `loop_body` or `loop_next`. */
export function executionEdge(edge: Json): Json {
  const conditionLabel = member(edge.data, "conditionLabel");
  const ends = { source: edge.source, target: edge.target };
  if (conditionLabel) return { ...ends, sourceHandle: `condition-${pyStr(conditionLabel)}` };
  if (edge.sourceHandle === "source") return { ...ends, sourceHandle: "loop_body" };
  if (edge.targetHandle === "target") return { ...ends, sourceHandle: "loop_next" };
  return ends;
}

/** LAYRA's `Workflow` request model as `model_dump()` gives it: every field, in its declared order. */
export interface LayraWorkflowData {
  username: string;
  nodes: Json[];
  edges: Json[];
  start_node: string;
  global_variables: Json;
  debug_resume_task_id: string;
  breakpoints: string[];
  input_resume_task_id: string;
  user_message: string;
  parent_id: string;
  temp_db_id: string;
  chatflow_id: string;
  docker_image_use: string;
  need_save_image: string;
}

/** LAYRA's `send_workflow_task` message. */
export interface WorkflowTaskMessage {
  type: "workflow" | "debug_resume" | "input_resume";
  task_id: string;
  username: string;
  workflow_data: LayraWorkflowData;
}

/** LAYRA's endpoint's deep merge of a debug resume's variables into the saved state's (in place). */
export function deepUpdate(target: Json, source: Json): void {
  for (const [key, value] of Object.entries(source)) {
    if (isObject(value) && key in target && isObject(target[key])) deepUpdate(target[key], value);
    else target[key] = value;
  }
}

/** LAYRA's `str(beijing_time_now())`: `2025-09-20 21:34:46.123456+08:00` (Python leaves out a zero fraction). */
export function layraTimestamp(date: Date): string {
  const shifted = new Date(date.getTime() + 8 * 3600_000).toISOString();
  const [day, time] = shifted.slice(0, -1).split("T") as [string, string];
  const [seconds, millis] = time.split(".") as [string, string];
  return `${day} ${millis === "000" ? seconds : `${seconds}.${millis}000`}+08:00`;
}
