/**
 * The active notebook's kernel and its SAIBench connection, followed as the user switches
 * notebooks or kernels.
 */
import type { INotebookTracker, Notebook, NotebookPanel } from '@jupyterlab/notebook';
import { NotebookActions } from '@jupyterlab/notebook';
import type { Kernel } from '@jupyterlab/services';
import { ISignal, Signal } from '@lumino/signaling';

import { SaibenchConnection } from './connection';

/** What the sidebar and the status bar show when there is no connection to show. */
export type Availability = 'nonotebook' | 'nokernel' | 'connected';

/**
 * Follows `INotebookTracker.currentWidget` and its session's kernel; keeps one
 * `SaibenchConnection` per kernel connection (so switching back is instant).
 */
export class SaibenchModel {
  constructor(tracker: INotebookTracker) {
    this._tracker = tracker;
    tracker.currentChanged.connect((_, panel) => this._setPanel(panel), this);
    NotebookActions.executed.connect(this._onExecuted, this);
    this._setPanel(tracker.currentWidget);
  }

  /** Emitted when the panel, its kernel, or the connection's content changes. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get panel(): NotebookPanel | null {
    return this._panel;
  }

  get connection(): SaibenchConnection | null {
    return this._connection;
  }

  get availability(): Availability {
    if (this._panel === null) {
      return 'nonotebook';
    }
    return this._connection === null ? 'nokernel' : 'connected';
  }

  /** The connection, when SAIBench answered in the active kernel. */
  get ready(): SaibenchConnection | null {
    const c = this._connection;
    return c !== null && c.status === 'ready' ? c : null;
  }

  private _setPanel(panel: NotebookPanel | null): void {
    if (panel === this._panel) {
      return;
    }
    this._panel?.sessionContext.kernelChanged.disconnect(this._onKernelChanged, this);
    this._panel = panel;
    panel?.sessionContext.kernelChanged.connect(this._onKernelChanged, this);
    this._setKernel(panel?.sessionContext.session?.kernel ?? null);
  }

  private _onKernelChanged(): void {
    this._setKernel(this._panel?.sessionContext.session?.kernel ?? null);
  }

  private _setKernel(kernel: Kernel.IKernelConnection | null): void {
    let connection: SaibenchConnection | null = null;
    if (kernel !== null && !kernel.isDisposed) {
      connection = this._connections.get(kernel) ?? null;
      if (connection === null) {
        connection = new SaibenchConnection(kernel);
        this._connections.set(kernel, connection);
        kernel.disposed.connect(this._onKernelDisposed, this);
        void connection.connect();
      }
    }
    if (connection !== this._connection) {
      this._connection?.changed.disconnect(this._emit, this);
      this._connection = connection;
      connection?.changed.connect(this._emit, this);
    }
    this._emit();
  }

  private _onKernelDisposed(kernel: Kernel.IKernelConnection): void {
    const connection = this._connections.get(kernel);
    this._connections.delete(kernel);
    connection?.dispose();
    if (connection === this._connection) {
      this._connection = null;
      this._emit();
    }
  }

  /**
   * A cell that mentions SAIBench ran while it was not loaded (`%load_ext saibench_jupyter`
   * typed by hand): try the comm again. Other cells don't, so that a kernel that never
   * loads SAIBench is not asked (and its log not filled) at every cell.
   */
  private _onExecuted(
    _: unknown,
    args: { notebook: Notebook; cell: { model: { sharedModel: { getSource(): string } } } }
  ): void {
    const panel = this._tracker.find(p => p.content === args.notebook);
    const kernel = panel?.sessionContext.session?.kernel;
    const connection = kernel ? this._connections.get(kernel) : undefined;
    if (connection?.status !== 'notloaded' && connection?.status !== 'connecting') {
      return;
    }
    if (args.cell.model.sharedModel.getSource().includes('saibench')) {
      void connection.retry();
    }
  }

  private _emit(): void {
    this._changed.emit();
  }

  private _changed = new Signal<this, void>(this);
  private _connection: SaibenchConnection | null = null;
  private _connections = new Map<Kernel.IKernelConnection, SaibenchConnection>();
  private _panel: NotebookPanel | null = null;
  private _tracker: INotebookTracker;
}
