/**
 * Polls the server for the status and the live GPU samples, and tells listeners.
 *
 * One monitor serves the status bar item and the side panel: the status every
 * 30 s, samples every 2 s while NVML sees a GPU (the last 10 s for the status bar,
 * the panel's whole window while the panel is shown).
 */
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import { getSamples, getStatus, ISamples, IStatus } from './api';

const STATUS_EVERY_MS = 30_000;
const SAMPLES_EVERY_MS = 2_000;
const STATUS_BAR_WINDOW_S = 10;

export class LabMonitor implements IDisposable {
  /** Seconds of history the panel shows. */
  get windowSeconds(): number {
    return this._windowSeconds;
  }
  set windowSeconds(value: number) {
    this._windowSeconds = value;
    void this.refreshSamples();
  }

  /** Whether the panel is shown (it then needs the whole window of samples). */
  get panelVisible(): boolean {
    return this._panelVisible;
  }
  set panelVisible(value: boolean) {
    this._panelVisible = value;
    if (value) {
      void this.refreshSamples();
    }
  }

  get status(): IStatus | null {
    return this._status;
  }
  get statusError(): string | null {
    return this._statusError;
  }
  get samples(): ISamples | null {
    return this._samples;
  }
  get samplesError(): string | null {
    return this._samplesError;
  }

  /** Emitted after every status or samples poll (successful or not). */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  /** Start polling. */
  start(): void {
    void this._statusLoop();
    void this._samplesLoop();
  }

  /** Ask for the status now. */
  async refreshStatus(): Promise<IStatus | null> {
    try {
      this._status = await getStatus();
      this._statusError = null;
    } catch (error) {
      this._statusError = String((error as Error).message ?? error);
    }
    this._changed.emit();
    return this._status;
  }

  /** Ask for samples now (the panel's window when shown, else the last seconds). */
  async refreshSamples(): Promise<void> {
    const seconds = this._panelVisible
      ? this._windowSeconds
      : STATUS_BAR_WINDOW_S;
    try {
      this._samples = await getSamples(seconds);
      this._samplesError = null;
    } catch (error) {
      this._samplesError = String((error as Error).message ?? error);
    }
    this._changed.emit();
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    window.clearTimeout(this._statusTimer);
    window.clearTimeout(this._samplesTimer);
    Signal.clearData(this);
  }

  private async _statusLoop(): Promise<void> {
    if (this._disposed) {
      return;
    }
    if (!document.hidden || this._status === null) {
      await this.refreshStatus();
    }
    this._statusTimer = window.setTimeout(
      () => void this._statusLoop(),
      STATUS_EVERY_MS
    );
  }

  private async _samplesLoop(): Promise<void> {
    if (this._disposed) {
      return;
    }
    const gpu = this._status?.gpu_available ?? false;
    if (gpu && !document.hidden) {
      await this.refreshSamples();
    }
    this._samplesTimer = window.setTimeout(
      () => void this._samplesLoop(),
      SAMPLES_EVERY_MS
    );
  }

  private _windowSeconds = 300;
  private _panelVisible = false;
  private _status: IStatus | null = null;
  private _statusError: string | null = null;
  private _samples: ISamples | null = null;
  private _samplesError: string | null = null;
  private _statusTimer = 0;
  private _samplesTimer = 0;
  private _disposed = false;
  private _changed = new Signal<this, void>(this);
}

/** Latest reading per GPU (or MIG instance) in a set of samples. */
export function latestPerDevice(samples: ISamples | null): Map<string, any> {
  const out = new Map<string, any>();
  for (const row of samples?.samples ?? []) {
    const key = deviceKey(row);
    const seen = out.get(key);
    if (!seen || seen.t_ms <= row.t_ms) {
      out.set(key, row);
    }
  }
  return out;
}

/** "0" for a whole GPU, "0/1g.10gb#7" for a MIG instance. */
export function deviceKey(row: {
  gpu: number;
  mig_profile: string | null;
  mig_instance: string | null;
}): string {
  return row.mig_instance === null
    ? String(row.gpu)
    : `${row.gpu}/${row.mig_profile ?? 'mig'}#${row.mig_instance}`;
}

/** Mebibytes as "12.3 GiB" or "512 MiB". */
export function formatMiB(value: number | null): string {
  if (value === null || !Number.isFinite(value)) {
    return '–';
  }
  return value >= 1024
    ? `${(value / 1024).toFixed(1)} GiB`
    : `${Math.round(value)} MiB`;
}
