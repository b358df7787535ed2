/**
 * The kernel ↔ front-end protocol of the SAIBench JupyterLab extension (version 1).
 *
 * These types mirror LAB_PROTOCOL.md exactly; the kernel side
 * (`saibench_jupyter/ui/_lab.py`) implements the same messages as TypedDicts.
 */

/** The protocol version that `hello` answers with. */
export const PROTOCOL_VERSION = 1;

/** The comm target that `%load_ext saibench_jupyter` registers in the kernel. */
export const COMM_TARGET = 'saibench.lab';

/** The fixed code the "Load SAIBench" button runs (silently) in the kernel. */
export const LOAD_CODE = '%load_ext saibench_jupyter';

/** A module kind, in the order the sidebar lists them. */
export const MODULE_KINDS = [
  'problem',
  'model',
  'metric',
  'converter',
  'software',
  'hardware',
  'ranking'
] as const;
export type ModuleKind = (typeof MODULE_KINDS)[number];

// -- types ----------------------------------------------------------------------------------

export interface IModuleInfo {
  kind: ModuleKind;
  name: string;
  doc: string;
  origin: string;
  line: number;
}

export interface ISupportInfo {
  origin: string;
  names: string[];
}

/** One problem × model node: its scenario ids, or why the pair has none. */
export interface IModelNode {
  model: string;
  scenarios: string[];
  /** Each scenario's label, as `%sail discover` prints it, in the order of `scenarios`. */
  labels: string[];
  rejected: string | null;
}

export interface IProblemNode {
  problem: string;
  models: IModelNode[];
}

export type PodStatus =
  | 'queued'
  | 'running'
  | 'ok'
  | 'diverged'
  | 'failed'
  | 'cancelled'
  | 'shared';

export type RunStatus = 'running' | 'finished' | 'cancelled' | 'failed';

export interface IPodInfo {
  /** The pod key, `<identity>-r<repeat>`. */
  pod: string;
  label: string;
  repeat: number;
  status: PodStatus;
  /** The failure's kind and message (failed pods only). */
  kind: string | null;
  message: string | null;
}

/** A run with every pod it plans: those not started yet are `queued`. */
export interface IRunInfo {
  run: number;
  status: RunStatus;
  executor: string;
  pods: IPodInfo[];
}

/** Pods over all runs: what the status bar shows. */
export interface ICounts {
  /** Pods planned by runs still going that have not started yet. */
  queued: number;
  running: number;
  done: number;
  failed: number;
}

export interface IState {
  modules: IModuleInfo[];
  support: ISupportInfo[];
  scenarios: number;
  rejections: number;
  tree: IProblemNode[];
  /** This notebook's runs, oldest first (at most the last 20). */
  runs: IRunInfo[];
  counts: ICounts;
}

export interface IPodDetail {
  pod: string;
  label: string;
  status: string;
  kind: string | null;
  message: string | null;
  fix: string | null;
  location: string | null;
  stderr: string | null;
  traceback: string | null;
}

export interface IHelloResult {
  protocol: number;
  version: string;
}

export interface IRunResult {
  run: number;
}

export interface ICancelResult {
  run: number;
  status: string;
}

// -- requests (front end → kernel) ------------------------------------------------------------

/** Each operation's arguments and the `result` of its reply. */
export interface IOps {
  hello: { args: Record<string, never>; result: IHelloResult };
  state: { args: Record<string, never>; result: IState };
  discover: { args: Record<string, never>; result: IState };
  run: { args: { scenarios: string[] | null }; result: IRunResult };
  cancel: { args: { run: number | null }; result: ICancelResult };
  pod: { args: { pod: string }; result: IPodDetail };
}

export type Op = keyof IOps;

export interface IRequest<K extends Op = Op> {
  id: number;
  op: K;
  args: IOps[K]['args'];
}

// -- replies and pushes (kernel → front end) -------------------------------------------------

export interface IOkReply<R = unknown> {
  id: number;
  ok: true;
  result: R;
}

export interface IErrorReply {
  id: number | null;
  ok: false;
  error: string;
}

export type Reply<R = unknown> = IOkReply<R> | IErrorReply;

export interface IStatePush {
  event: 'state';
  state: IState;
}

export interface IPodsPush {
  event: 'pods';
  run: number;
  counts: ICounts;
  /** The pods whose status changed. */
  pods: IPodInfo[];
}

export interface IRunPush {
  event: 'run';
  run: number;
  status: string;
}

export type Push = IStatePush | IPodsPush | IRunPush;

/** A message from the kernel: a reply (has `ok`) or a push (has `event`). */
export type KernelMessage = Reply | Push;

/** Whether a comm message is a push (pushes never carry an `id`). */
export function isPush(data: unknown): data is Push {
  return typeof data === 'object' && data !== null && 'event' in data && !('id' in data);
}

/** Whether a comm message is a reply. */
export function isReply(data: unknown): data is Reply {
  return typeof data === 'object' && data !== null && 'ok' in data && 'id' in data;
}
