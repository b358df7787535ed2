/**
 * Cells the commands insert: the module templates (one source shared with the Python
 * test, `templates.json`) and the `%sail dashboard` / `%sail results` cells.
 */
import { NotebookActions, NotebookPanel } from '@jupyterlab/notebook';

import type { ModuleKind } from './protocol';
import templates from './templates.json';

export interface ITemplate {
  label: string;
  /** The whole cell, its `%%kind` line first. */
  source: string;
}

/**
 * One working example per module kind: together they form a runnable scenario
 * (Doubling × Scaler × NumPy × OneCore, with MaxError, ListAsTensor and MostAccurate).
 */
export const TEMPLATES: Record<ModuleKind, ITemplate> = templates;

/** Insert a code cell holding `source` below the active cell; run it when `run` is true. */
export async function insertCell(panel: NotebookPanel, source: string, run: boolean): Promise<void> {
  const notebook = panel.content;
  NotebookActions.insertBelow(notebook);
  const cell = notebook.activeCell;
  if (cell === null) {
    return;
  }
  if (cell.model.type !== 'code') {
    NotebookActions.changeCellType(notebook, 'code');
  }
  notebook.activeCell?.model.sharedModel.setSource(source);
  if (run) {
    await NotebookActions.run(notebook, panel.sessionContext);
  }
}
