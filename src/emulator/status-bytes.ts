/**
 * What goes on the error stream/channel at the end of exec/attach (docs/protocols.md §3.4): the JSON
 * Status for v4/v5, for older versions the Status message as plain text on failure and nothing on
 * success.
 */
import { encodeStatus, type Status } from '../k8s/status.js';

const EMPTY = Buffer.alloc(0);

export function statusBytes(status: Status, jsonStatus: boolean): Buffer {
  if (jsonStatus) return encodeStatus(status);
  return status.status === 'Success' ? EMPTY : Buffer.from(status.message ?? 'unknown error');
}
