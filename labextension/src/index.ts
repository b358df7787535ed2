/**
 * SAIBench for Jupyter in JupyterLab: a sidebar, palette and toolbar commands, and a
 * status-bar item, all for the active notebook's kernel (over the `saibench.lab` comm).
 *
 * Activation only wires things up: no request is sent until a notebook with a kernel is
 * active, and the sidebar renders only while it is shown.
 */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { IStatusBar } from '@jupyterlab/statusbar';

import { addCommands, toolbarButton } from './commands';
import { SaibenchModel } from './model';
import { SaibenchSidebar } from './sidebar';
import { SaibenchStatus } from './statusbar';

const PLUGIN_ID = 'saibench-jupyter-labextension:plugin';

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'SAIBench sidebar, commands and status-bar item for the active notebook\'s kernel.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ICommandPalette, IStatusBar],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    palette: ICommandPalette | null,
    statusBar: IStatusBar | null
  ): void => {
    const model = new SaibenchModel(tracker);

    const sidebar = new SaibenchSidebar(model);
    app.shell.add(sidebar, 'left', { rank: 850 });

    const menu = addCommands(app, model, sidebar, palette);
    const createButton = toolbarButton(menu);
    app.docRegistry.addWidgetExtension('Notebook', {
      createNew: (panel: NotebookPanel) => {
        const button = createButton(panel);
        panel.toolbar.insertAfter('cellType', 'saibench', button);
        return button;
      }
    });

    if (statusBar) {
      const item = new SaibenchStatus(model, () => app.shell.activateById(sidebar.id));
      statusBar.registerStatusItem('saibench-jupyter-labextension:status', {
        item,
        align: 'left',
        rank: 5,
        isActive: () => item.isActive,
        activeStateChanged: item.activeStateChanged
      });
    }
  }
};

export default plugin;
