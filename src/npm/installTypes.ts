/** What `velo npm ci / install` takes and returns, shared by its stage files. */
import type { LinkMethod, Projection } from '../config.js';
import type { Store } from '../store/store.js';
import type { InstallMode } from './plan.js';
import type { Remote, RemoteReport } from '../remote/remote.js';

export type Phase = 'config' | 'resolve' | 'plan' | 'fetch' | 'link' | 'scripts' | 'done';

export interface InstallProgress {
  phase?: (phase: Phase, detail?: string) => void;
  fetched?: (done: number, total: number, bytes: number) => void;
}

export interface InstallOptions {
  root: string;
  mode: InstallMode;
  /** npm arguments (flags velo does not own), passed to npm's config */
  npmArgs: string[];
  /** the arguments that make up the no-op fingerprint */
  fingerprintArgs: string[];
  store: Store;
  method: LinkMethod;
  /** link farm (default) or a FUSE mount with a writable overlay */
  projection?: Projection;
  threads: number;
  veloVersion: string;
  env: NodeJS.ProcessEnv;
  /** stdio for the root project's lifecycle scripts */
  scriptStdio: 'inherit' | [number, number, number];
  progress?: InstallProgress;
  /** another velo is installing into this project (or gc holds the store): called once, then velo waits */
  onWait?: (holder: { kind: string; pid: number }) => void;
  /** the shared store on S3: looked up before the registry, published to after a successful install */
  remote?: Remote;
}

export interface InstallSummary {
  root: string;
  packages: number;
  fromStore: number;
  fetched: number;
  fetchedBytes: number;
  built: number;
  builtFromStore: number;
  filesLinked: number;
  files: number;
  bytes: number;
  bytesSaved: number;
  method: string;
  engine: string;
  rootScripts: string[];
  resolvedLockfile: boolean;
  /** laid out from a recorded whole-project manifest, without planning */
  fromProjectCache: boolean;
  projection: Projection;
  /** why the projection asked for was not used, when it was not */
  projectionNote: string | undefined;
  /** what the user should know but did not stop the install (entries dropped from a tarball, as npm drops them) */
  warnings: string[];
  ms: number;
  /** what the remote gave and took (when one is configured) */
  remote?: RemoteReport;
}

/** A projected node_modules dir's previous tree, kept aside for a rollback. */
export interface Aside {
  dest: string;
  aside: string | undefined;
}
