// `trellis authz check`: the command line only; the client and the table load when it runs.
import { Option, type Command } from 'commander';
import { addDebugOptions, runDebugCommand, type DebugCliOptions } from './command-options.js';

export interface AuthzCheckCliOptions extends DebugCliOptions {
  from?: string;
  to: string;
  method?: string;
  httpMethod?: string;
  namespace?: string;
  sourceIp?: string;
  header: string[];
}

/** Adds `trellis authz check` to the program. */
export function registerAuthzCommand(program: Command): void {
  const authz = program.command('authz').description('authorization (AuthorizationPolicy) as the proxies enforce it');
  addDebugOptions(
    authz
      .command('check')
      .description(
        "whether a caller's request to a Service is allowed, and the policy that decides, for every workload behind it: evaluated on the RBAC filters each proxy was sent (or, with none connected, the ones generated for it); exit code 0 allowed, 3 denied (or mixed)",
      )
      .addOption(
        new Option('--from <spiffe-id>', "the caller's identity, spiffe://<td>/ns/<ns>/sa/<sa> (absent: plaintext)"),
      )
      .requiredOption('--to <service>', 'the Service: name.namespace, an FQDN, optionally :port')
      .option('--method <path>', 'the request path; a gRPC method as /package.Service/Method')
      .option('--http-method <verb>', 'the HTTP method (default POST with --method, as every gRPC call)')
      .option('-n, --namespace <ns>', 'the namespace of a short --to name', 'default')
      .option('--source-ip <ip>', "the caller's address")
      .option(
        '-H, --header <name:value>',
        'a request header (repeatable)',
        (v: string, all: string[]) => [...all, v],
        [],
      ),
  ).action(async (opts: AuthzCheckCliOptions) => {
    await runDebugCommand('authz check', async () => {
      const { runAuthzCheck } = await import('./authz-check.js');
      process.exitCode = await runAuthzCheck({ ...opts, stdout: process.stdout });
    });
  });
}
