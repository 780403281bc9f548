/**
 * The root project's own lifecycle scripts that `npm ci` runs, in its order.
 * A module of its own so the no-op path can ask "does this project have
 * any?" without loading the code that runs them.
 */
export const ROOT_SCRIPTS = ['preinstall', 'install', 'postinstall', 'prepublish', 'preprepare', 'prepare', 'postprepare'] as const;

/** Whether package.json declares any of them. */
export function hasRootScripts(pkg: { scripts?: Record<string, string> }): boolean {
  return ROOT_SCRIPTS.some((event) => pkg.scripts?.[event]);
}
