// Host name resolution (`qualifyHost`, `serviceFqdn`, `hostAliases`): the rules live in crds/rules/hosts.ts,
// which the validator shares; re-exported here for the model's readers.
export { DEFAULT_DOMAIN, hostAliases, qualifyHost, serviceFqdn } from '../../crds/rules/hosts.js';
