/** Response bodies of the Kubernetes API that tests expect to the letter. */

/** The apiserver's answer to a request whose credentials it does not accept (HTTP 401). */
export const UNAUTHORIZED_BODY = {
  kind: 'Status',
  apiVersion: 'v1',
  metadata: {},
  status: 'Failure',
  message: 'Unauthorized',
  reason: 'Unauthorized',
  code: 401,
};
