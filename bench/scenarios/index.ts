/**
 * The scenario registry: `npm run bench` runs these in order (`--only <name>` picks one). Add a
 * scenario by writing a module beside this one and listing it here; its baseline comes with it.
 */
import type { Scenario } from '../lib/types.js';
import { spdyData } from './spdy-data.js';

export const scenarios: Scenario[] = [spdyData];
