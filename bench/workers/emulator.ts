/**
 * The faithful upstream: the emulated cluster (src/emulator), `modern` generation (SPDY and
 * WebSocket v5 exec), running each exec as a real process (`head -c N /dev/zero`, `wc -c`, `cat`).
 */
import { startEmulator } from '../../src/emulator/index.js';
import { serveWorker } from '../lib/worker.js';

const emulator = await startEmulator({ generation: 'modern' });
serveWorker({ url: emulator.url }, {}, () => emulator.close());
