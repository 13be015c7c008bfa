/**
 * The side panel: live GPU utilization and memory over the last minutes.
 */
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { ISample } from './api';
import { deviceKey, formatMiB, LabMonitor } from './monitor';

const SVG_NS = 'http://www.w3.org/2000/svg';
const WINDOWS: [number, string][] = [
  [60, '1 min'],
  [300, '5 min'],
  [900, '15 min']
];
const WIDTH = 300;
const HEIGHT = 90;

export class GpuPanel extends Widget {
  constructor(monitor: LabMonitor) {
    super();
    this.id = 'aiops-lab-gpu-panel';
    this.addClass('jp-aiops-GpuPanel');
    this.title.caption = 'aiops_lab: live GPU metrics';
    this._monitor = monitor;

    const header = document.createElement('div');
    header.className = 'jp-aiops-GpuPanel-header';
    const title = document.createElement('h2');
    title.textContent = 'GPU metrics';
    header.appendChild(title);
    this._select = document.createElement('select');
    this._select.className = 'jp-mod-styled';
    this._select.setAttribute('aria-label', 'Time window');
    for (const [seconds, label] of WINDOWS) {
      const option = document.createElement('option');
      option.value = String(seconds);
      option.textContent = `last ${label}`;
      option.selected = seconds === monitor.windowSeconds;
      this._select.appendChild(option);
    }
    this._select.addEventListener('change', () => {
      monitor.windowSeconds = Number(this._select.value);
    });
    header.appendChild(this._select);
    this.node.appendChild(header);

    this._summary = document.createElement('div');
    this._summary.className = 'jp-aiops-GpuPanel-summary';
    this.node.appendChild(this._summary);
    this._body = document.createElement('div');
    this._body.className = 'jp-aiops-GpuPanel-body';
    this.node.appendChild(this._body);

    monitor.changed.connect(this._render, this);
    this._render();
  }

  dispose(): void {
    this._monitor.changed.disconnect(this._render, this);
    super.dispose();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this._monitor.panelVisible = true;
    if (this._monitor.status === null || !this._monitor.status.gpu_available) {
      void this._monitor.refreshStatus();
    }
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this._monitor.panelVisible = false;
  }

  private _render(): void {
    if (!this.isVisible && this._rendered) {
      return;
    }
    this._rendered = true;
    const status = this._monitor.status;
    this._summary.replaceChildren();
    this._body.replaceChildren();
    if (!status) {
      this._body.appendChild(
        message(
          this._monitor.statusError
            ? `The aiops_lab server extension did not answer: ${this._monitor.statusError}`
            : 'Asking the server…'
        )
      );
      return;
    }
    const backend = status.backend;
    this._summary.appendChild(
      line(
        'Backend',
        `${backend.name}${backend.device ? ' on ' + backend.device : ''} — ${backend.reason}`
      )
    );
    this._summary.appendChild(
      line('Tracking', `${status.tracking_uri} (${status.tracking_source})`)
    );

    if (!status.gpu_available) {
      const box = document.createElement('div');
      box.className = 'jp-aiops-NoGpu';
      const head = document.createElement('strong');
      head.textContent = 'No NVIDIA GPU visible';
      box.appendChild(head);
      box.appendChild(message(status.gpu_reason));
      box.appendChild(
        message(
          'Analyses run on the CPU (NumPy). To review GPU utilization without a GPU here, ' +
            'open the GPU utilization review with a recorded DCGM or nvidia-smi export.'
        )
      );
      this._body.appendChild(box);
      return;
    }
    this._summary.appendChild(line('GPUs', status.gpu_reason));

    const samples = this._monitor.samples;
    if (this._monitor.samplesError) {
      this._body.appendChild(
        message(`Samples unavailable: ${this._monitor.samplesError}`)
      );
    }
    if (!samples || samples.samples.length === 0) {
      this._body.appendChild(message('Waiting for the first samples…'));
      return;
    }
    const groups = new Map<string, ISample[]>();
    for (const row of samples.samples) {
      const key = deviceKey(row);
      const rows = groups.get(key) ?? [];
      rows.push(row);
      groups.set(key, rows);
    }
    const now = Math.max(...samples.samples.map(r => r.t_ms));
    const start = now - samples.seconds * 1000;
    for (const [key, rows] of [...groups.entries()].sort()) {
      rows.sort((a, b) => a.t_ms - b.t_ms);
      this._body.appendChild(deviceCard(key, rows, start, now));
    }
    if (samples.error) {
      this._body.appendChild(message(`Last NVML error: ${samples.error}`));
    }
  }

  private _monitor: LabMonitor;
  private _select: HTMLSelectElement;
  private _summary: HTMLDivElement;
  private _body: HTMLDivElement;
  private _rendered = false;
}

function message(text: string): HTMLParagraphElement {
  const p = document.createElement('p');
  p.className = 'jp-aiops-message';
  p.textContent = text;
  return p;
}

function line(label: string, value: string): HTMLDivElement {
  const div = document.createElement('div');
  div.className = 'jp-aiops-line';
  const b = document.createElement('span');
  b.className = 'jp-aiops-label';
  b.textContent = label;
  const v = document.createElement('span');
  v.textContent = value;
  div.append(b, v);
  return div;
}

function deviceCard(
  key: string,
  rows: ISample[],
  start: number,
  end: number
): HTMLDivElement {
  const last = rows[rows.length - 1];
  const card = document.createElement('div');
  card.className = 'jp-aiops-GpuCard';
  const title = document.createElement('div');
  title.className = 'jp-aiops-GpuCard-title';
  const mig = last.mig_profile ? ` (MIG ${last.mig_profile})` : '';
  title.textContent = `GPU ${key.split('/')[0]}${mig}: ${last.model ?? 'unknown model'}`;
  card.appendChild(title);

  const memPct = (r: ISample): number | null =>
    r.mem_used_mib !== null && r.mem_total_mib
      ? (100 * r.mem_used_mib) / r.mem_total_mib
      : null;
  const figures = document.createElement('div');
  figures.className = 'jp-aiops-GpuCard-figures';
  const bits = [
    `util ${last.util_pct === null ? '–' : Math.round(last.util_pct) + '%'}`,
    `memory ${formatMiB(last.mem_used_mib)} / ${formatMiB(last.mem_total_mib)}`
  ];
  if (last.power_w !== null) {
    bits.push(`${Math.round(last.power_w)} W`);
  }
  if (last.temp_c !== null) {
    bits.push(`${Math.round(last.temp_c)} °C`);
  }
  figures.textContent = bits.join(' · ');
  card.appendChild(figures);
  card.appendChild(
    chart(
      rows,
      [
        { value: r => r.util_pct, className: 'jp-aiops-util', label: 'util %' },
        { value: memPct, className: 'jp-aiops-mem', label: 'memory %' }
      ],
      start,
      end
    )
  );
  const legend = document.createElement('div');
  legend.className = 'jp-aiops-legend';
  for (const [className, text] of [
    ['jp-aiops-util', '— utilization %'],
    ['jp-aiops-mem', '— memory used %']
  ]) {
    const span = document.createElement('span');
    span.className = className;
    span.textContent = text;
    legend.appendChild(span);
  }
  card.appendChild(legend);
  return card;
}

interface ISeries {
  value: (row: ISample) => number | null;
  className: string;
  label: string;
}

/** A 0–100 % line chart of the rows between `start` and `end` (epoch ms). */
function chart(
  rows: ISample[],
  series: ISeries[],
  start: number,
  end: number
): SVGSVGElement {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('viewBox', `0 0 ${WIDTH} ${HEIGHT}`);
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('class', 'jp-aiops-chart');
  svg.setAttribute('role', 'img');
  svg.setAttribute(
    'aria-label',
    series.map(s => s.label).join(' and ') + ' over time'
  );
  for (const pct of [0, 50, 100]) {
    const grid = document.createElementNS(SVG_NS, 'line');
    const y = HEIGHT - (pct / 100) * HEIGHT;
    grid.setAttribute('x1', '0');
    grid.setAttribute('x2', String(WIDTH));
    grid.setAttribute('y1', String(y));
    grid.setAttribute('y2', String(y));
    grid.setAttribute('class', 'jp-aiops-grid');
    svg.appendChild(grid);
  }
  const span = Math.max(end - start, 1);
  for (const s of series) {
    // a gap in the readings (null) breaks the line
    let d = '';
    let pen = false;
    for (const row of rows) {
      const v = s.value(row);
      if (v === null || !Number.isFinite(v)) {
        pen = false;
        continue;
      }
      const x = ((row.t_ms - start) / span) * WIDTH;
      const y = HEIGHT - (Math.min(Math.max(v, 0), 100) / 100) * HEIGHT;
      d += `${pen ? 'L' : 'M'}${x.toFixed(1)},${y.toFixed(1)} `;
      pen = true;
    }
    const path = document.createElementNS(SVG_NS, 'path');
    path.setAttribute('d', d.trim() || 'M0,0');
    path.setAttribute('class', s.className);
    path.setAttribute('vector-effect', 'non-scaling-stroke');
    const label = document.createElementNS(SVG_NS, 'title');
    label.textContent = s.label;
    path.appendChild(label);
    svg.appendChild(path);
  }
  return svg;
}
