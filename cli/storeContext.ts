/**
 * Open the store the configuration names.
 */
import { Store } from '../src/store/store.js';
import { config } from './context.js';
import { err, type Io } from './io.js';

export function openStore(io: Io): Store {
  return openStoreAt(config(io).home, io);
}

/** Open the store at home; what the store recovered on the way (a rebuilt index, re-fetched entries) is said once on stderr. */
export function openStoreAt(home: string, io: Io): Store {
  return Store.open(home, { onNotice: (message) => err(io, `velo: ${message}`) });
}
