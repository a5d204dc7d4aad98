import { CHANGES_MAIL, lower, type ActionDefinition } from '../definition.ts';

/** `categorize: [Urgent]`: adds categories (never removes); only those the message lacks are planned. */
export const categorize: ActionDefinition<string[], string[]> = {
  check: (raw, at, t) => {
    const list = t.textList(raw, at, 'categorize');
    return list && [...new Set(list.map((s) => s.trim()))];
  },
  plan: (value, state) => {
    const add: string[] = [];
    for (const c of value) {
      if (state.categories.has(lower(c))) continue;
      state.categories.add(lower(c));
      add.push(c);
    }
    return add.length > 0 ? add : undefined;
  },
  execution: {
    kind: 'patch',
    // Graph's PATCH replaces the whole list: send what the message had plus every category added.
    patch: (value, body, had) => void (body.categories = [...new Set([...((body.categories as string[] | undefined) ?? had.categories), ...value])]),
  },
  onceOnly: false,
  permission: CHANGES_MAIL,
  bareValue: '…',
  readme: { example: 'categorize: [Urgent, Finance]', text: 'adds categories to those the message has' },
};
