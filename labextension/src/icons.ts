/**
 * The SAIBench icon (a work–precision curve), themed through `jp-icon3`.
 */
import { LabIcon } from '@jupyterlab/ui-components';

import svg from '../style/saibench.svg';

export const saibenchIcon = new LabIcon({ name: 'saibench:icon', svgstr: svg });
