/**
 * Shared set-up for commands: configuration and the store.
 */
import { loadConfig, type VeloConfig } from '../src/config.js';
import { Store } from '../src/store/store.js';
import type { Io } from './io.js';

export function config(io: Io): VeloConfig {
  return loadConfig(io.env);
}

export function openStore(io: Io): Store {
  return Store.open(config(io).home);
}
