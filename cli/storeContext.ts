/**
 * Open the store the configuration names.
 */
import { Store } from '../src/store/store.js';
import { config } from './context.js';
import type { Io } from './io.js';

export function openStore(io: Io): Store {
  return Store.open(config(io).home);
}
