/**
 * The "SAIBench" tab of the left area, for the active notebook's kernel: modules, counts,
 * the problem → model tree, the buttons, and the runs with their pods.
 *
 * Plain DOM in a Lumino widget (no React: less to load). It renders only while visible,
 * at most once per animation frame. Stable hooks for tests: `#saibench-sidebar`,
 * `data-action` on buttons, `data-problem`/`data-model` on tree nodes, `data-run` on runs,
 * `data-pod` and `data-status` on pods.
 */
import { Widget } from '@lumino/widgets';

import { cancelRun, discover, runScenarios } from './actions';
import type { SaibenchConnection } from './connection';
import { saibenchIcon } from './icons';
import type { SaibenchModel } from './model';
import { IPodDetail, IPodInfo, IRunInfo, IState, MODULE_KINDS } from './protocol';

type Child = Node | string | null | undefined | false;

/** A DOM element with attributes (`class`, `data-*`, `title` ...) and children. */
function h(tag: string, attrs: Record<string, string | number | boolean | null | undefined>, ...children: Child[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) {
      continue;
    }
    el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child !== null && child !== undefined && child !== false) {
      el.append(child);
    }
  }
  return el;
}

/** The pods of one run by outcome, counted the way the kernel's `counts` are (queued only while some wait). */
function runCounts(run: IRunInfo): string {
  let queued = 0;
  let running = 0;
  let done = 0;
  let failed = 0;
  for (const pod of run.pods) {
    if (pod.status === 'queued') {
      queued++;
    } else if (pod.status === 'running') {
      running++;
    } else if (pod.status === 'ok' || pod.status === 'diverged' || pod.status === 'shared') {
      done++;
    } else if (pod.status === 'failed') {
      failed++;
    }
  }
  const waiting = queued > 0 ? `${queued} queued · ` : '';
  return `${waiting}${running} running · ${done} done · ${failed} failed · ${run.pods.length} pods`;
}

/**
 * A scenario's label under its problem's node: without the leading "<problem> × " (the node
 * says it), unless the problem has parameters there (they tell its scenarios apart).
 */
function scenarioLabel(problem: string, label: string): string {
  const head = `${problem} × `;
  return label.startsWith(head) ? label.slice(head.length) : label;
}

const BUSY_LABEL: Record<string, string> = {
  discover: 'Discovering…',
  run: 'Starting…',
  cancel: 'Cancelling…',
  load: 'Loading…'
};

interface IPodView {
  pod: string;
  detail: IPodDetail | null;
  error: string | null;
}

export class SaibenchSidebar extends Widget {
  constructor(model: SaibenchModel) {
    super();
    this._model = model;
    this.id = 'saibench-sidebar';
    this.addClass('saibench-sidebar');
    this.title.icon = saibenchIcon;
    this.title.caption = 'SAIBench';
    model.changed.connect(this._onModelChanged, this);
    this.node.addEventListener('click', this);
    this.node.addEventListener('change', this);
  }

  /** The scenario ids selected in the tree ("Run selected"). */
  get selected(): string[] {
    return [...this._selected];
  }

  handleEvent(event: Event): void {
    const target = event.target as HTMLElement;
    if (event.type === 'change' && target instanceof HTMLInputElement) {
      this._onCheck(target);
      return;
    }
    if (event.type !== 'click') {
      return;
    }
    if (target.closest('.saibench-pod-detail')) {
      return; // reading a pod's details (opening its traceback) does not close them
    }
    const action = target.closest<HTMLElement>('[data-action]');
    if (action && !(action as HTMLButtonElement).disabled) {
      void this._onAction(action.dataset.action!, action);
    }
  }

  protected onAfterShow(): void {
    this._schedule();
  }

  private _onModelChanged(): void {
    const connection = this._model.connection;
    if (connection !== this._connection) {
      this._connection = connection;
      this._selected.clear();
      this._pod = null;
    }
    this._schedule();
  }

  private _schedule(): void {
    if (!this.isVisible || this._frame !== 0) {
      return;
    }
    this._frame = requestAnimationFrame(() => {
      this._frame = 0;
      this._render();
    });
  }

  // -- actions --------------------------------------------------------------------------------

  private async _onAction(action: string, el: HTMLElement): Promise<void> {
    const connection = this._model.connection;
    if (action === 'toggle-run') {
      const run = Number(el.dataset.run);
      this._openRuns.set(run, !this._isRunOpen(run));
      this._schedule();
      return;
    }
    if (action === 'toggle-model') {
      const key = el.dataset.key!;
      this._openModels.has(key) ? this._openModels.delete(key) : this._openModels.add(key);
      this._schedule();
      return;
    }
    if (action === 'dismiss') {
      connection?.clearError();
      return;
    }
    if (connection === null) {
      return;
    }
    if (action === 'pod') {
      await this._showPod(connection, el.dataset.pod!);
      return;
    }
    this._busy = action;
    this._schedule();
    try {
      switch (action) {
        case 'discover':
          await discover(connection);
          break;
        case 'run-all':
          await runScenarios(connection, null);
          break;
        case 'run-selected':
          await runScenarios(connection, this.selected);
          break;
        case 'cancel':
          await cancelRun(connection, this._newestRunning());
          break;
        case 'load':
          await connection.load();
          break;
        case 'reconnect':
          await connection.connect();
          break;
      }
    } finally {
      this._busy = null;
      this._schedule();
    }
  }

  private async _showPod(connection: SaibenchConnection, pod: string): Promise<void> {
    if (this._pod?.pod === pod) {
      this._pod = null; // a second click closes it
      this._schedule();
      return;
    }
    const view: IPodView = { pod, detail: null, error: null };
    this._pod = view;
    this._schedule();
    try {
      view.detail = await connection.request('pod', { pod });
    } catch (error) {
      view.error = (error as Error).message;
    }
    this._schedule();
  }

  private _onCheck(input: HTMLInputElement): void {
    const ids = (input.dataset.scenarios ?? '').split('\n').filter(Boolean);
    for (const id of ids) {
      input.checked ? this._selected.add(id) : this._selected.delete(id);
    }
    this._schedule();
  }

  /** The newest run still going (null: the last run), which Cancel stops: an older one may run on. */
  private _newestRunning(): number | null {
    const runs = this._connection?.state?.runs ?? [];
    for (let i = runs.length - 1; i >= 0; i--) {
      if (runs[i].status === 'running') {
        return runs[i].run;
      }
    }
    return null;
  }

  private _isRunOpen(run: number): boolean {
    const runs = this._connection?.state?.runs ?? [];
    // The newest run is open until the user closes it; the others closed until opened.
    return this._openRuns.get(run) ?? (runs.length > 0 && runs[runs.length - 1].run === run);
  }

  // -- rendering ------------------------------------------------------------------------------

  private _render(): void {
    const scroll = this.node.scrollTop;
    const connection = this._model.connection;
    const body: Child[] = [h('h2', { class: 'saibench-title' }, 'SAIBench')];
    const availability = this._model.availability;
    if (availability === 'nonotebook') {
      body.push(this._message('nonotebook', 'No notebook is open: open one to benchmark with SAIBench.'));
    } else if (availability === 'nokernel' || connection === null) {
      body.push(this._message('nokernel', 'This notebook has no kernel: start one to use SAIBench.'));
    } else {
      body.push(...this._renderConnection(connection));
    }
    this.node.replaceChildren(...(body.filter(Boolean) as Node[]));
    this.node.scrollTop = scroll;
  }

  private _message(kind: string, text: string, ...extra: Child[]): HTMLElement {
    return h('div', { class: 'saibench-message', 'data-message': kind }, h('p', {}, text), ...extra);
  }

  private _button(action: string, label: string, title: string, disabled = false): HTMLElement {
    const busy = this._busy === action || (action.startsWith('run') && this._busy?.startsWith('run'));
    return h(
      'button',
      {
        class: 'jp-Button saibench-button',
        'data-action': action,
        title,
        disabled: disabled || this._busy !== null
      },
      busy ? (BUSY_LABEL[action.split('-')[0]] ?? label) : label
    );
  }

  private _renderConnection(connection: SaibenchConnection): Child[] {
    const name = this._model.panel?.title.label ?? '';
    const out: Child[] = [h('div', { class: 'saibench-kernel', title: 'the active notebook' }, name)];
    if (connection.error !== null) {
      out.push(
        h(
          'div',
          { class: 'saibench-error', role: 'alert' },
          h('pre', {}, connection.error),
          h('button', { class: 'saibench-dismiss', 'data-action': 'dismiss', title: 'Dismiss' }, '×')
        )
      );
    }
    switch (connection.status) {
      case 'connecting':
        out.push(this._message('connecting', 'Connecting to the kernel… (it answers once it is free)'));
        return out;
      case 'restarting':
        out.push(this._message('restarting', 'The kernel is restarting…'));
        return out;
      case 'unsupported':
        out.push(this._message('unsupported', 'SAIBench needs a Python kernel (ipykernel).'));
        return out;
      case 'loading':
        out.push(this._message('loading', 'Loading SAIBench in this kernel…'));
        return out;
      case 'notloaded':
        out.push(
          this._message(
            'notloaded',
            'SAIBench is not loaded in this kernel',
            h('div', { class: 'saibench-actions' },
              this._button('load', 'Load SAIBench', 'Run %load_ext saibench_jupyter in this kernel'))
          )
        );
        return out;
    }
    const state = connection.state;
    if (state === null) {
      out.push(this._message('connecting', 'Asking the kernel for its modules…'));
      return out;
    }
    this._pruneSelection(state);
    const running = state.runs.some(r => r.status === 'running');
    out.push(
      h('div', { class: 'saibench-actions' },
        this._button('discover', 'Discover', 'Discover the scenarios again (%sail discover)'),
        this._button('run-all', 'Run all', 'Run every scenario (%sail run)', state.scenarios === 0),
        this._button('run-selected', `Run selected (${this._selected.size})`, 'Run the scenarios checked in the tree',
          this._selected.size === 0),
        this._button('cancel', 'Cancel', 'Cancel the newest run still going', !running)),
      h('div', { class: 'saibench-summary' },
        h('span', { 'data-count': 'scenarios' }, `${state.scenarios} scenario${state.scenarios === 1 ? '' : 's'}`),
        ' · ',
        h('span', { 'data-count': 'rejections' }, `${state.rejections} rejection${state.rejections === 1 ? '' : 's'}`)),
      this._renderModules(state),
      this._renderTree(state),
      this._renderRuns(state)
    );
    return out;
  }

  private _section(key: string, title: string, ...children: Child[]): HTMLElement {
    return h('section', { class: 'saibench-section', 'data-section': key }, h('h3', {}, title), ...children);
  }

  private _renderModules(state: IState): HTMLElement {
    if (state.modules.length === 0) {
      return this._section('modules', 'Modules',
        h('p', { class: 'saibench-empty' }, 'No modules yet: run a %%problem, %%model … cell, or insert a template ' +
          'from the SAIBench toolbar menu.'));
    }
    const rows: Child[] = [];
    for (const kind of MODULE_KINDS) {
      const modules = state.modules.filter(m => m.kind === kind);
      if (modules.length === 0) {
        continue;
      }
      rows.push(
        h('div', { class: 'saibench-kind', 'data-kind': kind },
          h('span', { class: 'saibench-kind-name' }, kind),
          ...modules.map(m =>
            h('span', {
              class: 'saibench-module',
              'data-module': m.name,
              title: `${m.doc || '(no docstring)'}\n— ${m.origin}, line ${m.line}`
            }, m.name)))
      );
    }
    const support = state.support.reduce((n, s) => n + s.names.length, 0);
    if (support > 0) {
      rows.push(h('div', { class: 'saibench-kind', 'data-kind': 'support' },
        h('span', { class: 'saibench-kind-name' }, 'support'),
        h('span', { class: 'saibench-module', title: state.support.map(s => `${s.origin}: ${s.names.join(', ')}`)
          .join('\n') }, `${support} name${support === 1 ? '' : 's'} in ${state.support.length} source(s)`)));
    }
    return this._section('modules', 'Modules', ...rows);
  }

  private _renderTree(state: IState): HTMLElement {
    if (state.tree.length === 0) {
      return this._section('tree', 'Scenarios', h('p', { class: 'saibench-empty' }, 'No problem registered yet.'));
    }
    const problems = state.tree.map(p => {
      const ids = p.models.flatMap(m => m.scenarios);
      const models = p.models.map(m => {
        const key = `${p.problem}\n${m.model}`;
        const open = this._openModels.has(key) && m.scenarios.length > 0;
        const label = m.rejected !== null
          ? h('span', { class: 'saibench-reason' }, `rejected: ${m.rejected}`)
          : h('span', { class: 'saibench-count', 'data-action': 'toggle-model', 'data-key': key,
            title: 'Show the scenarios' }, `${m.scenarios.length} scenario${m.scenarios.length === 1 ? '' : 's'} ${open ? '▾' : '▸'}`);
        return h('li', {
          class: `saibench-model${m.rejected !== null ? ' saibench-rejected' : ''}`,
          'data-problem': p.problem,
          'data-model': m.model,
          title: m.rejected ?? null
        },
        h('label', {}, this._checkbox(m.scenarios), h('span', { class: 'saibench-node-name' }, m.model)),
        ' ', label,
        open && h('ul', { class: 'saibench-scenarios' }, ...m.scenarios.map((id, i) => {
          const label = m.labels?.[i] ?? id; // a kernel without labels: the id
          return h('li', { class: 'saibench-scenario', 'data-scenario': id, title: `${label}\nid: ${id}` },
            h('label', {}, this._checkbox([id]),
              h('span', { class: 'saibench-scenario-label' }, scenarioLabel(p.problem, label))));
        })));
      });
      return h('li', { class: 'saibench-problem', 'data-problem': p.problem },
        h('label', {}, this._checkbox(ids), h('span', { class: 'saibench-node-name' }, p.problem)),
        h('ul', {}, ...models));
    });
    return this._section('tree', 'Scenarios', h('ul', { class: 'saibench-tree' }, ...problems));
  }

  /** Forget selected scenario ids that discovery no longer finds. */
  private _pruneSelection(state: IState): void {
    if (this._selected.size === 0) {
      return;
    }
    const known = new Set(state.tree.flatMap(p => p.models.flatMap(m => m.scenarios)));
    for (const id of [...this._selected]) {
      if (!known.has(id)) {
        this._selected.delete(id);
      }
    }
  }

  /** A checkbox over these scenario ids: checked when all are selected, mixed when some. */
  private _checkbox(ids: string[]): HTMLInputElement {
    const box = h('input', { type: 'checkbox', disabled: ids.length === 0 }) as HTMLInputElement;
    box.dataset.scenarios = ids.join('\n');
    const selected = ids.filter(id => this._selected.has(id)).length;
    box.checked = ids.length > 0 && selected === ids.length;
    box.indeterminate = selected > 0 && selected < ids.length;
    return box;
  }

  private _renderRuns(state: IState): HTMLElement {
    if (state.runs.length === 0) {
      return this._section('runs', 'Runs', h('p', { class: 'saibench-empty' }, 'No run yet in this notebook.'));
    }
    const runs = [...state.runs].reverse().map(run => {
      const open = this._isRunOpen(run.run);
      return h('div', { class: 'saibench-run', 'data-run': run.run, 'data-status': run.status },
        h('div', { class: 'saibench-run-header', 'data-action': 'toggle-run', 'data-run': run.run },
          `${open ? '▾' : '▸'} Run ${run.run} — ${run.status} (${run.executor}): ${runCounts(run)}`),
        open && h('ul', { class: 'saibench-pods' }, ...run.pods.map(pod => this._renderPod(pod))));
    });
    return this._section('runs', 'Runs', ...runs);
  }

  private _renderPod(pod: IPodInfo): HTMLElement {
    const finished = pod.status !== 'queued' && pod.status !== 'running';
    const row = h('li', {
      class: `saibench-pod saibench-pod-${pod.status}`,
      'data-pod': pod.pod,
      'data-status': pod.status,
      'data-action': finished ? 'pod' : null,
      title: finished ? 'Show this pod\'s details' : null
    },
    h('span', { class: 'saibench-pod-status' }, pod.status),
    h('span', { class: 'saibench-pod-label' }, pod.label + (pod.repeat > 0 ? ` r${pod.repeat}` : '')),
    pod.message !== null && h('div', { class: 'saibench-pod-reason' }, `${pod.kind ?? 'error'}: ${pod.message}`));
    if (this._pod?.pod === pod.pod) {
      row.append(this._renderPodDetail(this._pod));
    }
    return row;
  }

  private _renderPodDetail(view: IPodView): HTMLElement {
    const d = view.detail;
    if (view.error !== null) {
      return h('div', { class: 'saibench-pod-detail' }, h('pre', { class: 'saibench-error' }, view.error));
    }
    if (d === null) {
      return h('div', { class: 'saibench-pod-detail' }, 'Loading…');
    }
    return h('div', { class: 'saibench-pod-detail', 'data-pod-detail': d.pod },
      d.message !== null && h('div', { class: 'saibench-pod-reason' }, `${d.kind ?? d.status}: ${d.message}`),
      d.fix !== null && h('div', { class: 'saibench-pod-fix' }, `fix: ${d.fix}`),
      d.location !== null && h('div', { class: 'saibench-pod-location' }, d.location),
      d.stderr !== null && d.stderr !== '' &&
        h('details', { open: true }, h('summary', {}, 'stderr (tail)'), h('pre', { class: 'saibench-stderr' }, d.stderr)),
      d.traceback !== null && d.traceback !== '' &&
        h('details', {}, h('summary', {}, 'traceback'), h('pre', { class: 'saibench-traceback' }, d.traceback)),
      d.message === null && d.stderr === null && d.traceback === null && h('div', {}, `status: ${d.status}`));
  }

  private _busy: string | null = null;
  private _connection: SaibenchConnection | null = null;
  private _frame = 0;
  private _model: SaibenchModel;
  private _openModels = new Set<string>();
  private _openRuns = new Map<number, boolean>();
  private _pod: IPodView | null = null;
  private _selected = new Set<string>();
}
