/**
 * Argument parsing on node:util parseArgs, with --help handled the same way
 * by every command.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { VeloError } from '../src/errors.js';

export type Options = NonNullable<ParseArgsConfig['options']>;

export interface Parsed {
  values: Record<string, string | boolean | string[] | boolean[] | undefined>;
  positionals: string[];
  help: boolean;
}

export function parse(argv: string[], options: Options, usage: string): Parsed {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
    return { values: values as Parsed['values'], positionals, help: values.help === true };
  } catch (e) {
    throw new VeloError('USAGE', `${(e as Error).message}\n\n${usage}`);
  }
}

export function str(p: Parsed, name: string): string | undefined {
  const v = p.values[name];
  return typeof v === 'string' ? v : undefined;
}

export function flag(p: Parsed, name: string): boolean {
  return p.values[name] === true;
}

export function need(p: Parsed, count: number, usage: string): string[] {
  if (p.positionals.length !== count) {
    throw new VeloError('USAGE', `expected ${count} argument(s), got ${p.positionals.length}\n\n${usage}`);
  }
  return p.positionals;
}
