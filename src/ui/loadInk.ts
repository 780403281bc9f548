/**
 * Import Ink without its two start-up costs that buy the dashboard nothing.
 * Measured on this machine (2 cores, Node 24), a plain `import('ink')`
 * takes 350–1000 ms:
 *
 * - ink.js takes `throttle` from `es-toolkit/compat`, whose index loads 415
 *   modules. A resolve hook sends that one import to the module that
 *   defines throttle (3 modules).
 * - yoga-layout decodes its WebAssembly from a data: URL with `fetch` when
 *   fetch exists, which loads undici and TLS (~80 ms); without fetch it
 *   decodes the same base64 in place. fetch is hidden while Ink loads and
 *   put back right after.
 *
 * Both fall back to the ordinary import when anything is not as expected.
 * Together they bring the import to ~170–290 ms here.
 */
import { existsSync } from 'node:fs';
import { registerHooks } from 'node:module';
import { fileURLToPath } from 'node:url';

let hooked = false;

function hookEsToolkit(): void {
  if (hooked || typeof registerHooks !== 'function') return;
  hooked = true;
  registerHooks({
    resolve(specifier, context, nextResolve) {
      if (specifier === 'es-toolkit/compat' && context.parentURL?.includes('/node_modules/ink/')) {
        try {
          const entry = nextResolve('es-toolkit/compat/throttle', context);
          const url = new URL('../dist/compat/function/throttle.mjs', entry.url).href;
          if (existsSync(fileURLToPath(url))) return { url, format: 'module', shortCircuit: true };
        } catch {
          /* resolve as usual */
        }
      }
      return nextResolve(specifier, context);
    },
  });
}

export type InkModule = typeof import('ink');

export async function loadInk(): Promise<InkModule> {
  hookEsToolkit();
  const fetchDescriptor = Object.getOwnPropertyDescriptor(globalThis, 'fetch');
  if (fetchDescriptor?.configurable) Object.defineProperty(globalThis, 'fetch', { value: undefined, configurable: true, writable: true });
  try {
    return await import('ink');
  } finally {
    if (fetchDescriptor?.configurable) Object.defineProperty(globalThis, 'fetch', fetchDescriptor);
  }
}
