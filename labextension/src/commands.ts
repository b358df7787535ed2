/**
 * The SAIBench commands (palette category "SAIBench") and the notebook toolbar's menu.
 */
import type { JupyterFrontEnd } from '@jupyterlab/application';
import { ICommandPalette, ToolbarButton } from '@jupyterlab/apputils';
import type { NotebookPanel } from '@jupyterlab/notebook';
import { Menu } from '@lumino/widgets';

import { act, cancelRun, discover, runScenarios } from './actions';
import { insertCell, TEMPLATES } from './cells';
import { saibenchIcon } from './icons';
import type { SaibenchModel } from './model';
import { MODULE_KINDS } from './protocol';
import type { SaibenchSidebar } from './sidebar';

export const CATEGORY = 'SAIBench';

/** Command ids (stable: tests and users bind to them). */
export const CommandIDs = {
  discover: 'saibench:discover',
  runAll: 'saibench:run-all',
  runSelected: 'saibench:run-selected',
  cancel: 'saibench:cancel',
  showDashboard: 'saibench:show-dashboard',
  openResults: 'saibench:open-results',
  load: 'saibench:load',
  openSidebar: 'saibench:open-sidebar',
  refresh: 'saibench:refresh',
  insert: (kind: string): string => `saibench:insert-${kind}`
};

/**
 * Add the commands; put them in the palette; return the toolbar menu that lists them.
 */
export function addCommands(
  app: JupyterFrontEnd,
  model: SaibenchModel,
  sidebar: SaibenchSidebar,
  palette: ICommandPalette | null
): Menu {
  const { commands } = app;
  const ready = (): boolean => model.ready !== null;
  const hasNotebook = (): boolean => model.panel !== null;

  commands.addCommand(CommandIDs.discover, {
    label: 'Discover',
    caption: 'Discover the scenarios of the active notebook again (%sail discover)',
    isEnabled: ready,
    execute: async () => {
      const c = model.ready;
      return c ? discover(c) : undefined;
    }
  });
  commands.addCommand(CommandIDs.runAll, {
    label: 'Run all',
    caption: 'Run every scenario of the active notebook in the background (%sail run)',
    isEnabled: () => ready() && (model.ready?.state?.scenarios ?? 0) > 0,
    execute: async () => {
      const c = model.ready;
      return c ? runScenarios(c, null) : undefined;
    }
  });
  commands.addCommand(CommandIDs.runSelected, {
    label: 'Run selected',
    caption: 'Run the scenarios checked in the SAIBench sidebar',
    isEnabled: () => ready() && sidebar.selected.length > 0,
    execute: async () => {
      const c = model.ready;
      return c ? runScenarios(c, sidebar.selected) : undefined;
    }
  });
  commands.addCommand(CommandIDs.cancel, {
    label: 'Cancel run',
    caption: 'Cancel the last run of the active notebook (%sail cancel)',
    isEnabled: () => (model.ready?.state?.runs ?? []).some(r => r.status === 'running'),
    execute: async () => {
      const c = model.ready;
      return c ? cancelRun(c, null) : undefined;
    }
  });
  const inserting = (label: string, caption: string, code: string) => ({
    label,
    caption,
    isEnabled: hasNotebook,
    execute: async () => {
      if (model.panel) {
        await insertCell(model.panel, code, true);
      }
    }
  });
  commands.addCommand(CommandIDs.showDashboard,
    inserting('Show dashboard', 'Insert a %sail dashboard cell below the active cell and run it', '%sail dashboard'));
  commands.addCommand(CommandIDs.openResults,
    inserting('Open results', 'Insert a %sail results cell below the active cell and run it', '%sail results'));
  commands.addCommand(CommandIDs.load, {
    label: 'Load SAIBench in this kernel',
    caption: 'Run %load_ext saibench_jupyter in the active notebook\'s kernel',
    isEnabled: () => model.connection?.status === 'notloaded',
    execute: async () => model.connection?.load()
  });
  commands.addCommand(CommandIDs.refresh, {
    label: 'Refresh',
    caption: 'Ask the kernel again for its modules, scenarios and runs (resolves with its answer)',
    isEnabled: ready,
    execute: async () => {
      const c = model.ready;
      return c ? act(c, 'state', {}) : undefined;
    }
  });
  commands.addCommand(CommandIDs.openSidebar, {
    label: 'Open the SAIBench sidebar',
    icon: saibenchIcon,
    execute: () => app.shell.activateById(sidebar.id)
  });
  for (const kind of MODULE_KINDS) {
    commands.addCommand(CommandIDs.insert(kind), {
      label: `Insert %%${kind} template`,
      caption: `Insert a working %%${kind} example cell below the active cell`,
      isEnabled: hasNotebook,
      execute: async () => {
        if (model.panel) {
          await insertCell(model.panel, TEMPLATES[kind].source, false);
        }
      }
    });
  }
  // The enabled states follow the active kernel.
  model.changed.connect(() => commands.notifyCommandChanged());

  const ids = [
    CommandIDs.discover, CommandIDs.runAll, CommandIDs.runSelected, CommandIDs.cancel,
    CommandIDs.showDashboard, CommandIDs.openResults, CommandIDs.load, CommandIDs.openSidebar,
    CommandIDs.refresh, ...MODULE_KINDS.map(CommandIDs.insert)
  ];
  for (const command of ids) {
    palette?.addItem({ command, category: CATEGORY });
  }

  const templates = new Menu({ commands });
  templates.title.label = 'Insert template';
  for (const kind of MODULE_KINDS) {
    templates.addItem({ command: CommandIDs.insert(kind) });
  }
  const menu = new Menu({ commands });
  menu.addClass('saibench-menu');
  for (const command of ids.slice(0, 7)) {
    menu.addItem({ command });
  }
  menu.addItem({ type: 'separator' });
  menu.addItem({ type: 'submenu', submenu: templates });
  menu.addItem({ type: 'separator' });
  menu.addItem({ command: CommandIDs.openSidebar });
  return menu;
}

/** The notebook toolbar's "SAIBench" button: it opens the menu of commands. */
export function toolbarButton(menu: Menu): (panel: NotebookPanel) => ToolbarButton {
  return () => {
    const button: ToolbarButton = new ToolbarButton({
      icon: saibenchIcon,
      label: 'SAIBench',
      tooltip: 'SAIBench: discover, run, cancel, dashboard, results, module templates',
      onClick: () => {
        const rect = button.node.getBoundingClientRect();
        menu.open(rect.left, rect.bottom);
      }
    });
    button.addClass('saibench-toolbar-button');
    return button;
  };
}
