// `trellis iptables`: prints the traffic-capture rules of a pod (iptables-restore format), or applies them
// with `--apply` (what the injected trellis-init container runs). The command line only; the rules
// (iptables.ts) and iptables-restore (iptables-apply.ts) are imported when it runs.
import { InvalidArgumentError, Option, type Command, type CommanderError } from 'commander';
import {
  CaptureValueError,
  defaultCaptureConfig,
  parseCidrList,
  parsePortList,
  type CaptureConfig,
} from './iptables.js';

interface IptablesCliOptions {
  apply: boolean;
  test: boolean;
  backend: 'nft' | 'legacy' | 'auto';
  outboundPort: number;
  inboundPort: number;
  proxyUid: number;
  proxyGid: number;
  includeInboundPorts: '*' | number[];
  excludeInboundPorts: number[];
  includeOutboundIpRanges: '*' | string[];
  excludeOutboundIpRanges: string[];
  includeOutboundPorts: number[];
  excludeOutboundPorts: number[];
}

function argument<T>(parse: (text: string) => T): (text: string) => T {
  return (text) => {
    try {
      return parse(text);
    } catch (err) {
      if (err instanceof CaptureValueError) throw new InvalidArgumentError(err.message);
      throw err;
    }
  };
}

const port = argument((text) => {
  const [value] = parsePortList(text);
  if (value === undefined || text.includes(',')) throw new CaptureValueError(`"${text}" is not one port`);
  return value;
});
const id = (text: string): number => {
  if (!/^[0-9]{1,10}$/.test(text)) throw new InvalidArgumentError(`"${text}" is not a numeric id`);
  return Number(text);
};

/** Adds `trellis iptables` to the program. */
export function registerIptablesCommand(program: Command): void {
  const d = defaultCaptureConfig;
  program
    .command('iptables')
    .description(
      'print the traffic-capture rules of an injected pod (iptables-restore input, nat table), or apply them with --apply',
    )
    .option('--apply', 'apply the rules with iptables-restore --noflush instead of printing them', false)
    .option('--test', 'with --apply: only check them (iptables-restore --test)', false)
    .addOption(
      new Option('--backend <backend>', 'iptables backend for --apply')
        .choices(['nft', 'legacy', 'auto'])
        .default('auto'),
    )
    .addOption(
      new Option('--outbound-port <port>', 'Envoy outbound capture port').default(d.outboundPort).argParser(port),
    )
    .addOption(new Option('--inbound-port <port>', 'Envoy inbound capture port').default(d.inboundPort).argParser(port))
    .addOption(
      new Option('--proxy-uid <uid>', 'user whose traffic is never captured').default(d.proxyUid).argParser(id),
    )
    .addOption(
      new Option('--proxy-gid <gid>', 'group whose traffic is never captured').default(d.proxyGid).argParser(id),
    )
    .addOption(
      new Option('--include-inbound-ports <ports>', 'inbound ports captured: * or a comma-separated list')
        .default(d.includeInboundPorts)
        .argParser(argument((t) => parsePortList(t, true))),
    )
    .addOption(
      new Option('--exclude-inbound-ports <ports>', 'inbound ports never captured (15020, 15021, 15090 always are not)')
        .default(d.excludeInboundPorts)
        .argParser(argument((t) => parsePortList(t))),
    )
    .addOption(
      new Option('--include-outbound-ip-ranges <cidrs>', 'outbound destinations captured: * or IPv4 CIDRs')
        .default(d.includeOutboundIpRanges)
        .argParser(argument((t) => parseCidrList(t, true))),
    )
    .addOption(
      new Option('--exclude-outbound-ip-ranges <cidrs>', 'outbound destinations never captured (IPv4 CIDRs)')
        .default(d.excludeOutboundIpRanges)
        .argParser(argument((t) => parseCidrList(t))),
    )
    .addOption(
      new Option('--include-outbound-ports <ports>', 'outbound ports captured whatever the destination')
        .default(d.includeOutboundPorts)
        .argParser(argument((t) => parsePortList(t))),
    )
    .addOption(
      new Option('--exclude-outbound-ports <ports>', 'outbound ports never captured')
        .default(d.excludeOutboundPorts)
        .argParser(argument((t) => parsePortList(t))),
    )
    .exitOverride((err: CommanderError) => {
      process.exit(err.exitCode === 0 ? 0 : 2);
    })
    .action(async (opts: IptablesCliOptions) => {
      const { captureRules } = await import('./iptables.js');
      const config: CaptureConfig = {
        outboundPort: opts.outboundPort,
        inboundPort: opts.inboundPort,
        proxyUid: opts.proxyUid,
        proxyGid: opts.proxyGid,
        includeInboundPorts: opts.includeInboundPorts,
        excludeInboundPorts: opts.excludeInboundPorts,
        includeOutboundIpRanges: opts.includeOutboundIpRanges,
        excludeOutboundIpRanges: opts.excludeOutboundIpRanges,
        includeOutboundPorts: opts.includeOutboundPorts,
        excludeOutboundPorts: opts.excludeOutboundPorts,
      };
      const rules = captureRules(config);
      if (!opts.apply) {
        process.stdout.write(rules);
        return;
      }
      const { detectBackend, restoreBinary, restoreRules } = await import('./iptables-apply.js');
      try {
        const backend = opts.backend === 'auto' ? detectBackend() : opts.backend;
        await restoreRules(backend, rules, { test: opts.test });
        process.stdout.write(rules);
        process.stderr.write(
          `trellis iptables: ${opts.test ? 'checked' : 'applied'} with ${restoreBinary(backend)} (backend ${backend})\n`,
        );
      } catch (err) {
        process.stderr.write(`trellis iptables: ${(err as Error).message}\n`);
        process.exitCode = 1;
      }
    });
}
