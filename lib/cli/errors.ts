/**
 * Exit handling: every failure becomes one line `vae: <message>` on stderr and a non-zero exit
 * code, so scripts can rely on `$?` and users are not shown stack traces for their own mistakes.
 */
import { CommanderError } from 'commander';

/** Exit codes of the `vae` command. */
export const EXIT = {
  OK: 0,
  /** Unreadable data, I/O failures, training errors. */
  FAILURE: 1,
  /** Bad command line (commander's parse errors and our own checks of option combinations). */
  USAGE: 2,
  /** Stopped by SIGINT after saving (128 + SIGINT, the shell convention). */
  INTERRUPTED: 130,
} as const;

/** A bad command line found after commander parsed it (e.g. a conflicting option combination). */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Collapses a message to one line: multi-line messages would break `vae: ...` log parsing. */
export function oneLine(message: string): string {
  return message.replace(/\s*\n\s*/g, ' ').trim();
}

/** Prints the error (with stack and cause only when verbose) and returns the exit code to use. */
export function reportError(err: unknown, verbose: boolean): number {
  if (err instanceof CommanderError) {
    // commander already printed its message through outputError; help and --version exit 0.
    return err.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
  }
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`vae: ${oneLine(message)}\n`);
  if (verbose) {
    if (err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    const cause = err instanceof Error ? err.cause : undefined;
    if (cause instanceof Error && cause.stack) process.stderr.write(`caused by: ${cause.stack}\n`);
  }
  return err instanceof UsageError ? EXIT.USAGE : EXIT.FAILURE;
}
