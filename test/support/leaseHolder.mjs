// A separate process that holds an install lease on a store (as a running
// install does): ingests a directory, prints the tree, then waits for a line
// on stdin; "register <dest>" registers, anything else just releases.
import { Store } from '../../dist/src/store/store.js';
import { acquireLease } from '../../dist/src/store/lock.js';
import { ingestDir } from '../../dist/src/store/addFilesFromDir.js';
import { registerProject } from '../../dist/src/store/keys.js';
import { createInterface } from 'node:readline';

const [home, dir] = process.argv.slice(2);
const store = Store.open(home);
const lease = acquireLease(store, 'install');
const r = await ingestDir(store, dir);
process.stdout.write(`ready ${r.tree}\n`);
const rl = createInterface({ input: process.stdin });
for await (const line of rl) {
  const [cmd, dest] = line.split(' ');
  if (cmd === 'register') registerProject(store, { path: dest, ecosystem: 'tree', tree: r.tree });
  break;
}
lease.release();
store.close();
process.stdout.write('released\n');
