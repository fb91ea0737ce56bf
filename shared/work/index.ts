/** The work pipeline: queue, coalescing, retry classification. See `pipeline.ts`. */
export * from './item';
export * from './pipeline';
export { enqueueWork, sendWorkItems, type EnqueueOptions } from './queue';
export * from './functions';
export { decide, targetKey, TargetStateStore, type TargetState, type Decision } from './coalesce';
export { loadHostConfig, parseTimeSpan, findAppRoot, type HostConfig, type QueuesConfig } from './hostConfig';
export { resolveStorageConnectionString } from './storage';
