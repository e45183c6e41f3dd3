// The benchmark worker's workflows bundle entry: every production workflow, plus the baseline.
export * from '../src/workflows/index.js';
export { baselineWorkflow } from './baseline-workflow.js';
