/**
 * The pieces of recording: the passive channel-frame reader (any split, masked or not, fragmented,
 * control frames in between), the bounded file queue (a disk that cannot keep up is a failure, not
 * memory), the asciicast writer (header size, truncation marker, end line) and the JWT claims.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { ChannelFrameReader, unmasked } from '../../src/channel/frame-reader.js';
import { CastRecording } from '../../src/record/cast.js';
import { CastWriter } from '../../src/record/cast-writer.js';
import { FileSink, QueueBudget } from '../../src/record/file-sink.js';
import { jwtClaims } from '../../src/record/identity.js';
import * as jsonText from '../../src/record/json-text.js';
import { waitFor } from '../support/wait.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kubeshim-record-unit-'));
});
after(() => rm(dir, { recursive: true, force: true }));

/** One WebSocket frame, masked when `mask` is given. */
function frame(opcode: number, fin: boolean, payload: Buffer, mask?: Buffer): Buffer {
  const len = payload.length;
  const head: number[] = [(fin ? 0x80 : 0) | opcode];
  const m = mask ? 0x80 : 0;
  if (len < 126) head.push(m | len);
  else if (len < 0x10000) head.push(m | 126, len >> 8, len & 0xff);
  else head.push(m | 127, 0, 0, 0, 0, (len >>> 24) & 0xff, (len >> 16) & 0xff, (len >> 8) & 0xff, len & 0xff);
  const body = Buffer.from(payload);
  if (mask) for (let i = 0; i < body.length; i++) body[i]! ^= mask[i & 3]!;
  return Buffer.concat([Buffer.from(head), mask ?? Buffer.alloc(0), body]);
}

test('the channel frame reader hands on every channel byte as sent, whatever the splits', () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          channel: fc.integer({ min: 0, max: 4 }),
          size: fc.integer({ min: 1, max: 70000 }),
          parts: fc.integer({ min: 1, max: 3 }),
        }),
        { minLength: 1, maxLength: 6 },
      ),
      fc.boolean(),
      fc.array(fc.integer({ min: 1, max: 5000 }), { minLength: 1, maxLength: 20 }),
      (messages, masked, splits) => {
        const want = new Map<number, Buffer[]>();
        const wire: Buffer[] = [];
        for (const m of messages) {
          const payload = randomBytes(m.size);
          (want.get(m.channel) ?? want.set(m.channel, []).get(m.channel)!).push(payload);
          const whole = Buffer.concat([Buffer.from([m.channel]), payload]);
          // fragmented into `parts` frames, a ping between the first two
          const cut = Math.ceil(whole.length / m.parts);
          for (let i = 0, at = 0; at < whole.length; i++, at += cut) {
            const last = at + cut >= whole.length;
            wire.push(
              frame(i === 0 ? 2 : 0, last, whole.subarray(at, at + cut), masked ? randomBytes(4) : undefined),
            );
            if (i === 0) wire.push(frame(9, true, Buffer.from('ping'), masked ? randomBytes(4) : undefined));
          }
        }
        const got = new Map<number, Buffer[]>();
        const reader = new ChannelFrameReader(
          (p) =>
            (got.get(p.channel) ?? got.set(p.channel, []).get(p.channel)!).push(
              unmasked(p.data, p.mask, p.maskOffset).subarray(),
            ),
          (why) => assert.fail(why),
        );
        // copies of masked pieces are fresh; unmasked pieces are slices of the fed chunks: keep them
        const bytes = Buffer.concat(wire);
        let at = 0;
        for (let i = 0; at < bytes.length; i++) {
          const n = splits[i % splits.length]!;
          reader.write(bytes.subarray(at, at + n));
          at += n;
        }
        assert.equal(reader.framePosition, 0);
        for (const [channel, parts] of want)
          assert.ok(Buffer.concat(got.get(channel) ?? []).equals(Buffer.concat(parts)), `channel ${channel}`);
      },
    ),
    { numRuns: 60 },
  );
});

test('the channel frame reader decodes base64 text messages', () => {
  const got: [number, string][] = [];
  const reader = new ChannelFrameReader((p) => got.push([p.channel, p.data.toString()]), assert.fail);
  const text = Buffer.from(`1${Buffer.from('hello').toString('base64')}`);
  reader.write(frame(1, false, text.subarray(0, 3), randomBytes(4)));
  reader.write(frame(1 & 0, true, text.subarray(3), randomBytes(4)));
  assert.deepEqual(got, [[1, 'hello']]);
});

test('a frame past the limit stops the reader with a reason', () => {
  let why = '';
  const reader = new ChannelFrameReader(
    () => assert.fail('no piece'),
    (w) => {
      why = w;
    },
  );
  reader.write(Buffer.from([0x82, 127, 0, 0, 0, 0, 0x10, 0, 0, 0]));
  assert.match(why, /a frame of 268435456 bytes/);
});

test('a disk that cannot keep up fails the file instead of queueing without bound', async () => {
  const budget = new QueueBudget(1024 * 1024);
  const failures: string[] = [];
  const sink = await FileSink.open(join(dir, 'slow.cast'), true, {
    budget,
    maxQueued: 64 * 1024,
    onFailure: (why) => failures.push(why),
  });
  // written at once, faster than any write can complete
  for (let i = 0; i < 100; i++) sink.write('x'.repeat(4096));
  assert.deepEqual(failures, ['the disk cannot keep up (the write queue is full)']);
  assert.equal(sink.ok, false);
  assert.equal(sink.write('more'), false);
  await sink.close();
  assert.equal(budget.used, 0, 'every queued byte given back');
});

for (const blocking of [false, true])
  test(`a full disk (the kernel's ENOSPC, from /dev/full) fails the file and gives its bytes back (${blocking ? 'blocking' : 'async'} writes)`, async () => {
    const budget = new QueueBudget(1024 * 1024);
    const failures: string[] = [];
    // /dev/full takes the open and refuses every write with ENOSPC, as a full filesystem does
    const sink = await FileSink.open('/dev/full', false, {
      budget,
      maxQueued: 64 * 1024,
      blocking,
      onFailure: (why) => failures.push(why),
    });
    assert.equal(sink.write('[0.1, "o", "hello"]\n'), true);
    await waitFor('the write to /dev/full to fail', () => failures.length > 0, 5000);
    assert.deepEqual(failures, ['the disk is full (ENOSPC)']);
    assert.equal(sink.ok, false);
    assert.equal(sink.write('more'), false);
    await sink.close();
    assert.equal(budget.used, 0, 'every queued byte given back');
  });

test('the shared budget bounds all files together', async () => {
  const budget = new QueueBudget(10_000);
  const failed: string[] = [];
  const a = await FileSink.open(join(dir, 'a.cast'), true, {
    budget,
    maxQueued: 8000,
    onFailure: () => failed.push('a'),
  });
  const b = await FileSink.open(join(dir, 'b.cast'), true, {
    budget,
    maxQueued: 8000,
    onFailure: () => failed.push('b'),
  });
  assert.equal(a.write('x'.repeat(7000)), true);
  assert.equal(b.write('x'.repeat(7000)), false);
  assert.deepEqual(failed, ['b']);
  await Promise.all([a.close(), b.close()]);
  assert.equal(budget.used, 0);
});

test('the lines of a long recording reuse a few slabs once written, and every line reads back as recorded', async () => {
  const path = join(dir, 'slabs.cast');
  const slabs = new Set<ArrayBufferLike>();
  const cast = await CastRecording.open(
    path,
    {
      budget: new QueueBudget(64 << 20),
      maxQueued: 64 << 20,
      minWrite: 256 * 1024,
      blocking: true,
      onFailure: assert.fail,
      released: (lines) => slabs.add(lines.buffer),
    },
    { timestamp: 1, title: 't', kubeshim: {} },
    1 << 30,
  );
  const sent: Buffer[] = [];
  // 24 MiB of terminal text with escapes, in chunks of 32 KiB, a few chunks per batch: 24 slabs' worth
  for (let i = 0; i < 768; i++) {
    const chunk = Buffer.alloc(32 * 1024, `line ${i}: "quoted" \\ and a tab\t\r\n`);
    sent.push(chunk);
    cast.add('o', chunk, i);
    if (i % 4 === 3) cast.flush();
  }
  await cast.end('exit code 0', 1000);
  const events = (await readFile(path, 'utf8'))
    .trim()
    .split('\n')
    .slice(1, -1)
    .map((l) => JSON.parse(l) as [number, string, string]);
  assert.equal(events.map((e) => e[2]).join(''), Buffer.concat(sent).toString());
  assert.ok(slabs.size <= 6, `${slabs.size} slabs for 24 MiB of lines`);
});

test('a cast, written on the recording thread: size from the first resize, output decoded across chunk splits, truncation marker, end line', async () => {
  const path = join(dir, 'one.cast');
  const budget = new QueueBudget(1 << 20);
  const writer = new CastWriter({ budget, maxQueued: 1 << 20, maxQueuedPerSession: 1 << 20 });
  const stopped: string[] = [];
  const cast = await writer.open(
    path,
    { timestamp: 1, title: 't', kubeshim: { sessionId: 's' } },
    130,
    (why) => stopped.push(why),
  );
  cast.add('r', Buffer.from('{"Width":100,"Height":30}\n'));
  const euro = Buffer.from('€');
  cast.add('o', euro.subarray(0, 1));
  await new Promise((r) => setTimeout(r, 5)); // the character's halves in two batches
  cast.add('o', euro.subarray(1));
  cast.add('e', Buffer.from('err'));
  cast.add('o', Buffer.from('this one is past the cap'));
  cast.add('o', Buffer.from('and this one is dropped'));
  await cast.end('exit code 2');
  await writer.stop();
  assert.equal(budget.used, 0, 'every taken byte given back');
  // the cap stops the recording as a failure does (with --record-required, the session ends)
  assert.deepEqual(stopped, ['the session passed --record-max-bytes (130 bytes); the rest is not recorded']);
  const lines = (await readFile(path, 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.deepEqual(lines[0], {
    version: 2,
    width: 100,
    height: 30,
    timestamp: 1,
    title: 't',
    kubeshim: { sessionId: 's' },
  });
  assert.deepEqual(
    lines.slice(1).map((l: unknown[]) => [l[1], l[2]]),
    [
      ['r', '100x30'],
      ['o', '€'],
      ['o', 'err'],
      ['o', '\r\n[kubeshim: recording truncated at 130 bytes]\r\n'],
      ['o', '\r\n[kubeshim: exit code 2]\r\n'],
    ],
  );
  await waitFor('times in order', () =>
    lines.slice(1).every((l: number[], i: number, a: number[][]) => i === 0 || l[0]! >= a[i - 1]![0]!),
  );
});

test('a recording thread that lags fails the recording instead of queueing without bound', async () => {
  const budget = new QueueBudget(1 << 20);
  const writer = new CastWriter({ budget, maxQueued: 1 << 20, maxQueuedPerSession: 64 * 1024 });
  const failures: string[] = [];
  const cast = await writer.open(
    join(dir, 'lag.cast'),
    { timestamp: 1, title: 't', kubeshim: {} },
    1 << 30,
    (why) => failures.push(why),
  );
  // taken at once, faster than any batch can be handed over
  for (let i = 0; i < 100; i++) cast.add('o', Buffer.alloc(4096, 'x'));
  assert.deepEqual(failures, ['the disk cannot keep up (the write queue is full)']);
  await cast.end('exit code 0');
  await writer.stop();
  assert.equal(budget.used, 0, 'every taken byte given back');
  assert.deepEqual(failures, ['the disk cannot keep up (the write queue is full)'], 'told once');
});

test('JWT claims: naming claims only, never the rest; not a JWT: none', () => {
  const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const token = `${enc({ alg: 'RS256' })}.${enc({ sub: 'alice', email: 'a@x', groups: ['admins'], exp: 1, jti: 'secret-id', 'kubernetes.io': { namespace: 'ns', serviceaccount: { name: 'sa', uid: 'u' } } })}.sig`;
  assert.deepEqual(jwtClaims(token), { sub: 'alice', email: 'a@x', namespace: 'ns', serviceaccount: 'sa' });
  assert.equal(jwtClaims('opaque-token'), undefined);
  assert.equal(jwtClaims('a.!!!.c'), undefined);
  assert.equal(jwtClaims(`${enc({})}.${enc([1])}.x`), undefined);
});

test('output text as JSON: any UTF-8 split anywhere reads back as sent; bytes that are not text become U+FFFD', () => {
  const { JsonText, maxJsonLength } = jsonText;
  fc.assert(
    fc.property(fc.string({ unit: 'binary' }), fc.array(fc.nat(), { maxLength: 8 }), (s, cuts) => {
      const bytes = Buffer.from(s);
      const text = new JsonText();
      const out = Buffer.alloc(maxJsonLength(bytes.length) + 64);
      let at = 0;
      let from = 0;
      for (const c of [...cuts.map((n) => n % (bytes.length + 1)).sort((a, b) => a - b), bytes.length]) {
        at = text.write(bytes.subarray(from, c), out, at);
        from = c;
      }
      assert.equal(JSON.parse(`"${out.toString('utf8', 0, at)}"`), s);
    }),
    { numRuns: 300 },
  );
  const text = new JsonText();
  const out = Buffer.alloc(64);
  const end = text.write(Buffer.from([0x61, 0xff, 0x62, 0x0d, 0x0a, 0x22]), out, 0);
  assert.equal(JSON.parse(`"${out.toString('utf8', 0, end)}"`), 'a\ufffdb\r\n"');
});
