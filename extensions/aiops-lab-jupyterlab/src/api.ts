/**
 * Typed access to the aiops_lab server routes under `<base_url>/aiops-lab/`.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** The array backend the server process resolved, and why. */
export interface IBackend {
  name: string;
  requested: string | null;
  reason: string;
  device: string | null;
  gpu: boolean;
}

/** One physical GPU as NVML describes it. */
export interface IGpuDevice {
  index: number;
  name: string | null;
  uuid: string | null;
  memory_total_mib: number | null;
  mig: boolean;
}

/** `GET aiops-lab/status` */
export interface IStatus {
  version: string;
  backend: IBackend;
  gpus: IGpuDevice[];
  gpu_available: boolean;
  gpu_reason: string;
  driver: string | null;
  tracking_uri: string;
  tracking_source: string;
  reports_dir: string;
  templates: { [kind: string]: string };
}

/** One row of live telemetry: one GPU (or MIG instance) at one tick. */
export interface ISample {
  timestamp: string;
  t_ms: number;
  gpu: number;
  uuid: string | null;
  model: string | null;
  util_pct: number | null;
  mem_used_mib: number | null;
  mem_total_mib: number | null;
  power_w: number | null;
  temp_c: number | null;
  mig_profile: string | null;
  mig_instance: string | null;
}

/** `GET aiops-lab/gpu/samples?seconds=N` */
export interface ISamples {
  available: boolean;
  reason: string;
  interval: number;
  seconds: number;
  gpus: IGpuDevice[];
  samples: ISample[];
  error?: string;
}

/** `POST aiops-lab/templates/<kind>` */
export interface ICreated {
  kind: string;
  path: string;
  name: string;
}

/** `POST aiops-lab/reports/<kind>` and `GET aiops-lab/reports/jobs/<job>` */
export interface IReportJob {
  job: string;
  kind: string;
  notebook: string;
  state: 'running' | 'done' | 'error';
  started: string;
  finished: string | null;
  html: string | null;
  executed_notebook: string | null;
  headline: string | null;
  alert: boolean | null;
  tracking_uri: string | null;
  tracking_run_id: string | null;
  tracking_error: string | null;
  error: string | null;
}

/**
 * Call a route of the server extension and return its JSON answer.
 *
 * Errors carry the server's `message` (e.g. "folder 'x' does not exist").
 */
export async function callServer<T>(
  route: string,
  init: RequestInit = {}
): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'aiops-lab', route);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }
  const text = await response.text();
  let body: any = null;
  if (text.length > 0) {
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
  }
  if (!response.ok) {
    const message =
      body && typeof body === 'object' && body.message
        ? String(body.message)
        : `aiops-lab route ${route} answered ${response.status}`;
    throw new ServerConnection.ResponseError(response, message);
  }
  return body as T;
}

export function getStatus(): Promise<IStatus> {
  return callServer<IStatus>('status');
}

export function getSamples(seconds: number): Promise<ISamples> {
  return callServer<ISamples>(
    `gpu/samples?seconds=${encodeURIComponent(String(seconds))}`
  );
}

export function createFromTemplate(
  kind: string,
  folder: string
): Promise<ICreated> {
  return callServer<ICreated>(`templates/${encodeURIComponent(kind)}`, {
    method: 'POST',
    body: JSON.stringify({ path: folder })
  });
}

export function startReport(
  kind: string,
  notebook: string
): Promise<IReportJob> {
  return callServer<IReportJob>(`reports/${encodeURIComponent(kind)}`, {
    method: 'POST',
    body: JSON.stringify({ path: notebook })
  });
}

export function getReportJob(job: string): Promise<IReportJob> {
  return callServer<IReportJob>(`reports/jobs/${encodeURIComponent(job)}`);
}
