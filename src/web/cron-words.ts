import cronstrue from 'cronstrue';

/** "*\/5 * * * *" → "Every 5 minutes"; an expression cronstrue cannot read is shown as is. */
export function cronInWords(expression: string): string {
  try {
    return cronstrue.toString(expression, { use24HourTimeFormat: true, verbose: false });
  } catch {
    return expression;
  }
}
