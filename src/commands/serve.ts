/**
 * `kubeshim serve`: flags of the contract (docs/design.md) → startServing; runs until SIGINT, SIGTERM or SIGHUP,
 * then stops gracefully (a second signal cuts the grace period short).
 */
import { createLogger, type Logger } from '../observe/logger.js';
import { DEFAULT_RECORD_MAX_BYTES, WARM_UP_RECORDING_BYTES } from '../record/recorder.js';
import { DEFAULT_ACCEPT_HOSTS, parsePatterns } from '../server/access.js';
import {
  DEFAULT_LIMITS,
  formatDuration,
  parseCount,
  parseDuration,
  parsePositiveDuration,
} from '../server/limits.js';
import { parseListen } from '../server/listen-address.js';
import { reexecWithMemorySettings } from '../server/memory-settings.js';
import {
  defaultSecureLocalDir,
  prepareSecureLocal,
  SECURE_LOCAL_NAMES,
  writeSecureLocalKubeconfig,
} from '../server/secure-local.js';
import { type ServeConfig, startServing } from '../server/serve.js';
import { checkUpstream } from '../server/upstream-check.js';
import {
  isFirstWorker,
  isServeWorker,
  parseWorkers,
  serveAsWorker,
  superviseWorkers,
  tagWorker,
} from '../server/workers.js';
import type { UpstreamMode } from '../upstream/choice.js';
import { warmUp } from '../warmup/warm-up.js';
import {
  checkKubeconfigFlag,
  parseFlags,
  parseLogLevel,
  parseUpstreamFlag,
  reportFailure,
  UsageError,
} from './command-line.js';

const USAGE = `Usage: kubeshim serve [flags]

  --listen HOST:PORT|PORT     where to listen (default 127.0.0.1:8001; PORT alone is 127.0.0.1:PORT;
                              port 0 picks a free port)
  --upstream URL              API server URL, http:// or https:// (default: the kubeconfig context's server)
  --kubeconfig PATH           upstream TLS and credentials (default $KUBECONFIG, then ~/.kube/config)
  --context NAME              kubeconfig context (default: current-context)
  --upstream-protocol MODE    auto | spdy | websocket (default auto)
  --tls-cert FILE --tls-key FILE   serve HTTPS
  --log-level LEVEL           pino level (default info)
  --port-forward-stats        count port-forward connections and their bytes (reads relayed SPDY frames)
  --workers N|auto            processes sharing the listener (default 1; auto: one per CPU)
  --no-warm-up                announce the listener at once, without first carrying a few loopback
                              sessions (and a recording) through it (under a second; the first real
                              sessions are slower)

Recording and audit:
  --record-dir DIR            record every exec and attach session as an asciicast v2 file in DIR (0600)
  --record-stdin              record stdin too (it can carry passwords typed into the session)
  --record-required           refuse sessions that cannot be recorded; end open ones when recording stops
  --record-max-bytes N        per-session cap on recorded bytes (default ${DEFAULT_RECORD_MAX_BYTES})
  --audit-log FILE|-          one JSON line per request (- : on stdout, with the log)

Who may use it:
  --accept-hosts REGEXES      Host (and Origin) patterns, comma-separated
                              (default ${DEFAULT_ACCEPT_HOSTS.join(',')} plus the listen host)
  --accept-paths REGEXES      paths served (default ^.*)
  --reject-paths REGEXES      paths refused (default none: unlike kubectl proxy, exec and attach are served)
  --client-ca FILE            TLS listener: clients must present a certificate signed by this CA
  --token-file FILE           clients must present this bearer token (it is never sent upstream)
  --insecure-listen-anywhere  allow a non-loopback --listen without TLS and --client-ca/--token-file
  --secure-local              only you can use it: TLS with a generated CA and a random token, kept in
                              ~/.kubeshim/secure-local (0700), and a kubeconfig (0600) for kubectl there
  --write-kubeconfig FILE     --secure-local: write the kubeconfig to FILE instead

Limits:
  --max-sessions N            streaming sessions at once; more get 503 (default ${DEFAULT_LIMITS.maxSessions}; 0: no limit)
  --handshake-timeout DUR     for a client's request head, the upstream's upgrade answer and the start of its plain answers (default ${formatDuration(DEFAULT_LIMITS.handshakeTimeoutMs)})
  --max-header-bytes N        largest request head, SPDY header block and control frame (default ${DEFAULT_LIMITS.maxHeaderBytes})
  --idle-timeout DUR          end sessions with no data either way for this long (default 0: never)
  --ping-interval DUR         keepalive pings toward SPDY and WebSocket peers (default 5s)
  --ping-timeout DUR          end a session whose peer leaves pings unanswered this long (default 30s)
  --shutdown-grace DUR        on SIGTERM, time open sessions get to finish (default 10s)

Durations are Go-style (500ms, 30s, 5m, 1h30m); a bare number is seconds.
`;

const MODES: UpstreamMode[] = ['auto', 'spdy', 'websocket'];

type ServeArgs = Omit<ServeConfig, 'log'> & {
  logLevel: string;
  warm: boolean;
  shutdownGraceMs: number;
  workers: number;
  secureLocal: boolean;
  writeKubeconfig?: string;
};

/** Flags of the listener's TLS and authentication, which --secure-local sets itself. */
const SECURE_LOCAL_SETS = ['tls-cert', 'tls-key', 'token-file', 'client-ca', 'insecure-listen-anywhere'];

/** Parsed flags, or 0 when help was asked for; throws a UsageError for flags that cannot be right. */
function parseServeArgs(argv: string[]): ServeArgs | 0 {
  try {
    const values = parseFlags(argv, {
      listen: { type: 'string', default: '127.0.0.1:8001' },
      upstream: { type: 'string' },
      kubeconfig: { type: 'string' },
      context: { type: 'string' },
      'upstream-protocol': { type: 'string', default: 'auto' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'log-level': { type: 'string', default: 'info' },
      'port-forward-stats': { type: 'boolean', default: false },
      'accept-hosts': { type: 'string' },
      'accept-paths': { type: 'string' },
      'reject-paths': { type: 'string' },
      'client-ca': { type: 'string' },
      'token-file': { type: 'string' },
      'insecure-listen-anywhere': { type: 'boolean', default: false },
      'secure-local': { type: 'boolean', default: false },
      'write-kubeconfig': { type: 'string' },
      'max-sessions': { type: 'string' },
      'handshake-timeout': { type: 'string' },
      'max-header-bytes': { type: 'string' },
      'idle-timeout': { type: 'string', default: '0' },
      'ping-interval': { type: 'string', default: '5s' },
      'ping-timeout': { type: 'string', default: '30s' },
      'shutdown-grace': { type: 'string', default: '10s' },
      'record-dir': { type: 'string' },
      'record-stdin': { type: 'boolean', default: false },
      'record-required': { type: 'boolean', default: false },
      'record-max-bytes': { type: 'string' },
      'audit-log': { type: 'string' },
      workers: { type: 'string', default: '1' },
      'no-warm-up': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    });
    if (values.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    const mode = values['upstream-protocol'] as UpstreamMode;
    if (!MODES.includes(mode)) throw new Error(`--upstream-protocol must be one of ${MODES.join(', ')}`);
    const optional = <T>(value: string | undefined, parse: (v: string) => T) =>
      value === undefined ? undefined : parse(value);
    const patterns = (flag: string) => (v: string) => parsePatterns(flag, v);
    const maxHeaderBytes = optional(values['max-header-bytes'], (v) => parseCount('--max-header-bytes', v));
    if (maxHeaderBytes !== undefined && maxHeaderBytes < 1024)
      throw new Error('--max-header-bytes must be at least 1024');
    if ((values['tls-cert'] === undefined) !== (values['tls-key'] === undefined))
      throw new Error('--tls-cert and --tls-key go together: give both, or neither for plain http');
    const recordDir = values['record-dir'];
    for (const flag of ['record-stdin', 'record-required', 'record-max-bytes'] as const)
      if (values[flag] && recordDir === undefined) throw new Error(`--${flag} needs --record-dir`);
    const listen = parseListen(values.listen);
    const secureLocal = values['secure-local'];
    if (values['write-kubeconfig'] !== undefined && !secureLocal)
      throw new Error(
        '--write-kubeconfig goes with --secure-local (for other listeners: kubeshim kubeconfig --output FILE)',
      );
    if (secureLocal) {
      if (values.workers !== '1')
        throw new Error(
          '--secure-local runs one process: leave out --workers (it is for one user on one machine)',
        );
      const given = SECURE_LOCAL_SETS.filter((f) => values[f as keyof typeof values] ?? false);
      if (given.length > 0)
        throw new Error(
          `--secure-local makes its own certificate and token: leave out ${given.map((f) => `--${f}`).join(', ')}`,
        );
      const names: readonly string[] = [...SECURE_LOCAL_NAMES.ips, ...SECURE_LOCAL_NAMES.dns];
      if (!names.includes(listen.host))
        throw new Error(
          `--secure-local listens on the loopback only: --listen 127.0.0.1:PORT, [::1]:PORT or localhost:PORT (got ${values.listen})`,
        );
    }
    return {
      listen,
      secureLocal,
      writeKubeconfig: values['write-kubeconfig'],
      mode,
      upstream: parseUpstreamFlag(values.upstream),
      kubeconfig: values.kubeconfig,
      context: values.context,
      tlsCert: values['tls-cert'],
      tlsKey: values['tls-key'],
      logLevel: parseLogLevel(values['log-level']),
      portForwardStats: values['port-forward-stats'],
      acceptHosts: optional(values['accept-hosts'], patterns('--accept-hosts')),
      acceptPaths: optional(values['accept-paths'], patterns('--accept-paths')),
      rejectPaths: optional(values['reject-paths'], patterns('--reject-paths')),
      clientCa: values['client-ca'],
      tokenFile: values['token-file'],
      insecureListenAnywhere: values['insecure-listen-anywhere'],
      limits: {
        maxSessions: optional(values['max-sessions'], (v) => parseCount('--max-sessions', v)),
        handshakeTimeoutMs: optional(values['handshake-timeout'], (v) =>
          parsePositiveDuration('--handshake-timeout', v),
        ),
        maxHeaderBytes,
        idleTimeoutMs: parseDuration('--idle-timeout', values['idle-timeout']),
      },
      pingIntervalMs: parseDuration('--ping-interval', values['ping-interval']),
      pingTimeoutMs: parseDuration('--ping-timeout', values['ping-timeout']),
      shutdownGraceMs: parseDuration('--shutdown-grace', values['shutdown-grace']),
      recording: {
        recordDir,
        recordStdin: values['record-stdin'],
        recordRequired: values['record-required'],
        recordMaxBytes: optional(values['record-max-bytes'], (v) => {
          const n = parseCount('--record-max-bytes', v);
          if (n === 0) throw new Error('--record-max-bytes: 0 would record nothing; give at least 1');
          return n;
        }),
        auditLog: values['audit-log'],
        warmUpBytes: values['no-warm-up'] ? 0 : WARM_UP_RECORDING_BYTES,
      },
      workers: parseWorkers(values.workers),
      warm: !values['no-warm-up'],
    };
  } catch (err) {
    throw err instanceof UsageError ? err : new UsageError((err as Error).message);
  }
}

/**
 * Warm the hot paths (src/warmup) before the listener is announced. A warm-up that fails is a
 * warning: sessions are still served.
 */
async function warmUpLogged(log: Logger): Promise<void> {
  try {
    const r = await warmUp({ log });
    log.info({ sessions: r.sessions, roundTrips: r.roundTrips, bytes: r.bytes, ms: r.ms }, 'warmed up');
  } catch (err) {
    log.warn(
      `warm-up failed: ${(err as Error).message} (sessions are served; --no-warm-up skips the warm-up)`,
    );
  }
}

/** A listen failure as a sentence naming --listen, or undefined for any other error. */
function listenProblem(
  err: NodeJS.ErrnoException,
  listen: { host: string; port: number },
): string | undefined {
  const at = `--listen ${listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${listen.port}`;
  switch (err.code) {
    case 'EADDRINUSE':
      return `${at}: the port is already in use (another kubeshim or kubectl proxy?): stop it, or choose another port (--listen ${listen.host === '127.0.0.1' ? '' : `${listen.host}:`}${listen.port + 1})`;
    case 'EACCES':
      return `${at}: permission denied (ports below 1024 need privileges): choose a port above 1024`;
    case 'EADDRNOTAVAIL':
      return `${at}: no network interface here has that address: use 127.0.0.1 or an address of this machine`;
    default:
      return undefined;
  }
}

export async function serveCommand(argv: string[]): Promise<number> {
  try {
    return await serve(argv);
  } catch (err) {
    return reportFailure('serve', err);
  }
}

async function serve(argv: string[]): Promise<number> {
  const parsed = parseServeArgs(argv);
  if (parsed === 0) return 0;
  reexecWithMemorySettings();
  const { logLevel, shutdownGraceMs, workers, secureLocal, writeKubeconfig, warm, ...config } = parsed;
  // unset limits fall back to the defaults
  config.limits = Object.fromEntries(Object.entries(config.limits ?? {}).filter(([, v]) => v !== undefined));
  checkKubeconfigFlag(config.kubeconfig);
  const log = tagWorker(createLogger({ level: logLevel }));
  // the generated material goes through the listener's own --tls-cert/--tls-key/--token-file checks
  const local = secureLocal ? await prepareSecureLocal(defaultSecureLocalDir()) : undefined;
  if (local)
    Object.assign(config, {
      tlsCert: local.files.cert,
      tlsKey: local.files.key,
      tokenFile: local.files.token,
    });
  const startOne = async () => {
    const s = await startServing({ ...config, log }).catch((err: NodeJS.ErrnoException) => {
      throw new Error(listenProblem(err, config.listen) ?? err.message);
    });
    if (warm) await warmUpLogged(log);
    return {
      url: s.shim.url,
      upstream: s.target.describe(),
      credentials: s.target.credentials,
      target: s.target,
      metrics: s.metrics,
      close: s.close,
      shutdown: s.shutdown,
    };
  };
  if (isServeWorker()) {
    // with workers, the first one looks at the upstream for all (any other would see the same)
    const startWorker = async () => {
      const started = await startOne();
      if (isFirstWorker()) void checkUpstream(started.target, log);
      return started;
    };
    return serveAsWorker(startWorker, shutdownGraceMs, log);
  }
  const single = workers > 1 ? undefined : await startOne();
  const serving = single ?? (await superviseWorkers(workers, log));
  let written: ReturnType<typeof writeSecureLocalKubeconfig> | undefined;
  if (local && single) {
    try {
      if (!single.target.injectsCredentials)
        throw new Error(
          "--secure-local guards the credentials kubeshim injects, and there are none here (clients' own would pass through, and the listener's token takes their place): give a --kubeconfig/--context whose user has credentials, or leave out --secure-local",
        );
      written = writeSecureLocalKubeconfig(local.files, {
        url: single.url,
        output: writeKubeconfig,
        kubeconfig: config.kubeconfig,
        context: config.context,
        upstream: config.upstream,
      });
    } catch (err) {
      await single.close();
      throw err;
    }
  }
  // SIGHUP: the terminal closed or the ssh session dropped; its default action would cut every session
  // without a status, which kubectl before 1.30 reads as exit 0
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  const nextSignal = () =>
    new Promise<NodeJS.Signals>((resolve) => {
      const on = (s: NodeJS.Signals) => {
        for (const name of signals) process.off(name, on);
        resolve(s);
      };
      for (const name of signals) process.on(name, on);
    });
  // listened for before the `listening` line: a script that signals as soon as it reads the line
  // must not meet the default action (the process killed, exit code lost)
  const firstSignal = nextSignal();
  // the contract's `listening` line is written whatever --log-level says (scripts wait for it)
  log.child({}, { level: 'info' }).info(
    {
      url: serving.url,
      upstream: serving.upstream,
      credentials: serving.credentials,
      upstreamProtocol: config.mode,
      workers,
      ...(written ? { kubeconfig: written.file } : {}),
    },
    'listening',
  );
  if (local && written) {
    for (const note of written.notes) log.warn(`--secure-local: ${note}`);
    log.info(
      {
        kubeconfig: written.file,
        context: written.context,
        material: local.files.dir,
        generated: local.made,
      },
      `secure local mode: only who can read ${written.file} can use kubeshim (kubectl --kubeconfig ${written.file} …)`,
    );
  }
  if (single) void checkUpstream(single.target, log);
  const signal = await firstSignal;
  log.info({ signal, grace: formatDuration(shutdownGraceMs) }, 'stopping');
  const hurry = nextSignal().then((s) => log.warn({ signal: s }, 'second signal: ending sessions now'));
  await serving.shutdown(shutdownGraceMs, hurry);
  log.info('stopped');
  return 0;
}
