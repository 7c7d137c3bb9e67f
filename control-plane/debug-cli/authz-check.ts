// `trellis authz check`: asks the control plane's `/debug/authz` (authz/checker.ts) and prints the verdict
// for every workload behind the Service, the policy that decided and why, and the policies each workload's
// proxy holds. The exit code says the verdict: 0 allowed everywhere, 3 denied somewhere.
import type { AuthzAnswer } from '../authz/check.js';
import { getJson } from './http-client.js';
import { renderData, renderTable, type OutputFormat } from './render.js';

export const DENIED_EXIT_CODE = 3;

export interface AuthzCheckOptions {
  readonly controlPlane: string;
  readonly output: OutputFormat;
  readonly from?: string;
  readonly to: string;
  readonly method?: string;
  readonly httpMethod?: string;
  readonly namespace?: string;
  readonly sourceIp?: string;
  readonly header: readonly string[];
  readonly stdout: NodeJS.WritableStream;
}

export async function runAuthzCheck(options: AuthzCheckOptions): Promise<number> {
  const q = new URLSearchParams({ to: options.to });
  if (options.from !== undefined) q.set('from', options.from);
  if (options.method !== undefined) q.set('path', options.method);
  if (options.httpMethod !== undefined) q.set('method', options.httpMethod);
  if (options.namespace !== undefined) q.set('namespace', options.namespace);
  if (options.sourceIp !== undefined) q.set('sourceIp', options.sourceIp);
  for (const h of options.header) q.append('header', h);
  const answer = (await getJson(options.controlPlane, `/debug/authz?${q.toString()}`)) as AuthzAnswer;
  if (options.output !== 'table') options.stdout.write(renderData(answer, options.output));
  else options.stdout.write(renderAnswer(answer));
  return answer.verdict === 'ALLOW' ? 0 : DENIED_EXIT_CODE;
}

export function renderAnswer(a: AuthzAnswer): string {
  const head = `${a.verdict}: ${a.from} → ${a.service}:${a.port}${a.path !== undefined ? ` ${a.path}` : ''}\n\n`;
  const rows = a.workloads.map((w) => [
    w.workload,
    `${w.proxy.type} (${w.proxy.config})`,
    w.transport.toUpperCase(),
    w.verdict,
    w.decidedBy?.authorizationPolicy
      ? `${w.decidedBy.authorizationPolicy.namespace}/${w.decidedBy.authorizationPolicy.name} rule ${w.decidedBy.authorizationPolicy.rule} (${w.decidedBy.action})`
      : '-',
    w.reason,
  ]);
  const notes = a.workloads.flatMap((w) => [
    ...(w.audited.length > 0 ? [`${w.workload}: audited by ${w.audited.join(', ')}`] : []),
    ...(w.assumed.length > 0 ? [`${w.workload}: not given, taken as not matching: ${w.assumed.join(', ')}`] : []),
  ]);
  return (
    head +
    renderTable(['WORKLOAD', 'PROXY', 'TRANSPORT', 'VERDICT', 'DECIDED BY', 'REASON'], rows) +
    (notes.length > 0 ? `\n${notes.join('\n')}\n` : '')
  );
}
