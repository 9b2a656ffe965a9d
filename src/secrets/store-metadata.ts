import { WardenError } from '../shared/errors.js';
import { parseDuration } from '../shared/duration.js';

/**
 * Reading a secret store Component's resolved metadata (every value a string, as Dapr
 * passes them). Shared by every store so that booleans and durations mean the same
 * thing everywhere; every failure is ERR_SECRET_STORE_CONFIG naming component and field.
 */
export type StoreMetadata = Readonly<Record<string, string>>;

const TRUTHY = new Set(['true', 't', '1', 'yes', 'y', 'on']);
const FALSY = new Set(['false', 'f', '0', 'no', 'n', 'off', '']);

function configError(component: string, field: string, problem: string): WardenError {
  return new WardenError('ERR_SECRET_STORE_CONFIG', `secret store "${component}": metadata "${field}" ${problem}`);
}

export function optionalString(metadata: StoreMetadata, field: string): string | undefined {
  const value = metadata[field];
  return value === undefined || value === '' ? undefined : value;
}

export function requiredString(metadata: StoreMetadata, component: string, field: string): string {
  const value = optionalString(metadata, field);
  if (value === undefined) throw configError(component, field, 'is required');
  return value;
}

/** Dapr's truthy words (utils.IsTruthy); anything that is neither truthy nor falsy is refused. */
export function booleanField(metadata: StoreMetadata, component: string, field: string, fallback: boolean): boolean {
  const raw = metadata[field];
  if (raw === undefined) return fallback;
  const word = raw.trim().toLowerCase();
  if (TRUTHY.has(word)) return true;
  if (FALSY.has(word)) return word === '' ? fallback : false;
  throw configError(component, field, 'is not a boolean (use true or false)');
}

/** A Go duration ("30s", "5m") in milliseconds; absent or empty gives the fallback. */
export function durationField(metadata: StoreMetadata, component: string, field: string, fallbackMs: number): number {
  const raw = optionalString(metadata, field);
  if (raw === undefined) return fallbackMs;
  try {
    return parseDuration(raw, 'duration');
  } catch {
    throw configError(component, field, 'is not a duration (use Go syntax such as 30s or 5m)');
  }
}
