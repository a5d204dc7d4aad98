import { styleText } from 'node:util';

/**
 * Colour for people at a terminal only: never in pipes, files or CI logs, and never when NO_COLOR is set
 * (https://no-color.org). Example: `mark(true)` → a green ✓ on a TTY, a plain ✓ elsewhere.
 */
export function useColour(stream: NodeJS.WriteStream = process.stdout, env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(stream.isTTY) && !env.NO_COLOR && env.TERM !== 'dumb';
}

export function paint(format: Parameters<typeof styleText>[0], text: string, colour = useColour()): string {
  // We decide about the stream ourselves; Node's own check would look at stdout even for stderr output.
  return colour ? styleText(format, text, { validateStream: false }) : text;
}

export function mark(ok: boolean, colour = useColour()): string {
  return ok ? paint('green', '✓', colour) : paint('red', '✗', colour);
}
