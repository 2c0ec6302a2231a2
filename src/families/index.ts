import type { JobFamily } from '../fleet/family.js';
import { alertsFamily } from './alerts.js';
import { constraintsFamily } from './constraints.js';
import { corporateActionsFamily } from './corporate-actions.js';
import { lotsFamily } from './lots.js';
import { metadataFamily } from './metadata.js';

/** Every job family the fleet knows. Producer, workers, CLI and dashboard take them from here. */
export const families: readonly JobFamily[] = [lotsFamily, constraintsFamily, corporateActionsFamily, metadataFamily, alertsFamily];

export function familyNames(): string[] {
  return families.map((family) => family.name);
}

export function findFamily(name: string): JobFamily | undefined {
  return families.find((family) => family.name === name);
}

/** The families of `names` (all when none are given); `unknown` makes the error for a name the registry lacks. */
export function familiesNamed(names: readonly string[] | undefined, unknown: (name: string, known: string[]) => Error): JobFamily[] {
  if (!names) return [...families];
  return names.map((name) => findFamily(name.trim()) ?? throwError(unknown(name.trim(), familyNames())));
}

function throwError(error: Error): never {
  throw error;
}
