/**
 * Where a registry package's tarball is, from the lockfile alone: the
 * `resolved` URL when there is one (its host rewritten as npm's
 * `replace-registry-host` does), else the registry's conventional
 * `<registry>/<name>/-/<name-without-scope>-<version>.tgz`, the registry
 * being the package's scope registry (`@scope:registry`) or `registry`.
 * No packument is needed; the lockfile's integrity proves the bytes.
 */

/** The npm config values this module reads (npm's flatOptions keys). */
export interface RegistryConfig {
  registry?: string;
  replaceRegistryHost?: string;
  /** `@scope:registry` keys */
  [key: string]: unknown;
}

function withSlash(url: string): string {
  return url.endsWith('/') ? url : `${url}/`;
}

/** The registry a package is fetched from: its scope's registry, else the default one. */
export function registryFor(name: string, config: RegistryConfig): string {
  const scope = name.startsWith('@') ? name.slice(0, name.indexOf('/')) : undefined;
  const scoped = scope ? config[`${scope}:registry`] : undefined;
  return withSlash((typeof scoped === 'string' && scoped) || config.registry || 'https://registry.npmjs.org/');
}

/** `<registry>/<name>/-/<name-without-scope>-<version>.tgz`, as the public registry and its clones serve tarballs. */
export function conventionalTarballUrl(name: string, version: string, registry: string): string {
  const unscoped = name.startsWith('@') ? name.slice(name.indexOf('/') + 1) : name;
  return `${withSlash(registry)}${name}/-/${unscoped}-${version}.tgz`;
}

const hasPathPrefix = (path: string, prefix: string): boolean => path === prefix || path.startsWith(`${prefix}/`);

/**
 * npm's `replace-registry-host`: 'npmjs' (the default: registry.npmjs.org),
 * 'never', 'always', a host name, or a URL whose path is a prefix to swap.
 * A matching `resolved` URL is moved onto the configured registry.
 */
export function replaceRegistryHost(resolved: string, config: RegistryConfig): string {
  const rule = !config.replaceRegistryHost || config.replaceRegistryHost === 'npmjs' ? 'registry.npmjs.org' : config.replaceRegistryHost;
  if (rule === 'never') return resolved;
  let url: URL;
  let registry: URL;
  try {
    url = new URL(resolved);
    registry = new URL(config.registry || 'https://registry.npmjs.org/');
  } catch {
    return resolved;
  }
  let matchHost = rule;
  let matchPath: string | undefined;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(rule)) {
    try {
      const m = new URL(rule);
      matchHost = m.hostname;
      matchPath = m.pathname.replace(/\/$/, '');
    } catch {
      /* a host name after all */
    }
  }
  const hostMatches = rule === 'always' || matchHost === url.hostname;
  if (!hostMatches || (matchPath && !hasPathPrefix(url.pathname, matchPath))) return resolved;
  const registryPath = registry.pathname.replace(/\/$/, '');
  url.protocol = registry.protocol;
  url.hostname = registry.hostname;
  url.port = registry.port;
  if (matchPath) url.pathname = registryPath + url.pathname.slice(matchPath.length);
  else if (registryPath && !hasPathPrefix(url.pathname, registryPath)) url.pathname = registryPath + url.pathname;
  return url.href;
}

/** Is `resolved` an http(s) tarball URL (not git, file: or a directory)? */
export function isRemoteTarball(resolved: string | undefined): resolved is string {
  return resolved !== undefined && /^https?:\/\//i.test(resolved);
}
