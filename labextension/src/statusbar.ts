/**
 * The status-bar item: "SAIBench: 3 queued · 2 running · 14 done · 1 failed" for the active kernel
 * (the queued part only while pods wait).
 */
import { Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import type { SaibenchModel } from './model';

/** The item's text for the model's active kernel; null hides it (no notebook or kernel). */
export function statusText(model: SaibenchModel): string | null {
  const connection = model.connection;
  if (connection === null) {
    return null;
  }
  switch (connection.status) {
    case 'ready': {
      const counts = connection.state?.counts;
      if (!counts) {
        return 'SAIBench';
      }
      const queued = counts.queued > 0 ? `${counts.queued} queued · ` : '';
      return `SAIBench: ${queued}${counts.running} running · ${counts.done} done · ${counts.failed} failed`;
    }
    case 'notloaded':
      return 'SAIBench: not loaded';
    case 'unsupported':
      return null;
    default:
      return 'SAIBench: …';
  }
}

/**
 * A text item (`#saibench-status`); a click runs `onClick` (which opens the sidebar).
 */
export class SaibenchStatus extends Widget {
  constructor(model: SaibenchModel, onClick: () => void) {
    super();
    this.id = 'saibench-status';
    this.addClass('saibench-status');
    this.addClass('jp-StatusBar-TextItem');
    this.node.title = 'SAIBench pods of the active notebook\'s kernel: click to open the SAIBench sidebar';
    this.node.addEventListener('click', onClick);
    this._model = model;
    model.changed.connect(this._update, this);
    this._update();
  }

  /** Emitted when the item appears or disappears (the status bar's `activeStateChanged`). */
  readonly activeStateChanged = new Signal<this, void>(this);

  get isActive(): boolean {
    return this._text !== null;
  }

  private _update(): void {
    const text = statusText(this._model);
    if (text === this._text) {
      return;
    }
    const wasActive = this.isActive;
    this._text = text;
    this.node.textContent = text ?? '';
    const counts = this._model.connection?.state?.counts;
    this.node.dataset.queued = String(counts?.queued ?? 0);
    this.node.dataset.running = String(counts?.running ?? 0);
    this.node.dataset.failed = String(counts?.failed ?? 0);
    if (wasActive !== this.isActive) {
      this.activeStateChanged.emit();
    }
  }

  private _model: SaibenchModel;
  private _text: string | null = null;
}
