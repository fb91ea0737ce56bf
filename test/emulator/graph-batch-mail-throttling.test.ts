/**
 * Graph `$batch`, `sendMail` and throttling through the real Graph client: BatchRequestContent with
 * absolute URLs, dependsOn and 424, per-item 429s, the 20-request limit, the outbox, and a 429 with
 * Retry-After that the client's RetryHandler retries.
 */
import { BatchRequestContent, BatchResponseContent, Client } from '@microsoft/microsoft-graph-client';
import { startStandaloneGraph, type StandaloneGraph } from '../../emulator/graph/standalone';
import { graphError, tls } from './graph-helpers';

const ADA = '4a4a4a4a-0000-4000-8000-000000000001';
const NOMAIL = '4a4a4a4a-0000-4000-8000-000000000002';
const GROUP = '4c4c4c4c-0000-4000-8000-000000000001';

const section = {
  users: [
    { id: ADA, displayName: 'Ada', userPrincipalName: 'ada@contoso.example', mail: 'ada@contoso.example' },
    { id: NOMAIL, displayName: 'No mailbox', userPrincipalName: 'nomail@contoso.example' },
  ],
  groups: [{ id: GROUP, displayName: 'team', members: [ADA] }],
};

let g: StandaloneGraph;
let client: Client;

interface BatchItemResponse {
  id: string;
  status: number;
  headers?: Record<string, string>;
  body?: Record<string, unknown>;
}

beforeAll(async () => {
  g = await startStandaloneGraph({ tls: tls(), section });
  client = Client.initWithMiddleware({ authProvider: { getAccessToken: async () => 'token' }, baseUrl: g.url, customHosts: new Set(['127.0.0.1']) });
});

afterAll(async () => {
  await g.close();
});

afterEach(() => {
  g.ctx.faults.clear();
});

describe('$batch', () => {
  it('runs BatchRequestContent requests (absolute URLs become /v1.0/…) and answers each', async () => {
    const content = new BatchRequestContent([
      { id: '1', request: new Request(`${g.url}/v1.0/users/${ADA}?$select=id,displayName`, { method: 'GET' }) },
      { id: '2', request: new Request(`${g.url}/v1.0/groups/${GROUP}/transitiveMembers?$select=id`, { method: 'GET' }) },
      { id: '3', request: new Request(`${g.url}/v1.0/users/nobody@contoso.example`, { method: 'GET' }) },
    ]);
    const mark = g.ctx.record.mark();
    const raw = await client.api('/$batch').post(await content.getContent());
    const res = new BatchResponseContent(raw);
    const one = res.getResponseById('1');
    expect(one.status).toBe(200);
    expect(await one.json()).toMatchObject({ id: ADA, displayName: 'Ada' });
    const two = (await res.getResponseById('2').json()) as { value: unknown[] };
    expect(two.value).toEqual([{ '@odata.type': '#microsoft.graph.user', id: ADA }]);
    expect(res.getResponseById('3').status).toBe(404);
    // One HTTP request on the wire.
    expect(g.ctx.record.since(mark)).toHaveLength(1);
    expect(g.ctx.record.since(mark)[0]?.operation).toBe('graph.batch');
  });

  it('accepts relative URLs without /v1.0, runs dependsOn in order and fails dependents of a failure with 424', async () => {
    const raw: { responses: BatchItemResponse[] } = await client.api('/$batch').post({
      requests: [
        { id: 'a', method: 'GET', url: `/users/${ADA}` },
        { id: 'b', method: 'GET', url: '/users/missing@contoso.example' },
        { id: 'c', method: 'GET', url: `/groups/${GROUP}`, dependsOn: ['a'] },
        { id: 'd', method: 'GET', url: `/groups/${GROUP}`, dependsOn: ['b'] },
        {
          id: 'e',
          method: 'POST',
          url: `/users/${ADA}/sendMail`,
          headers: { 'Content-Type': 'application/json' },
          body: { message: { subject: 'from batch', toRecipients: [{ emailAddress: { address: 'ops@contoso.example' } }] } },
        },
      ],
    });
    const byId = new Map(raw.responses.map((r) => [r.id, r]));
    expect(byId.get('a')?.status).toBe(200);
    expect(byId.get('b')?.status).toBe(404);
    expect(byId.get('c')?.status).toBe(200);
    expect(byId.get('d')?.status).toBe(424);
    expect(byId.get('e')?.status).toBe(202);
    expect(g.control.outbox().some((m) => m.message.subject === 'from batch')).toBe(true);
  });

  it('throttles items individually with Retry-After inside a 200 batch', async () => {
    g.ctx.faults.add({ service: 'graph', operation: 'graph.users.get', status: 429, retryAfterSeconds: 7, times: 1 });
    const raw: { responses: BatchItemResponse[] } = await client.api('/$batch').post({
      requests: [
        { id: '1', method: 'GET', url: `/users/${ADA}` },
        { id: '2', method: 'GET', url: `/groups/${GROUP}` },
      ],
    });
    const byId = new Map(raw.responses.map((r) => [r.id, r]));
    expect(byId.get('1')?.status).toBe(429);
    expect(byId.get('1')?.headers?.['Retry-After']).toBe('7');
    expect(byId.get('2')?.status).toBe(200);
  });

  it('refuses more than 20 requests and duplicate ids with 400', async () => {
    const many = Array.from({ length: 21 }, (_, i) => ({ id: String(i), method: 'GET', url: `/users/${ADA}` }));
    expect((await graphError(client.api('/$batch').post({ requests: many }))).statusCode).toBe(400);
    const dup = [
      { id: '1', method: 'GET', url: `/users/${ADA}` },
      { id: '1', method: 'GET', url: `/groups/${GROUP}` },
    ];
    expect((await graphError(client.api('/$batch').post({ requests: dup }))).statusCode).toBe(400);
  });
});

describe('sendMail', () => {
  it('accepts a message with 202 and puts it in the outbox', async () => {
    const message = {
      subject: 'Warden alert',
      body: { contentType: 'Text', content: 'Compute without managed identity.' },
      toRecipients: [{ emailAddress: { address: 'ops@contoso.example', name: 'Ops' } }],
    };
    await client.api('/users/ada@contoso.example/sendMail').post({ message, saveToSentItems: false });
    const sent = g.control.outbox().find((m) => m.message.subject === 'Warden alert');
    expect(sent).toMatchObject({ from: 'ada@contoso.example', saveToSentItems: false, message });
  });

  it('refuses malformed messages with 400 and a sender without mailbox with 404', async () => {
    const noRecipients = await graphError(client.api(`/users/${ADA}/sendMail`).post({ message: { subject: 'x' } }));
    expect(noRecipients.statusCode).toBe(400);
    const badAddress = await graphError(
      client.api(`/users/${ADA}/sendMail`).post({ message: { toRecipients: [{ emailAddress: { address: 'not-an-address' } }] } }),
    );
    expect(badAddress.statusCode).toBe(400);
    const badType = await graphError(
      client.api(`/users/${ADA}/sendMail`).post({
        message: { body: { contentType: 'Markdown', content: 'x' }, toRecipients: [{ emailAddress: { address: 'a@contoso.example' } }] },
      }),
    );
    expect(badType.statusCode).toBe(400);
    const noMailbox = await graphError(
      client.api(`/users/${NOMAIL}/sendMail`).post({ message: { toRecipients: [{ emailAddress: { address: 'a@contoso.example' } }] } }),
    );
    expect(noMailbox.statusCode).toBe(404);
    expect(noMailbox.code).toBe('MailboxNotEnabledForRESTAPI');
  });
});

describe('throttling', () => {
  it('sends 429 with Retry-After, which the Graph client retries', async () => {
    const rule = g.ctx.faults.add({ service: 'graph', operation: 'graph.users.get', status: 429, retryAfterSeconds: 0, times: 2 });
    const mark = g.ctx.record.mark();
    const user = await client.api(`/users/${ADA}`).get();
    expect(user.id).toBe(ADA);
    expect(g.ctx.faults.fired(rule)).toBe(2);
    const calls = g.ctx.record.since(mark, { operation: 'graph.users.get', includeInjected: true });
    expect(calls.map((c) => c.status)).toEqual([429, 429, 200]);
  });

  it('honours a Retry-After of one second', async () => {
    g.ctx.faults.add({ service: 'graph', operation: 'graph.groups.get', status: 429, retryAfterSeconds: 1, times: 1 });
    const raw = await fetch(`${g.url}/v1.0/groups/${GROUP}`, { headers: { Authorization: 'Bearer token' } });
    expect(raw.status).toBe(429);
    expect(raw.headers.get('retry-after')).toBe('1');
    g.ctx.faults.add({ service: 'graph', operation: 'graph.groups.get', status: 429, retryAfterSeconds: 1, times: 1 });
    const started = Date.now();
    expect((await client.api(`/groups/${GROUP}`).get()).id).toBe(GROUP);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  });
});
