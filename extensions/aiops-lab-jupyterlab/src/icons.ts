import { LabIcon } from '@jupyterlab/ui-components';

/** A small chip with a pulse line: the aiops_lab mark. */
export const aiopsIcon = new LabIcon({
  name: 'aiops-lab:chip',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">' +
    '<g class="jp-icon3" fill="#616161">' +
    '<path d="M7 3h2v2h2V3h2v2h2V3h2v2h1a2 2 0 0 1 2 2v1h2v2h-2v2h2v2h-2v2h2v2h-2v1a2 2 0 0 1-2 2h-1v2h-2v-2h-2v2h-2v-2H9v2H7v-2H6a2 2 0 0 1-2-2v-1H2v-2h2v-2H2v-2h2V8H2V6h2V7a2 2 0 0 1 2-2h1zM6 7v12h12V7z"/>' +
    '<path d="M7 13h2.2l1.3-3 2 6 1.5-3H17v1.6h-2l-2.3 4.4-2-6-.5 1.2H7z"/>' +
    '</g></svg>'
});
