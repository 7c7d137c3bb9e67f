// Structured JSON logs (pino). Every module takes a Logger so tests and embedders choose where logs go.
import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

export function createLogger(
  options: { level?: string; name?: string; destination?: NodeJS.WritableStream } = {},
): Logger {
  return pino(
    {
      name: options.name ?? 'trellis',
      level: options.level ?? process.env.TRELLIS_LOG_LEVEL ?? 'info',
      base: undefined,
    },
    options.destination ?? process.stdout,
  );
}

/** A logger that drops everything (library default). */
export const silentLogger: Logger = pino({ level: 'silent' });
