// A loopback server in a child Node process (the bench and the tests run
// installs with spawnSync, which blocks their own event loop): the child
// prints its URL as its first line on stdout. Used by countingProxy.mjs and
// registryRelay.mjs.
import { spawn } from 'node:child_process';

/** Start `script` with `args`: { url, stop() } once it printed its URL (stop() resolves when it has exited). */
export function startServerProcess(script, args = []) {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`${script} exited (${code})`)));
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      out += chunk;
      if (!out.includes('\n')) return;
      resolve({
        url: out.trim(),
        stop: () =>
          new Promise((done) => {
            child.removeAllListeners('exit');
            if (child.exitCode !== null || child.signalCode !== null) return done();
            child.once('exit', () => done());
            child.kill();
          }),
      });
    });
  });
}
