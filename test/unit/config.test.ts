import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { ConfigError, defaultBindAddress, loadConfig, parseProfiles } from '../../src/config.ts';
import { parseTrigger } from '../../src/trigger/schema.ts';

describe('loadConfig: TRIGGER_METRICS', () => {
  it('is on unless set to "false"', () => {
    expect(loadConfig({}).TRIGGER_METRICS).toBe(true);
    expect(loadConfig({ TRIGGER_METRICS: 'true' }).TRIGGER_METRICS).toBe(true);
    expect(loadConfig({ TRIGGER_METRICS: 'false' }).TRIGGER_METRICS).toBe(false);
    expect(loadConfig({ TRIGGER_METRICS: ' False ' }).TRIGGER_METRICS).toBe(false);
  });

  it('refuses anything else, naming the variable and the allowed values', () => {
    expect(() => loadConfig({ TRIGGER_METRICS: 'no' })).toThrow(ConfigError);
    expect(() => loadConfig({ TRIGGER_METRICS: 'no' })).toThrow(/TRIGGER_METRICS: allowed: true or false/);
  });
});

describe('loadConfig: the state store', () => {
  it('keeps state in the process unless STATE_STORE_URL is set', () => {
    expect(loadConfig({}).STATE_STORE_URL).toBeUndefined();
    expect(loadConfig({ STATE_STORE_URL: 'redis://valkey.keda:6379' }).STATE_STORE_URL).toBe('redis://valkey.keda:6379');
  });

  it('accepts a password and, for rediss://, a CA file beside the URL', () => {
    const config = loadConfig({
      STATE_STORE_URL: 'rediss://scaler@valkey:6380/2',
      STATE_STORE_PASSWORD: 'p',
      STATE_STORE_TLS_CA_FILE: '/etc/ca.pem',
    });
    expect(config.STATE_STORE_PASSWORD).toBe('p');
    expect(config.STATE_STORE_TLS_CA_FILE).toBe('/etc/ca.pem');
  });

  it.each([
    [
      'another scheme',
      { STATE_STORE_URL: 'http://:s3cret@valkey:6379' },
      /STATE_STORE_URL: scheme http: is not redis: or rediss:/,
    ],
    [
      'query parameters',
      { STATE_STORE_URL: 'redis://:s3cret@valkey:6379?password=x' },
      /STATE_STORE_URL: query parameters are not read/,
    ],
    [
      'a path that is not a database',
      { STATE_STORE_URL: 'redis://:s3cret@valkey:6379/state' },
      /STATE_STORE_URL: the path must be a database number/,
    ],
    ['a password without a URL', { STATE_STORE_PASSWORD: 's3cret' }, /STATE_STORE_PASSWORD need STATE_STORE_URL/],
    ['cluster mode without a URL', { STATE_STORE_CLUSTER: 'true' }, /STATE_STORE_CLUSTER need STATE_STORE_URL/],
    [
      'a Sentinel master and its password without a URL',
      { STATE_STORE_SENTINEL_MASTER: 'mymaster', STATE_STORE_SENTINEL_PASSWORD: 's3cret' },
      /STATE_STORE_SENTINEL_MASTER, STATE_STORE_SENTINEL_PASSWORD need STATE_STORE_URL/,
    ],
    [
      'a cluster that is Sentinel-managed too',
      { STATE_STORE_URL: 'redis://valkey:6379', STATE_STORE_CLUSTER: 'true', STATE_STORE_SENTINEL_MASTER: 'mymaster' },
      /a cluster or Sentinel-managed, not both/,
    ],
    [
      "a Sentinels' password without a master",
      { STATE_STORE_URL: 'redis://valkey:26379', STATE_STORE_SENTINEL_PASSWORD: 's3cret' },
      /STATE_STORE_SENTINEL_PASSWORD needs STATE_STORE_SENTINEL_MASTER/,
    ],
    [
      'a master name with a space',
      { STATE_STORE_URL: 'redis://valkey:26379', STATE_STORE_SENTINEL_MASTER: 'my master' },
      /STATE_STORE_SENTINEL_MASTER.*a Sentinel master group name/,
    ],
    [
      'a cluster with a database other than 0',
      { STATE_STORE_URL: 'redis://:s3cret@valkey:6379/2', STATE_STORE_CLUSTER: 'TRUE' },
      /a cluster has database 0 only/,
    ],
    [
      'a cluster flag that is no boolean',
      { STATE_STORE_URL: 'redis://valkey:6379', STATE_STORE_CLUSTER: 'yes' },
      /STATE_STORE_CLUSTER/,
    ],
    [
      'a CA file without TLS',
      { STATE_STORE_URL: 'redis://:s3cret@valkey:6379', STATE_STORE_TLS_CA_FILE: '/ca.pem' },
      /STATE_STORE_TLS_CA_FILE needs a rediss:\/\//,
    ],
  ])('refuses %s, never quoting the password', (_name, env, message) => {
    let error: unknown;
    try {
      loadConfig(env);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).not.toContain('s3cret');
  });
});

describe('loadConfig: numbers', () => {
  it.each([
    ['GRPC_PORT', ''],
    ['GRPC_PORT', '  '],
    ['GRPC_PORT', '65536'],
    ['GRPC_PORT', '-1'],
    ['GRPC_PORT', '90.5'],
    ['METRICS_PORT', '1e3'],
    ['CACHE_TTL_MS', '0'],
    ['SOURCE_TIMEOUT_MS', 'soon'],
    ['SHUTDOWN_TIMEOUT_MS', '99999999999'],
    ['STATE_RETENTION_MS', '60000'],
  ])('refuses %s=%j, naming the variable and what is allowed', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(new RegExp(`${name}: allowed: a whole number from \\d+ to \\d+`));
  });

  it('reads whole numbers (blanks around them trimmed) and defaults what is unset', () => {
    const config = loadConfig({ GRPC_PORT: ' 9091 ', CACHE_TTL_MS: '500' });
    expect(config).toMatchObject({ GRPC_PORT: 9091, CACHE_TTL_MS: 500, METRICS_PORT: 8080, SOURCE_TIMEOUT_MS: 2000 });
    // What a trigger learned is kept a day after it was last asked about, and no less than the idle sweep's 30 minutes.
    expect(config.STATE_RETENTION_MS).toBe(86_400_000);
    expect(loadConfig({ STATE_RETENTION_MS: '1800000' }).STATE_RETENTION_MS).toBe(1_800_000);
  });
});

// Found by review: the same port twice failed at bind (exit 1, "address in use"), as if another
// process held it.
describe('loadConfig: the ports', () => {
  it.each([
    [{ GRPC_PORT: '8080' }, 'METRICS_PORT is 8080, as GRPC_PORT is'],
    [{ HEALTH_PORT: '9090' }, 'HEALTH_PORT is 9090, as GRPC_PORT is'],
    [{ HEALTH_PORT: '8080', GRPC_PORT: '9091' }, 'HEALTH_PORT is 8080, as METRICS_PORT is'],
  ])('refuses %o: %s', (env, message) => {
    expect(() => loadConfig(env)).toThrow(new ConfigError(`environment: ${message}; allowed: a port of its own`));
  });

  it('takes an IPv6 BIND_ADDRESS as URLs write it, bare', () => {
    expect(loadConfig({ BIND_ADDRESS: '[::1]' }).BIND_ADDRESS).toBe('::1');
    expect(loadConfig({ BIND_ADDRESS: '127.0.0.1' }).BIND_ADDRESS).toBe('127.0.0.1');
  });

  it('takes ports of their own, and 0 (a free one) for any number of them', () => {
    expect(loadConfig({ HEALTH_PORT: '9092' })).toMatchObject({ GRPC_PORT: 9090, METRICS_PORT: 8080, HEALTH_PORT: 9092 });
    expect(loadConfig({ GRPC_PORT: '0', METRICS_PORT: '0' })).toMatchObject({ GRPC_PORT: 0, METRICS_PORT: 0, HEALTH_PORT: 0 });
  });
});

describe('loadConfig: GRPC_MAX_RECEIVE_MESSAGE_BYTES', () => {
  it("is 256 KiB unless set: far above a real ScaledObjectRef, far below grpc-js's 4 MiB", () => {
    expect(loadConfig({}).GRPC_MAX_RECEIVE_MESSAGE_BYTES).toBe(262_144);
    expect(loadConfig({ GRPC_MAX_RECEIVE_MESSAGE_BYTES: '65536' }).GRPC_MAX_RECEIVE_MESSAGE_BYTES).toBe(65_536);
  });

  it.each([
    ['a value under 1 KiB', '512'],
    ['a value over 4 MiB', String(4 * 1024 * 1024 + 1)],
    ['a fraction', '1024.5'],
    ['text', 'lots'],
    ['an empty value', ''],
  ])('refuses %s, naming the variable', (_name, value) => {
    expect(() => loadConfig({ GRPC_MAX_RECEIVE_MESSAGE_BYTES: value })).toThrow(ConfigError);
    expect(() => loadConfig({ GRPC_MAX_RECEIVE_MESSAGE_BYTES: value })).toThrow(
      /GRPC_MAX_RECEIVE_MESSAGE_BYTES: allowed: a whole number from 1024 to 4194304/,
    );
  });
});

describe('loadConfig: GRPC_MAX_OPEN_STREAMS', () => {
  it('is 5,000 unless set', () => {
    expect(loadConfig({}).GRPC_MAX_OPEN_STREAMS).toBe(5000);
    expect(loadConfig({ GRPC_MAX_OPEN_STREAMS: '20000' }).GRPC_MAX_OPEN_STREAMS).toBe(20_000);
  });

  it.each(['0', '-1', '1.5', 'many', ''])('refuses %j, naming the variable', (value) => {
    expect(() => loadConfig({ GRPC_MAX_OPEN_STREAMS: value })).toThrow(/GRPC_MAX_OPEN_STREAMS: /);
  });
});

describe('loadConfig: LOOP_TARGET_UTILIZATION', () => {
  it('is 0.5 unless set; 1 starts every read at once', () => {
    expect(loadConfig({}).LOOP_TARGET_UTILIZATION).toBe(0.5);
    expect(loadConfig({ LOOP_TARGET_UTILIZATION: '0.8' }).LOOP_TARGET_UTILIZATION).toBe(0.8);
    expect(loadConfig({ LOOP_TARGET_UTILIZATION: '.3' }).LOOP_TARGET_UTILIZATION).toBe(0.3);
    expect(loadConfig({ LOOP_TARGET_UTILIZATION: '1' }).LOOP_TARGET_UTILIZATION).toBe(1);
    // As Helm's toString renders a small number.
    expect(loadConfig({ LOOP_TARGET_UTILIZATION: '1e-05' }).LOOP_TARGET_UTILIZATION).toBe(0.00001);
  });

  it.each(['0', '0.0', '1.5', '-0.5', 'half', '', '50%', '1e2', '0x1', 'Infinity', 'NaN', '1e'])(
    'refuses %j, naming the variable and what is allowed',
    (value) => {
      expect(() => loadConfig({ LOOP_TARGET_UTILIZATION: value })).toThrow(
        /LOOP_TARGET_UTILIZATION: allowed: a number above 0 and at most 1/,
      );
    },
  );
});

// Found by review: a profile's values were checked only when a trigger named the profile, and
// KEDA was then told of keys its trigger does not hold.
describe('parseProfiles: values checked at start-up', () => {
  const kafka = (events: Record<string, string>) => ({ connections: { kafka: { events } } });

  it('takes valid values, literal and from the environment', () => {
    const profiles = parseProfiles(
      kafka({ bootstrapServers: 'k1:9092,k2:9092', sasl: 'SCRAM_SHA512', usernameFromEnv: 'U', passwordFromEnv: 'P' }),
      { U: 'svc', P: 'pw' },
    );
    expect(profiles.kafka?.events).toEqual({
      bootstrapServers: 'k1:9092,k2:9092',
      sasl: 'SCRAM_SHA512',
      username: 'svc',
      password: 'pw',
    });
  });

  it.each([
    [
      'a word that is not allowed',
      kafka({ sasl: 'kerberos' }),
      /^config file: connections\.kafka\.events\.sasl: got "kerberos"; allowed: none, plain/,
    ],
    [
      'a bad list',
      kafka({ bootstrapServers: 'k1' }),
      /connections\.kafka\.events\.bootstrapServers: got "k1"; allowed: a comma-separated list/,
    ],
    [
      'a value from the environment',
      { connections: { rabbitmq: { main: { hostFromEnv: 'URL' } } } },
      /connections\.rabbitmq\.main\.host: got \(redacted\); allowed: an amqp:\/\//,
    ],
    [
      'user info without a scheme, masked',
      { connections: { gpu: { cluster: { serverAddress: 'admin:hunter2@prometheus:9090' } } } },
      /connections\.gpu\.cluster\.serverAddress: got "\*\*\*@prometheus:9090"/,
    ],
  ])('refuses %s, naming connections.<kind>.<name>.<key>', (_, raw, message) => {
    const err = (() => {
      try {
        parseProfiles(raw, { URL: 'rabbit:5672' });
      } catch (e) {
        return e as Error;
      }
      throw new Error('expected a ConfigError');
    })();
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toMatch(message);
    expect(err.message).not.toContain('hunter2');
  });

  // Found by review: a misspelt top-level key was dropped, and the scaler started with no profiles.
  it.each([
    [{ connection: { rabbitmq: {} } }, 'config file: connection: unknown key; allowed: connections'],
    [{ connections: { redis: {} } }, 'config file: connections.redis: unknown key; allowed: rabbitmq, sqs, kafka, gpu'],
  ])('refuses the unknown key of %j, naming what is allowed', (raw, message) => {
    expect(() => parseProfiles(raw, {})).toThrow(new ConfigError(message));
  });

  it("takes a value longer than a trigger may send (a CA bundle): the limit is for clients, a profile is the operator's", () => {
    const bundle = `-----BEGIN CERTIFICATE-----\n${'A'.repeat(200_000)}\n-----END CERTIFICATE-----\n`;
    const profiles = parseProfiles({ connections: { gpu: { cluster: { serverAddress: 'https://prom:9090', ca: bundle } } } }, {});
    expect(profiles.gpu?.cluster?.ca).toBe(bundle);
    const metadata = { 'gpu.connection': 'cluster', 'gpu.query': 'sum(DCGM_FI_DEV_GPU_UTIL)' };
    expect(parseTrigger({ name: 'n', namespace: 'ns', metadata }, { profiles }).sources[0]).toMatchObject({ ca: bundle.trim() });
  });

  // Found by review: toJS() warned of a mapping used as a key with the key whole, and the unknown key quoted it.
  it('refuses a mapping used as a key without quoting its password, and prints nothing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kis-config-'));
    const file = join(dir, 'config.yaml');
    const warned = vi.spyOn(process, 'emitWarning');
    try {
      writeFileSync(file, 'connections:\n  rabbitmq:\n    m:\n      ? {host: "amqp://u:s3cretPa55@h"}\n      : x\n');
      expect(() => loadConfig({ CONFIG_FILE: file })).toThrow(/connections\.rabbitmq\.m\..*: unknown key/);
      expect(() => loadConfig({ CONFIG_FILE: file })).not.toThrow(/s3cret/);
      expect(warned).not.toHaveBeenCalled();
    } finally {
      rmSync(dir, { recursive: true, force: true });
      warned.mockRestore();
    }
  });

  // Found by review: a password pasted where a variable's name goes was quoted as one.
  it('names a <key>FromEnv variable that is not set, unless the key is a secret or the value no name', () => {
    expect(() => parseProfiles({ connections: { rabbitmq: { main: { hostFromEnv: 'RABBIT_URL' } } } }, {})).toThrow(
      'config file: connections.rabbitmq.main.hostFromEnv: environment variable RABBIT_URL is not set',
    );
    for (const [kind, key, value] of [
      ['kafka', 'passwordFromEnv', 'zqPasted'],
      ['rabbitmq', 'hostFromEnv', 'amqp://u:zqPasted@rabbit'],
    ] as const) {
      let message = '';
      try {
        parseProfiles({ connections: { [kind]: { main: { [key]: value } } } }, {});
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).toBe(`config file: connections.${kind}.main.${key}: the environment variable it names is not set`);
    }
  });

  it('names the <key>FromEnv spellings beside an unknown key', () => {
    expect(() => parseProfiles({ connections: { rabbitmq: { main: { hostFromenv: 'URL' } } } }, {})).toThrow(
      /hostFromenv: unknown key; allowed: host, queueName, .*each also as <key>FromEnv/,
    );
  });

  // Found by review: the yaml library's message on a syntax error quotes the lines around it, which
  // went to stderr with the profile's password in them.
  it.each([
    ['a bad indent', 'connections:\n  kafka:\n    e:\n      password: s3cretPa55\n     username: u\n'],
    ['an unclosed quote', 'connections:\n  kafka:\n    e:\n      password: s3cretPa55\n      username: "u\n'],
    ['a duplicate key', 'connections:\n  rabbitmq:\n    m:\n      host: http://u:s3cretPa55@r\n      host: x\n'],
    // Found by review: warnings went to stderr through process.emitWarning, the line quoted.
    ['an unresolved tag', 'connections:\n  kafka:\n    e:\n      password: !secret s3cretPa55\n'],
    ['an unknown directive', '%FOO bar\n---\nconnections:\n  kafka:\n    e:\n      password: s3cretPa55\n'],
  ])('says where a CONFIG_FILE with %s is wrong, not what it holds', (_what, text) => {
    const warned = vi.spyOn(process, 'emitWarning');
    const dir = mkdtempSync(join(tmpdir(), 'kis-config-'));
    const file = join(dir, 'config.yaml');
    try {
      writeFileSync(file, text);
      let message = '';
      try {
        loadConfig({ CONFIG_FILE: file });
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).toMatch(new RegExp(`^CONFIG_FILE ${file}: YAML [A-Z_]+ at line \\d+, column \\d+$`));
      expect(message).not.toContain('s3cret');
      expect(warned).not.toHaveBeenCalled();
    } finally {
      rmSync(dir, { recursive: true, force: true });
      warned.mockRestore();
    }
  });

  // Found by review: YAML's core schema rewrote unquoted values (00042 read as 42, 0x1F2E as
  // 7982), and a profile with both host and hostFromEnv took whichever came last.
  it('reads every value of the file as written, and refuses a key given both ways', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kis-config-'));
    const file = join(dir, 'config.yaml');
    const load = (text: string) => {
      writeFileSync(file, text);
      return loadConfig({ CONFIG_FILE: file, RABBIT_URL: 'amqp://prod:pw@rabbit-prod' }).profiles;
    };
    try {
      const kafka =
        'connections:\n  kafka:\n    e: { bootstrapServers: "k:9092", sasl: plain, username: 00042, password: 0x1F2E, unsafeSsl: true }\n';
      expect(load(kafka).kafka?.e).toMatchObject({ username: '00042', password: '0x1F2E', unsafeSsl: 'true' });
      expect(load('connections:\n  rabbitmq:\n    main: { host: "amqp://r", vhostName: 010 }\n').rabbitmq?.main?.vhostName).toBe(
        '010',
      );
      expect(() =>
        load('connections:\n  rabbitmq:\n    main: { hostFromEnv: RABBIT_URL, host: "amqp://guest:guest@localhost" }\n'),
      ).toThrow(new ConfigError('config file: connections.rabbitmq.main.hostFromEnv: set either host or hostFromEnv, not both'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("says which profile a trigger's cross-field issue comes from", () => {
    const profiles = parseProfiles({ connections: { rabbitmq: { mgmt: { protocol: 'http' } } } }, {});
    const metadata = { 'rabbitmq.connection': 'mgmt', 'rabbitmq.host': 'amqp://rabbit:5672/', 'rabbitmq.queueName': 'jobs' };
    expect(() => parseTrigger({ name: 'n', namespace: 'ns', metadata }, { profiles })).toThrow(
      /rabbitmq\.protocol \(from connection profile mgmt\): got "http" but rabbitmq\.host is a amqp:\/\/ URL/,
    );
    // The trigger's own key is named as the trigger wrote it.
    const own = { ...metadata, 'rabbitmq.protocol': 'http' };
    expect(() => parseTrigger({ name: 'n', namespace: 'ns', metadata: own }, { profiles })).toThrow(
      /: rabbitmq\.protocol: got "http"/,
    );
  });
});

describe('loadConfig: LOG_LEVEL', () => {
  it('takes a level in any case, and refuses another word naming the levels', () => {
    expect(loadConfig({}).LOG_LEVEL).toBe('info');
    expect(loadConfig({ LOG_LEVEL: 'DEBUG' }).LOG_LEVEL).toBe('debug');
    expect(() => loadConfig({ LOG_LEVEL: 'verbose' })).toThrow(
      /LOG_LEVEL: allowed: trace, debug, info, warn, error, fatal or silent/,
    );
  });

  // Found by review: an empty variable (a Helm template with nothing to put there) said "Too small:
  // expected string to have >=1 characters".
  it.each([
    ['BIND_ADDRESS', 'an address to listen on'],
    ['STATE_STORE_URL', 'a redis:// or rediss:// URL, or unset'],
    ['CONFIG_FILE', "a YAML file's path, or unset"],
    ['TLS_CERT_FILE', "a PEM certificate file's path"],
  ])('says what %s takes when it is set empty', (name, allowed) => {
    expect(() => loadConfig({ [name]: '' })).toThrow(`${name}: empty; allowed: ${allowed}`);
  });
});

// Found by review: 0.0.0.0 alone left an IPv6-only cluster's probes and KEDA without an answer.
describe('loadConfig: BIND_ADDRESS', () => {
  const v4 = { family: 'IPv4', address: '10.0.0.5' } as const;
  const v6 = { family: 'IPv6', address: 'fd00::5' } as const;
  it.each([
    ['a host with IPv6 (dual stack, or IPv6 only)', { eth0: [v4, v6] }, '::'],
    ['an IPv6-only host', { eth0: [v6] }, '::'],
    ['a host without IPv6 (disabled in its kernel)', { eth0: [v4] }, '0.0.0.0'],
  ])('defaults to every address of %s', (_name, interfaces, address) => {
    expect(defaultBindAddress(interfaces as unknown as Parameters<typeof defaultBindAddress>[0])).toBe(address);
  });

  it('takes the address it is given', () => {
    expect(loadConfig({ BIND_ADDRESS: '127.0.0.1' }).BIND_ADDRESS).toBe('127.0.0.1');
    expect(loadConfig({}).BIND_ADDRESS).toBe(defaultBindAddress());
  });

  // Found by review: blanks and `[]` passed the emptiness check, and the bind failed late with
  // "No addresses resolved for port [object Object]".
  it.each(['   ', '[]', ' [] '])('refuses %j, empty once trimmed and unbracketed', (address) => {
    expect(() => loadConfig({ BIND_ADDRESS: address })).toThrow('BIND_ADDRESS: empty; allowed: an address to listen on');
  });
});
