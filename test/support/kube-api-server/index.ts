export { KubeApiServer, ControlStore } from './kube-api-server.js';
export type {
  FailureInjection,
  HangHandle,
  HangOptions,
  KubeApiServerOptions,
  KubeRequestRecord,
} from './kube-api-server.js';
export type {
  AccessRule,
  ServiceAccountTokenInput,
  TokenIdentity,
  TokenReviewEntry,
} from './access.js';
export type { KubeVerb, ResourceType, ResourceTypeInput } from './resources.js';
export type { StatusBody } from './status.js';
