/**
 * One comm to one kernel: requests with their replies, pushes, and the latest `State`.
 */
import type { Kernel, KernelMessage } from '@jupyterlab/services';
import { ISignal, Signal } from '@lumino/signaling';

import {
  COMM_TARGET,
  IOps,
  IPodsPush,
  IState,
  isPush,
  isReply,
  LOAD_CODE,
  Op,
  Push
} from './protocol';

/**
 * Where a connection stands.
 *
 * - `connecting`: the comm is opening (the kernel answers once it is free);
 * - `ready`: SAIBench answered `hello`;
 * - `notloaded`: the kernel closed the comm: SAIBench is not loaded in it;
 * - `loading`: `%load_ext saibench_jupyter` is running;
 * - `unsupported`: not a Python kernel (SAIBench is never loaded there);
 * - `restarting`: the kernel is restarting (the comm is gone; it opens again when idle).
 */
export type ConnectionStatus =
  | 'connecting'
  | 'ready'
  | 'notloaded'
  | 'loading'
  | 'unsupported'
  | 'restarting';

interface IPending {
  resolve: (result: any) => void;
  reject: (error: Error) => void;
}

/**
 * The SAIBench comm of one kernel connection (one comm per kernel connection).
 */
export class SaibenchConnection {
  constructor(kernel: Kernel.IKernelConnection) {
    this.kernel = kernel;
    kernel.statusChanged.connect(this._onKernelStatus, this);
  }

  readonly kernel: Kernel.IKernelConnection;

  /** Emitted whenever the status, the state or the last error changes. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get status(): ConnectionStatus {
    return this._status;
  }

  /** The latest `State`, kept up to date by replies and pushes (null until the first). */
  get state(): IState | null {
    return this._state;
  }

  /** The last error reply (or failure to load), for the sidebar; null once cleared. */
  get error(): string | null {
    return this._error;
  }

  /** The SAIBench version the kernel reported in `hello`. */
  get version(): string | null {
    return this._version;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  /** Show an error in the sidebar (a failed request, or anything the user should see). */
  reportError(error: string): void {
    this._setError(error);
  }

  clearError(): void {
    if (this._error !== null) {
      this._error = null;
      this._changed.emit();
    }
  }

  /**
   * Open the comm (again) and ask for `hello` and the state.
   *
   * A kernel without the `saibench.lab` target closes the comm at once: the status
   * becomes `notloaded`.
   */
  connect(): Promise<void> {
    this._attempt = this._connect();
    return this._attempt;
  }

  /**
   * Connect again once the attempt under way has settled, unless it succeeded: a cell that
   * loads SAIBench may run while an attempt made before it is still waiting for the kernel.
   */
  async retry(): Promise<void> {
    await this._attempt?.catch(() => undefined);
    if (this._status === 'notloaded') {
      await this.connect();
    }
  }

  private async _connect(): Promise<void> {
    if (this._disposed) {
      return;
    }
    this._closeComm();
    this._setStatus('connecting');
    // Only ipykernel can load SAIBench; another kernel would log an unknown comm target.
    const info = await this.kernel.info.catch(() => null);
    if (this._disposed) {
      return;
    }
    if (info && info.language_info.name !== 'python') {
      this._setStatus('unsupported');
      return;
    }
    const comm = this.kernel.createComm(COMM_TARGET);
    // On the kernel's main shell, in turn with cells: a subshell (JupyterLab's default for comms) would
    // handle a request in another thread while a cell changes the modules or starts a run.
    (comm as unknown as { commsOverSubshells: string }).commsOverSubshells = 'disabled';
    this._comm = comm;
    comm.onMsg = msg => this._onMessage(msg);
    comm.onClose = () => {
      if (this._comm === comm) {
        this._comm = null;
        this._failPending('the kernel closed the SAIBench comm');
        this._setStatus('notloaded');
      }
    };
    try {
      comm.open({});
      const hello = await this.request('hello', {});
      this._version = hello.version;
      this._setStatus('ready');
      await this.request('state', {});
    } catch (error) {
      // A closed comm already set `notloaded`; anything else is worth showing.
      if (this._comm === comm) {
        this._setError(String((error as Error).message ?? error));
      }
    }
  }

  /** Run `%load_ext saibench_jupyter` silently in the kernel, then connect again. */
  async load(): Promise<void> {
    this._setStatus('loading');
    const future = this.kernel.requestExecute({
      code: LOAD_CODE,
      silent: true,
      store_history: false
    });
    let failure: string | null = null;
    future.onIOPub = msg => {
      if (msg.header.msg_type === 'error') {
        const content = msg.content as KernelMessage.IErrorMsg['content'];
        failure = `${content.ename}: ${content.evalue}`;
      }
    };
    try {
      const reply = await future.done;
      if (reply.content.status !== 'ok' && failure === null) {
        failure = `%load_ext saibench_jupyter ended with status ${reply.content.status}`;
      }
    } catch (error) {
      failure = String(error);
    }
    await this.connect();
    if (failure !== null) {
      this._setError(`Loading SAIBench failed: ${failure}`);
    }
  }

  /**
   * Send one request; resolve with the reply's `result`, reject with its `error`.
   *
   * `state` and `discover` replies also become the connection's state.
   */
  request<K extends Op>(op: K, args: IOps[K]['args']): Promise<IOps[K]['result']> {
    const comm = this._comm;
    if (comm === null || comm.isDisposed) {
      return Promise.reject(new Error('SAIBench is not connected to this kernel'));
    }
    const id = this._nextId++;
    const reply = new Promise<IOps[K]['result']>((resolve, reject) => {
      this._pending.set(id, { resolve, reject });
    });
    comm.send({ id, op, args } as any);
    if (op === 'state' || op === 'discover') {
      return reply.then(state => {
        this._setState(state as IState);
        return state;
      });
    }
    return reply;
  }

  /** Ask for the state again (after a push that names a run the state lacks). */
  refresh(): void {
    if (this._status === 'ready') {
      this.request('state', {}).catch(error => this._setError(String(error.message)));
    }
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this.kernel.statusChanged.disconnect(this._onKernelStatus, this);
    this._closeComm();
    Signal.clearData(this);
  }

  private _onMessage(msg: KernelMessage.ICommMsgMsg): void {
    const data = msg.content.data as unknown;
    if (isReply(data)) {
      const pending = data.id === null ? undefined : this._pending.get(data.id);
      if (data.id !== null) {
        this._pending.delete(data.id);
      }
      if (data.ok) {
        pending?.resolve(data.result);
      } else if (pending) {
        pending.reject(new Error(data.error));
      } else {
        this._setError(data.error);
      }
    } else if (isPush(data)) {
      this._onPush(data);
    }
  }

  private _onPush(push: Push): void {
    switch (push.event) {
      case 'state':
        this._setState(push.state);
        break;
      case 'pods':
        this._mergePods(push);
        break;
      case 'run': {
        const run = this._state?.runs.find(r => r.run === push.run);
        if (run) {
          run.status = push.status as typeof run.status;
          this._changed.emit();
        }
        // A new run's pods, or an ended run's final counts, come with the state.
        this.refresh();
        break;
      }
    }
  }

  private _mergePods(push: IPodsPush): void {
    const state = this._state;
    const run = state?.runs.find(r => r.run === push.run);
    if (!state || !run) {
      this.refresh();
      return;
    }
    state.counts = push.counts;
    const index = new Map(run.pods.map((p, i) => [p.pod, i]));
    for (const pod of push.pods) {
      const at = index.get(pod.pod);
      if (at === undefined) {
        run.pods.push(pod);
      } else {
        run.pods[at] = pod;
      }
    }
    this._changed.emit();
  }

  private _onKernelStatus(_: Kernel.IKernelConnection, status: KernelMessage.Status): void {
    if (status === 'restarting' || status === 'autorestarting' || status === 'dead') {
      // The kernel's comms are gone with its state (JupyterLab disposes them silently).
      this._closeComm();
      this._state = null;
      this._setStatus('restarting');
    } else if (status === 'idle' && this._status === 'restarting') {
      void this.connect();
    }
  }

  private _setState(state: IState): void {
    this._state = state;
    this._changed.emit();
  }

  private _setStatus(status: ConnectionStatus): void {
    if (status !== this._status) {
      this._status = status;
      this._changed.emit();
    }
  }

  private _setError(error: string): void {
    this._error = error;
    this._changed.emit();
  }

  private _failPending(reason: string): void {
    const pending = [...this._pending.values()];
    this._pending.clear();
    for (const p of pending) {
      p.reject(new Error(reason));
    }
  }

  private _closeComm(): void {
    const comm = this._comm;
    this._comm = null;
    this._failPending('the SAIBench comm was closed');
    if (comm && !comm.isDisposed && !this.kernel.isDisposed) {
      try {
        comm.close();
      } catch {
        comm.dispose();
      }
    }
  }

  private _changed = new Signal<this, void>(this);
  private _comm: Kernel.IComm | null = null;
  private _disposed = false;
  private _error: string | null = null;
  private _nextId = 0;
  private _pending = new Map<number, IPending>();
  private _state: IState | null = null;
  private _status: ConnectionStatus = 'connecting';
  private _attempt: Promise<void> | null = null;
  private _version: string | null = null;
}
