/**
 * aiops_lab in JupyterLab: a status bar item, a live GPU panel, template launchers
 * and "Run as report".
 */
import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  ICommandPalette,
  InputDialog,
  Notification,
  showErrorMessage
} from '@jupyterlab/apputils';
import { PathExt } from '@jupyterlab/coreutils';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { ILauncher } from '@jupyterlab/launcher';
import { INotebookTracker } from '@jupyterlab/notebook';
import { IStatusBar } from '@jupyterlab/statusbar';

import {
  createFromTemplate,
  getReportJob,
  IReportJob,
  IStatus,
  startReport
} from './api';
import { aiopsIcon } from './icons';
import { LabMonitor } from './monitor';
import { GpuPanel } from './panel';
import { LabStatusItem } from './statusbar';

const PLUGIN_ID = 'aiops-lab-jupyterlab:plugin';
const CATEGORY = 'aiops_lab';
const POLL_JOB_MS = 2_000;

/** Command ids. */
export namespace CommandIDs {
  export const showGpuPanel = 'aiops-lab:show-gpu-panel';
  export const runAsReport = 'aiops-lab:run-as-report';
  export const newFromTemplate = (kind: string): string =>
    `aiops-lab:new-${kind}`;
}

/** The templates the launcher and the palette offer, by report kind. */
export const TEMPLATES: { kind: string; label: string; caption: string }[] = [
  {
    kind: 'drift',
    label: 'New drift investigation',
    caption:
      'Copy the drift investigation notebook into the current folder and open it'
  },
  {
    kind: 'gpu',
    label: 'New GPU utilization review',
    caption:
      'Copy the GPU utilization review notebook into the current folder and open it'
  },
  {
    kind: 'finops',
    label: 'New FinOps forecast',
    caption:
      'Copy the FinOps forecast notebook into the current folder and open it'
  }
];

/** "New drift investigation" -> "Drift investigation" (the launcher section says "aiops_lab"). */
function launcherLabel(label: string): string {
  const rest = label.replace(/^New /, '');
  return rest.charAt(0).toUpperCase() + rest.slice(1);
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Which report a notebook is: its `aiops_lab.report` metadata, else the template its
 * file name comes from ("drift_investigation-2.ipynb" -> drift), else null.
 */
export function reportKindOf(
  path: string,
  metadata: { [key: string]: any } | undefined,
  templates: { [kind: string]: string }
): string | null {
  const declared = metadata?.aiops_lab?.report;
  if (typeof declared === 'string' && declared in templates) {
    return declared;
  }
  const name = PathExt.basename(path).toLowerCase();
  for (const [kind, file] of Object.entries(templates)) {
    const stem = file.toLowerCase().replace(/\.ipynb$/, '');
    if (name === `${stem}.ipynb` || new RegExp(`^${stem}-\\d+\\.ipynb$`).test(name)) {
      return kind;
    }
  }
  return null;
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description:
    'aiops_lab: backend and GPU status, live GPU metrics, template notebooks and reports.',
  autoStart: true,
  optional: [
    ICommandPalette,
    ILauncher,
    IStatusBar,
    IDefaultFileBrowser,
    INotebookTracker
  ],
  activate: (
    app: JupyterFrontEnd,
    palette: ICommandPalette | null,
    launcher: ILauncher | null,
    statusBar: IStatusBar | null,
    browser: IDefaultFileBrowser | null,
    notebooks: INotebookTracker | null
  ) => {
    const { commands, shell } = app;
    const monitor = new LabMonitor();

    // -- side panel
    const panel = new GpuPanel(monitor);
    panel.title.icon = aiopsIcon;
    shell.add(panel, 'right', { rank: 900 });

    commands.addCommand(CommandIDs.showGpuPanel, {
      label: 'Show live GPU metrics',
      caption: 'Open the aiops_lab panel with live GPU utilization and memory',
      icon: aiopsIcon,
      execute: () => {
        shell.activateById(panel.id);
      }
    });

    // -- status bar
    if (statusBar) {
      const item = new LabStatusItem(monitor, () => {
        void commands.execute(CommandIDs.showGpuPanel);
      });
      statusBar.registerStatusItem('aiops-lab:status', {
        item,
        align: 'left',
        rank: 50
      });
    }

    // -- templates
    const currentFolder = (): string => {
      const path = browser?.model.path ?? '';
      return app.serviceManager.contents.localPath(path);
    };
    const known = (kind: string): boolean => {
      const templates = monitor.status?.templates;
      return templates === undefined || kind in templates;
    };
    for (const template of TEMPLATES) {
      commands.addCommand(CommandIDs.newFromTemplate(template.kind), {
        label: args => (args.isLauncher ? launcherLabel(template.label) : template.label),
        caption: args =>
          known(template.kind)
            ? template.caption
            : `${template.caption} (not installed with this aiops_lab version)`,
        icon: aiopsIcon,
        isEnabled: () => known(template.kind),
        execute: async args => {
          const folder =
            typeof args.path === 'string' ? args.path : currentFolder();
          try {
            const created = await createFromTemplate(template.kind, folder);
            await commands.execute('docmanager:open', {
              path: created.path,
              factory: 'Notebook'
            });
            return created.path;
          } catch (error) {
            await showErrorMessage(`${template.label} failed`, errorText(error));
            return null;
          }
        }
      });
      palette?.addItem({
        command: CommandIDs.newFromTemplate(template.kind),
        category: CATEGORY
      });
    }

    // launcher cards for the templates this server has (FinOps appears once installed)
    const carded = new Set<string>();
    const addCards = (status: IStatus | null): void => {
      if (!launcher || !status) {
        return;
      }
      TEMPLATES.forEach((template, rank) => {
        if (template.kind in status.templates && !carded.has(template.kind)) {
          carded.add(template.kind);
          launcher.add({
            command: CommandIDs.newFromTemplate(template.kind),
            category: 'aiops_lab',
            rank,
            args: { isLauncher: true }
          });
        }
      });
    };
    monitor.changed.connect(() => addCards(monitor.status));

    // -- run as report
    commands.addCommand(CommandIDs.runAsReport, {
      label: 'Run as report',
      caption:
        'Run this notebook headlessly through the aiops_lab report pipeline and open the HTML report',
      icon: aiopsIcon,
      isEnabled: () => !!notebooks?.currentWidget,
      execute: async () => {
        const current = notebooks?.currentWidget;
        if (!current) {
          return;
        }
        const status = monitor.status ?? (await monitor.refreshStatus());
        const templates = status?.templates ?? {};
        const path = current.context.path;
        const localPath = app.serviceManager.contents.localPath(path);
        let kind = reportKindOf(
          path,
          current.context.model.metadata as { [key: string]: any },
          templates
        );
        if (kind === null) {
          const choices = Object.keys(templates);
          if (choices.length === 0) {
            await showErrorMessage(
              'Run as report',
              'The server has no report templates installed.'
            );
            return;
          }
          const answer = await InputDialog.getItem({
            title: `Which report is ${PathExt.basename(path)}?`,
            items: choices,
            current: 0
          });
          if (!answer.button.accept || !answer.value) {
            return;
          }
          kind = answer.value;
        }
        if (current.context.model.dirty) {
          await current.context.save();
        }
        const id = Notification.emit(
          `Running ${PathExt.basename(path)} as a ${kind} report…`,
          'in-progress',
          { autoClose: false }
        );
        let job: IReportJob;
        try {
          job = await startReport(kind, localPath);
          while (job.state === 'running') {
            await new Promise(resolve => setTimeout(resolve, POLL_JOB_MS));
            job = await getReportJob(job.job);
          }
        } catch (error) {
          Notification.update({
            id,
            message: `Report failed: ${errorText(error)}`,
            type: 'error',
            autoClose: false
          });
          return;
        }
        if (job.state === 'error' || !job.html) {
          Notification.update({
            id,
            message: `Report failed: ${job.error ?? 'no HTML written'}`,
            type: 'error',
            autoClose: false
          });
          return;
        }
        const html = job.html;
        const tracking = job.tracking_error
          ? ` Tracking failed: ${job.tracking_error}`
          : '';
        Notification.update({
          id,
          message: `${job.alert ? 'ALERT' : 'OK'}: ${job.headline ?? ''} (${html}).${tracking}`,
          type: job.alert || job.tracking_error ? 'warning' : 'success',
          autoClose: 10_000,
          actions: [
            {
              label: 'Open report',
              callback: () =>
                void commands.execute('docmanager:open', { path: html })
            }
          ]
        });
        await commands.execute('docmanager:open', { path: html });
        return html;
      }
    });
    palette?.addItem({ command: CommandIDs.runAsReport, category: CATEGORY });
    palette?.addItem({ command: CommandIDs.showGpuPanel, category: CATEGORY });
    app.contextMenu.addItem({
      command: CommandIDs.runAsReport,
      selector: '.jp-Notebook',
      rank: 90
    });
    notebooks?.currentChanged.connect(() =>
      commands.notifyCommandChanged(CommandIDs.runAsReport)
    );
    let installed = '';
    monitor.changed.connect(() => {
      const now = Object.keys(monitor.status?.templates ?? {}).join(',');
      if (now !== installed) {
        installed = now;
        for (const template of TEMPLATES) {
          commands.notifyCommandChanged(
            CommandIDs.newFromTemplate(template.kind)
          );
        }
      }
    });

    monitor.start();
  }
};

export default plugin;
