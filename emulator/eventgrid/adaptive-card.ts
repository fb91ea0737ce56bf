/**
 * The message shape a Teams Workflows webhook needs to post an Adaptive Card. The webhook itself
 * accepts any body with 202 and fails later (Addenda), so senders must check the shape themselves.
 */
const ADAPTIVE_CARD_CONTENT_TYPE = 'application/vnd.microsoft.card.adaptive';

/** What is wrong with a body as a Teams Adaptive Card message ([] when it is fine). */
export function adaptiveCardMessageProblems(body: unknown): string[] {
  const problems: string[] = [];
  if (!isRecord(body)) return ['the message is not a JSON object'];
  if (body.type !== 'message') problems.push(`type must be "message", got ${JSON.stringify(body.type)}`);
  const attachments = body.attachments;
  if (!Array.isArray(attachments) || attachments.length === 0) {
    problems.push('attachments must be a non-empty array');
    return problems;
  }
  attachments.forEach((a: unknown, i) => {
    const at = `attachments[${i}]`;
    if (!isRecord(a)) {
      problems.push(`${at} is not an object`);
      return;
    }
    if (a.contentType !== ADAPTIVE_CARD_CONTENT_TYPE) problems.push(`${at}.contentType must be "${ADAPTIVE_CARD_CONTENT_TYPE}"`);
    const card = a.content;
    if (!isRecord(card)) {
      problems.push(`${at}.content must be an Adaptive Card object`);
      return;
    }
    if (card.type !== 'AdaptiveCard') problems.push(`${at}.content.type must be "AdaptiveCard"`);
    if (typeof card.version !== 'string' || !/^1\.\d+$/.test(card.version)) {
      problems.push(`${at}.content.version must be a string like "1.4"`);
    }
    if (!Array.isArray(card.body)) {
      problems.push(`${at}.content.body must be an array`);
    } else {
      card.body.forEach((el: unknown, j) => {
        if (!isRecord(el) || typeof el.type !== 'string' || el.type === '') {
          problems.push(`${at}.content.body[${j}] must be an element with a "type"`);
        }
      });
    }
  });
  return problems;
}

/** True for `{ type: 'message', attachments: [{ contentType: 'application/vnd.microsoft.card.adaptive', content: { type: 'AdaptiveCard', version, body: [...] } }] }`. */
export function isAdaptiveCardMessage(body: unknown): boolean {
  return adaptiveCardMessageProblems(body).length === 0;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
