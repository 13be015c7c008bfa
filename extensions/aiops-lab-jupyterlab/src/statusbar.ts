/**
 * The status bar item: array backend (CPU/GPU and why), live GPU use, tracking store.
 */
import { Widget } from '@lumino/widgets';

import { formatMiB, LabMonitor, latestPerDevice } from './monitor';

export class LabStatusItem extends Widget {
  constructor(monitor: LabMonitor, onClick: () => void) {
    super();
    this.addClass('jp-aiops-StatusItem');
    this.node.setAttribute('role', 'button');
    this.node.tabIndex = 0;
    this.node.addEventListener('click', onClick);
    this.node.addEventListener('keydown', event => {
      if (event.key === 'Enter' || event.key === ' ') {
        onClick();
      }
    });
    this._backend = this._part('jp-aiops-StatusItem-backend');
    this._gpu = this._part('jp-aiops-StatusItem-gpu');
    this._tracking = this._part('jp-aiops-StatusItem-tracking');
    this._monitor = monitor;
    monitor.changed.connect(this._render, this);
    this._render();
  }

  dispose(): void {
    this._monitor.changed.disconnect(this._render, this);
    super.dispose();
  }

  private _part(className: string): HTMLSpanElement {
    const span = document.createElement('span');
    span.className = className;
    this.node.appendChild(span);
    return span;
  }

  private _render(): void {
    const status = this._monitor.status;
    if (!status) {
      const error = this._monitor.statusError;
      this._backend.textContent = error ? 'aiops-lab: offline' : 'aiops-lab …';
      this._gpu.textContent = '';
      this._tracking.textContent = '';
      this.node.title = error
        ? `The aiops_lab server extension did not answer: ${error}`
        : 'aiops_lab: asking the server…';
      return;
    }
    const backend = status.backend;
    const where = backend.gpu ? 'GPU' : 'CPU';
    this._backend.textContent = `${where}: ${backend.name}`;
    this._backend.dataset.backend = backend.gpu ? 'gpu' : 'cpu';

    let gpuText = 'no GPU';
    let gpuTitle = status.gpu_reason;
    if (status.gpu_available) {
      const latest = [...latestPerDevice(this._monitor.samples).values()];
      if (latest.length > 0) {
        const util = latest
          .map(r => r.util_pct)
          .filter((v): v is number => v !== null);
        const used = latest.reduce((a, r) => a + (r.mem_used_mib ?? 0), 0);
        const total = latest.reduce((a, r) => a + (r.mem_total_mib ?? 0), 0);
        const meanUtil = util.length
          ? util.reduce((a, b) => a + b, 0) / util.length
          : null;
        const n = status.gpus.length;
        gpuText =
          `${n} GPU${n > 1 ? 's' : ''} ` +
          `${meanUtil === null ? '–' : Math.round(meanUtil)}% · ` +
          `${formatMiB(used)}/${formatMiB(total)}`;
        gpuTitle = `${status.gpu_reason}; utilization ${n > 1 ? '(mean) ' : ''}and memory in use, last sample`;
      } else {
        gpuText = `${status.gpus.length} GPU${status.gpus.length > 1 ? 's' : ''}`;
      }
    }
    this._gpu.textContent = gpuText;
    this._gpu.dataset.gpu = status.gpu_available ? 'yes' : 'no';
    this._tracking.textContent = `MLflow: ${shortUri(status.tracking_uri)}`;
    this.node.title = [
      `aiops_lab ${status.version}`,
      `Backend: ${backend.name}${backend.device ? ' on ' + backend.device : ''} (${backend.reason})`,
      `GPUs: ${gpuTitle}`,
      `Tracking store: ${status.tracking_uri} (${status.tracking_source})`,
      'Click for live GPU metrics.'
    ].join('\n');
  }

  private _monitor: LabMonitor;
  private _backend: HTMLSpanElement;
  private _gpu: HTMLSpanElement;
  private _tracking: HTMLSpanElement;
}

/** "sqlite:///a/b/reports/mlflow.db" -> "sqlite …/reports/mlflow.db" */
export function shortUri(uri: string): string {
  const match = /^([a-z+]+):\/\/\/?(.*)$/i.exec(uri);
  if (!match) {
    return uri;
  }
  const [, scheme, rest] = match;
  if (scheme.startsWith('http')) {
    return uri.replace(/^https?:\/\//, '');
  }
  const parts = rest.split('/').filter(p => p.length > 0);
  const tail = parts.slice(-2).join('/');
  return parts.length > 2 ? `${scheme} …/${tail}` : `${scheme} ${rest}`;
}
