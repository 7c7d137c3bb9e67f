// The `Programmed` condition of a routing or policy object: whether the
// proxies whose config is translated from it (translate/sources.ts) took that config, from what the xDS
// side saw them answer (xds/programmed.ts). Written beside `Accepted` by the status writer
// (sources/status-writer.ts), at most once per tracker interval (3 s).
//
// | proxies holding it | their answers                       | status  | reason      | message                                                          |
// | ------------------ | ----------------------------------- | ------- | ----------- | ---------------------------------------------------------------- |
// | N > 0              | all ACKed their current config      | True    | Programmed  | `programmed on N/N proxies`                                      |
// | N > 0              | one NACKed its current config       | False   | Rejected    | `rejected by proxy P (CDS): <client's message>; programmed on k/N proxies` |
// | N > 0              | some still awaiting an answer       | Unknown | Pending     | `programmed on k/N proxies; m awaiting an answer`                |
// | 0                  | (not accepted: not in the model)    | False   | NotAccepted | `not in use: see the Accepted condition`                         |
// | 0                  | (accepted)                          | Unknown | NoProxies   | `no connected proxy receives it`                                 |
//
// VirtualServices, DestinationRules, PeerAuthentications, Sidecars, ServiceEntries and AuthorizationPolicies
// have it (translate/sources.ts finds them in a proxy's config). An AuthorizationPolicy is held by the
// proxies of the workloads it applies to that have an inbound side (every Envoy sidecar, and a proxyless
// application with server listeners): a policy for a namespace of proxyless clients only is NoProxies.
//
// A proxy counts with its whole current config: a NACK of any type makes it "rejected" for every object
// its config holds (the client refused the config the object is part of). The first rejection is the
// earliest NACK (then the smallest proxy id).
import type { Condition } from '../crds/types.js';
import type { ResourceStatus } from './model/snapshot.js';
import type { SourceProgress } from './xds/programmed.js';

/** The schema bounds `message` (crds/schema.ts). */
const MAX_MESSAGE = 32_768;

function cut(message: string): string {
  return message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE - 1)}…` : message;
}

/** The Programmed condition (without lastTransitionTime) of `status`, given the progress of its key. */
export function programmedCondition(status: ResourceStatus, progress: SourceProgress | undefined): Condition {
  const generation = status.generation !== undefined ? { observedGeneration: status.generation } : {};
  const condition = (state: Condition['status'], reason: string, message: string): Condition => ({
    type: 'Programmed',
    status: state,
    reason,
    message: cut(message),
    ...generation,
  });
  if (!progress || progress.proxies === 0) {
    return status.accepted
      ? condition('Unknown', 'NoProxies', 'no connected proxy receives it')
      : condition('False', 'NotAccepted', 'not in use: see the Accepted condition');
  }
  const { proxies, programmed, pending, firstRejection } = progress;
  const count = `programmed on ${programmed}/${proxies} proxies`;
  if (firstRejection) {
    const { proxy, type, message } = firstRejection;
    return condition('False', 'Rejected', `rejected by proxy ${proxy} (${type}): ${message}; ${count}`);
  }
  if (pending > 0) return condition('Unknown', 'Pending', `${count}; ${pending} awaiting an answer`);
  return condition('True', 'Programmed', count);
}
