/** The chat webhook receiver (Teams Workflows behaviour) and the Adaptive Card message check. */
import { readFileSync } from 'node:fs';
import { EmuClock } from '../../emulator/core/clock';
import { FaultInjector } from '../../emulator/core/faults';
import { RequestRecord } from '../../emulator/core/record';
import { createService, type EmuContext, type RunningService } from '../../emulator/core/server';
import {
  adaptiveCardMessageProblems,
  createWebhookService,
  isAdaptiveCardMessage,
  type WebhookControl,
} from '../../emulator/eventgrid';

const card = {
  type: 'message',
  attachments: [
    {
      contentType: 'application/vnd.microsoft.card.adaptive',
      content: {
        $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
        type: 'AdaptiveCard',
        version: '1.4',
        body: [{ type: 'TextBlock', text: 'Role assignment drift on ws-1', weight: 'Bolder' }],
      },
    },
  ],
};

let ctx: EmuContext;
let control: WebhookControl;
let running: RunningService;

function post(name: string, body: string, contentType = 'application/json'): Promise<Response> {
  return fetch(`${running.url}/webhooks/${name}`, { method: 'POST', headers: { 'Content-Type': contentType }, body });
}

beforeAll(async () => {
  ctx = { clock: new EmuClock(), record: new RequestRecord(), faults: new FaultInjector() };
  const svc = createWebhookService({ ctx });
  control = svc.control;
  const cert = process.env.WARDEN_EMULATOR_TLS_CERT;
  const key = process.env.WARDEN_EMULATOR_TLS_KEY;
  if (!cert || !key) throw new Error('Run through `npm test`.');
  running = await createService({ service: 'webhook', router: svc.router, ctx, tls: { cert: readFileSync(cert), key: readFileSync(key) } });
});

afterAll(async () => {
  await running.close();
});

beforeEach(() => control.clear());

it('records the post and answers 202 with an empty body, like Teams Workflows', async () => {
  const res = await post('alerts', JSON.stringify(card));
  expect(res.status).toBe(202);
  expect(await res.text()).toBe('');

  const [got] = control.received('alerts');
  expect(got?.body).toEqual(card);
  expect(got?.headers['content-type']).toBe('application/json');
  expect(isAdaptiveCardMessage(got?.body)).toBe(true);
  expect(control.received('other')).toEqual([]);
  expect(ctx.record.find({ operation: 'webhook.post' }).map((r) => r.status)).toEqual([202]);
});

it('accepts any body at first (Teams fails later), so the card check is the sender test', async () => {
  const res = await post('alerts', 'plain text', 'text/plain');
  expect(res.status).toBe(202);
  const [got] = control.received();
  expect(got?.body).toBe('plain text');
  expect(isAdaptiveCardMessage(got?.body)).toBe(false);
});

it('fails the next posts on request, with Retry-After when asked, then accepts again', async () => {
  control.failNext('alerts', 2, 429, { retryAfterSeconds: 3 });
  const first = await post('alerts', JSON.stringify(card));
  const second = await post('alerts', JSON.stringify(card));
  const third = await post('alerts', JSON.stringify(card));
  expect([first.status, second.status, third.status]).toEqual([429, 429, 202]);
  expect(first.headers.get('retry-after')).toBe('3');
  expect(control.received('alerts')).toHaveLength(1);
  expect((await post('elsewhere', '{}')).status).toBe(202);
});

describe('isAdaptiveCardMessage', () => {
  it.each([
    ['not an object', 'text', /not a JSON object/],
    ['wrong type', { ...card, type: 'card' }, /type must be "message"/],
    ['no attachments', { type: 'message', attachments: [] }, /non-empty array/],
    ['a legacy MessageCard', { '@type': 'MessageCard', text: 'x' }, /type must be "message"/],
    [
      'wrong content type',
      { type: 'message', attachments: [{ contentType: 'application/json', content: card.attachments[0]?.content }] },
      /contentType/,
    ],
    [
      'no version',
      { type: 'message', attachments: [{ contentType: 'application/vnd.microsoft.card.adaptive', content: { type: 'AdaptiveCard', body: [] } }] },
      /version/,
    ],
    [
      'body element without type',
      {
        type: 'message',
        attachments: [
          { contentType: 'application/vnd.microsoft.card.adaptive', content: { type: 'AdaptiveCard', version: '1.4', body: [{ text: 'x' }] } },
        ],
      },
      /body\[0\]/,
    ],
  ])('rejects %s', (_label, body, problem) => {
    expect(isAdaptiveCardMessage(body)).toBe(false);
    expect(adaptiveCardMessageProblems(body).join('; ')).toMatch(problem);
  });

  it('accepts the Teams message shape', () => {
    expect(adaptiveCardMessageProblems(card)).toEqual([]);
  });
});
