/**
 * Which remote, how to reach it, and with which rights — following the AWS
 * conventions users already have:
 *
 *  - the remote: `--no-remote` > `--remote URL` > VELO_REMOTE > `remote` in
 *    velo.json > `remote` in velo's config file (the last three resolved by
 *    loadConfig); a URL is s3://bucket[/prefix]; "none" or "off" means none
 *  - the mode: VELO_REMOTE_MODE=read (never writes) or readwrite (default)
 *  - credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN,
 *    else the profile AWS_PROFILE (default "default") in ~/.aws/credentials
 *    (AWS_SHARED_CREDENTIALS_FILE) and ~/.aws/config (AWS_CONFIG_FILE);
 *    none at all → unsigned requests (a public bucket)
 *  - region: AWS_REGION, AWS_DEFAULT_REGION, the profile's region, us-east-1
 *  - endpoint: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the profile's
 *    endpoint_url, else AWS S3; a custom endpoint is addressed path-style
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { VeloError } from '../errors.js';
import type { Credentials } from './sigv4.js';
import type { S3Location } from './s3Client.js';

export type RemoteMode = 'read' | 'readwrite';

export interface RemoteSettings {
  /** s3://bucket/prefix as given */
  url: string;
  bucket: string;
  /** '' or ending in '/' */
  prefix: string;
  mode: RemoteMode;
  location: S3Location;
}

/** What the command line said: a URL, --no-remote (false), or nothing. */
export type RemoteFlag = string | false | undefined;

export function parseRemoteUrl(url: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(url.trim());
  if (!m) throw new VeloError('BAD_INPUT', `not a remote URL: ${JSON.stringify(url)}`, { hint: 'expected s3://bucket or s3://bucket/prefix' });
  const raw = (m[2] ?? '').replace(/\/+$/, '');
  if (raw.split('/').some((part) => part === '.' || part === '..' || part === '') && raw !== '') {
    throw new VeloError('BAD_INPUT', `remote URL ${JSON.stringify(url)}: the prefix has an empty, "." or ".." part`);
  }
  return { bucket: m[1]!, prefix: raw === '' ? '' : raw + '/' };
}

/** An INI file as ~/.aws/ has them: section → key → value. */
export function parseIni(text: string): Map<string, Map<string, string>> {
  const out = new Map<string, Map<string, string>>();
  let section: Map<string, string> | undefined;
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const sec = /^\[\s*([^\]]+?)\s*\]$/.exec(line);
    if (sec) {
      section = new Map();
      out.set(sec[1]!, section);
      continue;
    }
    const kv = /^([^=]+?)\s*=\s*(.*)$/.exec(line);
    if (kv && section && !/^\s/.test(rawLine)) section.set(kv[1]!.toLowerCase(), kv[2]!);
  }
  return out;
}

function readIni(path: string): Map<string, Map<string, string>> {
  try {
    return parseIni(readFileSync(path, 'utf8'));
  } catch {
    return new Map();
  }
}

interface AwsProfile {
  credentials: Credentials | undefined;
  region: string | undefined;
  endpoint: string | undefined;
}

function awsProfile(env: NodeJS.ProcessEnv): AwsProfile {
  const home = env.HOME || homedir();
  const name = env.AWS_PROFILE || env.AWS_DEFAULT_PROFILE || 'default';
  const creds = readIni(env.AWS_SHARED_CREDENTIALS_FILE || join(home, '.aws', 'credentials')).get(name);
  const config = readIni(env.AWS_CONFIG_FILE || join(home, '.aws', 'config'));
  const conf = config.get(name === 'default' ? 'default' : `profile ${name}`) ?? config.get(name);
  const id = creds?.get('aws_access_key_id') ?? conf?.get('aws_access_key_id');
  const secret = creds?.get('aws_secret_access_key') ?? conf?.get('aws_secret_access_key');
  const token = creds?.get('aws_session_token') ?? conf?.get('aws_session_token');
  return {
    credentials: id && secret ? { accessKeyId: id, secretAccessKey: secret, sessionToken: token } : undefined,
    region: conf?.get('region'),
    endpoint: conf?.get('endpoint_url'),
  };
}

export interface RemoteSources {
  env: NodeJS.ProcessEnv;
  flag?: RemoteFlag;
  /** the remote loadConfig() found (VELO_REMOTE, velo.json, config file) */
  configured?: string | undefined;
}

/** The remote to use, or undefined when none is configured (or --no-remote). */
export function remoteSettings(src: RemoteSources): RemoteSettings | undefined {
  const { env } = src;
  if (src.flag === false) return undefined;
  const pickUrl = (v: unknown, where: string): string | undefined => {
    if (v === undefined || v === '' || v === null) return undefined;
    if (typeof v !== 'string') throw new VeloError('BAD_INPUT', `${where}: remote must be an s3://bucket/prefix string (got ${JSON.stringify(v)})`);
    return v;
  };
  const url = pickUrl(src.flag, '--remote') ?? pickUrl(src.configured ?? env.VELO_REMOTE, 'VELO_REMOTE');
  if (url === undefined || url === 'none' || url === 'off') return undefined;
  const { bucket, prefix } = parseRemoteUrl(url);
  const modeRaw = (env.VELO_REMOTE_MODE ?? '').toLowerCase();
  if (!['', 'read', 'readwrite', 'read-write', 'write'].includes(modeRaw)) {
    throw new VeloError('BAD_INPUT', `VELO_REMOTE_MODE must be read or readwrite (got ${JSON.stringify(env.VELO_REMOTE_MODE)})`);
  }
  const profile = awsProfile(env);
  const envCreds: Credentials | undefined =
    env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
      ? { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY, sessionToken: env.AWS_SESSION_TOKEN || undefined }
      : undefined;
  const region = env.AWS_REGION || env.AWS_DEFAULT_REGION || profile.region || 'us-east-1';
  const custom = env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || profile.endpoint;
  let endpoint: string;
  if (custom) {
    try {
      const u = new URL(custom);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http(s)');
      endpoint = `${u.protocol}//${u.host}`;
    } catch {
      throw new VeloError('BAD_INPUT', `AWS_ENDPOINT_URL: not an http(s) URL: ${JSON.stringify(custom)}`);
    }
  } else endpoint = `https://s3.${region}.amazonaws.com`;
  const timeoutS = Number(env.VELO_REMOTE_TIMEOUT ?? 30);
  if (!Number.isFinite(timeoutS) || timeoutS <= 0) throw new VeloError('BAD_INPUT', `VELO_REMOTE_TIMEOUT must be a number of seconds (got ${JSON.stringify(env.VELO_REMOTE_TIMEOUT)})`);
  return {
    url: `s3://${bucket}/${prefix}`,
    bucket,
    prefix,
    mode: modeRaw === 'read' ? 'read' : 'readwrite',
    location: {
      endpoint,
      bucket,
      region,
      // virtual-hosted needs a DNS-safe bucket name and AWS's own endpoint
      pathStyle: Boolean(custom) || bucket.includes('.'),
      credentials: envCreds ?? profile.credentials,
      timeoutMs: Math.round(timeoutS * 1000),
    },
  };
}
