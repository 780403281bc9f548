// Which remote, credentials, region and endpoint velo takes from the flags,
// the environment, velo.json, the config file and ~/.aws/ — the AWS
// conventions users already have.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { parseRemoteUrl, remoteSettings } from '../src/remote/remoteConfig.js';
import { signRequest } from '../src/remote/sigv4.js';
import { tempDirs } from './support/tmp.js';

const tmp = tempDirs('velo-remote-config-');

function awsHome(credentials: string, config: string): string {
  const home = tmp();
  mkdirSync(join(home, '.aws'));
  writeFileSync(join(home, '.aws', 'credentials'), credentials);
  writeFileSync(join(home, '.aws', 'config'), config);
  return home;
}

describe('remote settings', () => {
  it('parses s3://bucket/prefix and refuses what is not one', () => {
    expect(parseRemoteUrl('s3://team-cache/velo/ci/')).toEqual({ bucket: 'team-cache', prefix: 'velo/ci/' });
    expect(parseRemoteUrl('s3://team-cache')).toEqual({ bucket: 'team-cache', prefix: '' });
    for (const bad of ['https://x/y', 's3://', 's3://Bad_Bucket/x', 's3://bucket/../x', 's3://bucket/a//b']) {
      expect(() => parseRemoteUrl(bad), bad).toThrow(/remote URL/);
    }
  });

  it('--no-remote > --remote > VELO_REMOTE > velo.json > config file', () => {
    const xdg = tmp();
    mkdirSync(join(xdg, 'velo'));
    writeFileSync(join(xdg, 'velo', 'config.json'), JSON.stringify({ remote: 's3://from-config/p' }));
    const env = { XDG_CONFIG_HOME: xdg, HOME: tmp() };
    const url = (e: NodeJS.ProcessEnv, project: Record<string, unknown>, flag?: string | false) =>
      remoteSettings({ env: e, flag, configured: loadConfig(e, project).remote })?.url;
    expect(url(env, {})).toBe('s3://from-config/p/');
    expect(url(env, { remote: 's3://from-project/q' })).toBe('s3://from-project/q/');
    expect(url({ ...env, VELO_REMOTE: 's3://from-env' }, { remote: 's3://from-project/q' })).toBe('s3://from-env/');
    expect(url({ ...env, VELO_REMOTE: 's3://from-env' }, {}, 's3://from-flag/x')).toBe('s3://from-flag/x/');
    expect(url({ ...env, VELO_REMOTE: 's3://from-env' }, {}, false)).toBeUndefined();
    expect(url({ ...env, VELO_REMOTE: 'off' }, {})).toBeUndefined();
    expect(() => loadConfig(env, { remote: 42 })).toThrow(/velo.json: remote must be/);
  });

  it('credentials and region from the environment win over the profile; a custom endpoint is path-style', () => {
    const home = awsHome('[default]\naws_access_key_id = FILEKEY\naws_secret_access_key = FILESECRET\n', '[default]\nregion = eu-west-1\n');
    const fromFiles = remoteSettings({ env: { HOME: home, VELO_REMOTE: 's3://bkt/p' } })!;
    expect(fromFiles.location).toMatchObject({
      credentials: { accessKeyId: 'FILEKEY', secretAccessKey: 'FILESECRET' },
      region: 'eu-west-1',
      endpoint: 'https://s3.eu-west-1.amazonaws.com',
      pathStyle: false,
    });
    const fromEnv = remoteSettings({
      env: { HOME: home, VELO_REMOTE: 's3://bkt/p', AWS_ACCESS_KEY_ID: 'ENVKEY', AWS_SECRET_ACCESS_KEY: 'ENVSECRET', AWS_SESSION_TOKEN: 'TOKEN', AWS_REGION: 'auto', AWS_ENDPOINT_URL: 'https://acct.r2.cloudflarestorage.com/' },
    })!;
    expect(fromEnv.location).toMatchObject({
      credentials: { accessKeyId: 'ENVKEY', secretAccessKey: 'ENVSECRET', sessionToken: 'TOKEN' },
      region: 'auto',
      endpoint: 'https://acct.r2.cloudflarestorage.com',
      pathStyle: true,
    });
    expect(fromEnv.mode).toBe('readwrite');
    expect(remoteSettings({ env: { HOME: home, VELO_REMOTE: 's3://bkt', VELO_REMOTE_MODE: 'read' } })!.mode).toBe('read');
    expect(() => remoteSettings({ env: { HOME: home, VELO_REMOTE: 's3://bkt', VELO_REMOTE_MODE: 'sometimes' } })).toThrow(/VELO_REMOTE_MODE/);
  });

  it('AWS_PROFILE picks [profile NAME] in ~/.aws/config, with its endpoint_url', () => {
    const home = awsHome(
      '[default]\naws_access_key_id = D\naws_secret_access_key = DS\n\n[ci]\naws_access_key_id = CIKEY\naws_secret_access_key = CISECRET\n',
      '[default]\nregion = us-west-2\n\n[profile ci]\nregion = ap-south-1\nendpoint_url = http://127.0.0.1:8333\n',
    );
    const s = remoteSettings({ env: { HOME: home, AWS_PROFILE: 'ci', VELO_REMOTE: 's3://bkt' } })!;
    expect(s.location).toMatchObject({ credentials: { accessKeyId: 'CIKEY', secretAccessKey: 'CISECRET' }, region: 'ap-south-1', endpoint: 'http://127.0.0.1:8333', pathStyle: true });
  });

  it('no credentials anywhere: unsigned requests (a public bucket)', () => {
    const s = remoteSettings({ env: { HOME: tmp(), VELO_REMOTE: 's3://public-bucket/x' } })!;
    expect(s.location.credentials).toBeUndefined();
  });
});

describe('SigV4', () => {
  // AWS's published example (S3 docs, "Example: GET Object"): the same inputs give the same signature
  it('signs the documented GET Object example as AWS does', () => {
    const headers = signRequest({
      method: 'GET',
      url: new URL('https://examplebucket.s3.amazonaws.com/test.txt'),
      headers: { range: 'bytes=0-9' },
      region: 'us-east-1',
      credentials: { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' },
      now: new Date('2013-05-24T00:00:00Z'),
      payloadHash: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    });
    expect(headers.authorization).toBe(
      'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41',
    );
  });
});
