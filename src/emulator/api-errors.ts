/** The apiserver's error Statuses, with its exact messages (k8s.io/apimachinery `errors`). */
import { apiStatus, type Status } from '../k8s/status.js';

export function pathNotFound(): Status {
  return apiStatus(404, 'NotFound', 'the server could not find the requested resource', {});
}

/** `pods "nope" not found`, with the details the apiserver adds. */
export function notFound(resource: string, name: string): Status {
  return apiStatus(404, 'NotFound', `${resource} "${name}" not found`, { name, kind: resource });
}

export function badRequest(message: string): Status {
  return apiStatus(400, 'BadRequest', message);
}

export function unauthorized(): Status {
  return apiStatus(401, 'Unauthorized', 'Unauthorized');
}

export function methodNotAllowed(): Status {
  return apiStatus(
    405,
    'MethodNotAllowed',
    'the server does not allow this method on the requested resource',
  );
}

/** What the UpgradeAwareHandler answers a streaming subresource reached without an upgrade (§1.1). */
export function upgradeRequired(): Status {
  return badRequest('Upgrade request required');
}
