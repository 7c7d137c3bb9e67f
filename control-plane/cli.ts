// `trellis`: the command line. Building the program loads commander and the command modules' options only;
// each command's action imports its implementation when it runs (`await import()`), so `trellis --help`,
// `trellis validate` and the others start without the Envoy protos, the Kubernetes client or the CA.
// A command is one import and one registerXCommand(program) line here, its module lazy inside the action.
import { Command } from 'commander';
import { registerValidateCommand } from '../crds/validate-cli.js';
import { registerInstallCommand } from '../deploy/install-cli.js';
import { registerInjectCommand } from '../injector/inject-command.js';
import { registerIptablesCommand } from '../injector/iptables-command.js';
import { registerAgentCommand } from '../sidecar/cli.js';
import { registerControlPlaneCommand } from './control-plane-command.js';
import { registerAnalyzeCommand } from './debug-cli/analyze-command.js';
import { registerDescribeCommand } from './debug-cli/describe-command.js';
import { registerDiffCommand } from './debug-cli/diff-command.js';
import { registerProxyConfigCommand } from './debug-cli/proxy-config-command.js';
import { registerProxyStatusCommand } from './debug-cli/proxy-status-command.js';
import { registerAuthzCommand } from './debug-cli/authz-check-command.js';

export { parseDuration } from './cli-options.js';

export function buildProgram(): Command {
  const program = new Command('trellis')
    .description('Trellis: a lightweight service mesh for Kubernetes')
    .showHelpAfterError();

  registerControlPlaneCommand(program);
  registerValidateCommand(program);
  registerAgentCommand(program);
  registerInjectCommand(program);
  registerIptablesCommand(program);
  registerInstallCommand(program);
  registerProxyStatusCommand(program);
  registerProxyConfigCommand(program);
  registerAuthzCommand(program);
  registerDescribeCommand(program);
  registerDiffCommand(program);
  registerAnalyzeCommand(program);

  return program;
}
