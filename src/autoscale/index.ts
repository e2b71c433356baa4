export * from "./types.js";
export { Autoscaler } from "./autoscaler.js";
export type { AutoscalerOptions, ScalingMetricsSource } from "./autoscaler.js";
export { decide, stepScaling, targetTracking } from "./policy.js";
export type { Decision, Proposal, VariantView } from "./policy.js";
