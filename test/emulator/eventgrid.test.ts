/**
 * The emulated Event Grid topic against the real `EventGridPublisherClient` over HTTPS: bearer, key
 * and SAS authentication, both schemas, and 400s that name the missing field.
 */
import { readFileSync } from 'node:fs';
import {
  AzureKeyCredential,
  AzureSASCredential,
  EventGridPublisherClient,
  generateSharedAccessSignature,
} from '@azure/eventgrid';
import type { GetTokenOptions, TokenCredential } from '@azure/identity';
import { EmuClock } from '../../emulator/core/clock';
import { FaultInjector } from '../../emulator/core/faults';
import { RequestRecord } from '../../emulator/core/record';
import { createService, type EmuContext, type RunningService } from '../../emulator/core/server';
import { createEventGridTopicService, type EventGridControl } from '../../emulator/eventgrid';

let ctx: EmuContext;
let control: EventGridControl;
let running: RunningService;
let endpoint: string;
const scopes: string[] = [];

const credential: TokenCredential = {
  async getToken(s: string | string[], _opts?: GetTokenOptions) {
    scopes.push(...(Array.isArray(s) ? s : [s]));
    return { token: 'eg-test-token', expiresOnTimestamp: Date.now() + 3600_000 };
  },
};

beforeAll(async () => {
  ctx = { clock: new EmuClock(), record: new RequestRecord(), faults: new FaultInjector() };
  const topic = createEventGridTopicService({ ctx });
  control = topic.control;
  const cert = process.env.WARDEN_EMULATOR_TLS_CERT;
  const key = process.env.WARDEN_EMULATOR_TLS_KEY;
  if (!cert || !key) throw new Error('Run through `npm test`.');
  running = await createService({ service: 'eventgrid', router: topic.router, ctx, tls: { cert: readFileSync(cert), key: readFileSync(key) } });
  endpoint = `${running.url}/api/events`;
});

afterAll(async () => {
  await running.close();
});

beforeEach(() => control.clear());

it('accepts a CloudEvent from the real publisher client with a bearer token', async () => {
  const client = new EventGridPublisherClient(endpoint, 'CloudEvent', credential);
  await client.send([{ type: 'Warden.Alert.Raised', source: '/warden/alerts', subject: 'rbac', data: { severity: 'high' } }]);

  const [got, ...rest] = control.received();
  expect(rest).toHaveLength(0);
  expect(got?.schema).toBe('CloudEventSchemaV1_0');
  expect(got?.auth).toBe('bearer');
  expect(got?.event).toMatchObject({ specversion: '1.0', type: 'Warden.Alert.Raised', source: '/warden/alerts', data: { severity: 'high' } });
  expect(got?.headers['content-type']).toMatch(/^application\/cloudevents-batch\+json/);
  expect(got?.headers.authorization).toBe('Bearer [redacted]');
  expect(scopes).toContain('https://eventgrid.azure.net/.default');
  expect(ctx.record.find({ operation: 'eventgrid.topic.publish' }).at(-1)?.query).toBe('?api-version=2018-01-01');
});

it('accepts Event Grid schema events with the access key and with a SAS token; refuses a wrong key', async () => {
  await new EventGridPublisherClient(endpoint, 'EventGrid', new AzureKeyCredential(control.accessKey)).send([
    { eventType: 'Warden.Audit', subject: 'a/1', dataVersion: '1.0', data: { n: 1 } },
  ]);
  const sas = await generateSharedAccessSignature(endpoint, new AzureKeyCredential(control.accessKey), new Date(Date.now() + 600_000));
  await new EventGridPublisherClient(endpoint, 'EventGrid', new AzureSASCredential(sas)).send([
    { eventType: 'Warden.Audit', subject: 'a/2', dataVersion: '1.0', data: { n: 2 } },
  ]);
  expect(control.received().map((r) => [r.schema, r.auth, r.event.subject])).toEqual([
    ['EventGridSchema', 'sas-key', 'a/1'],
    ['EventGridSchema', 'sas-token', 'a/2'],
  ]);

  const wrongKey = new EventGridPublisherClient(endpoint, 'EventGrid', new AzureKeyCredential(Buffer.from('nope').toString('base64')));
  await expect(wrongKey.send([{ eventType: 'X', subject: 's', dataVersion: '1', data: {} }])).rejects.toMatchObject({ statusCode: 401 });
  const forged = new EventGridPublisherClient(endpoint, 'EventGrid', new AzureSASCredential(`${sas.slice(0, -4)}AAA%3D`));
  await expect(forged.send([{ eventType: 'X', subject: 's', dataVersion: '1', data: {} }])).rejects.toMatchObject({ statusCode: 401 });
  expect(control.received()).toHaveLength(2);
});

it('rejects a malformed CloudEvent with 400 naming the field, and stores nothing', async () => {
  const client = new EventGridPublisherClient(endpoint, 'CloudEvent', credential);
  const err: unknown = await client.send([{ type: 'Warden.Alert.Raised', source: '', data: {} }]).catch((e: unknown) => e);
  expect(err).toMatchObject({ statusCode: 400 });
  expect((err as Error).message).toMatch(/'source'/);

  const single = await fetch(`${endpoint}?api-version=2018-01-01`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/cloudevents+json; charset=utf-8', Authorization: 'Bearer t' },
    body: JSON.stringify({ specversion: '1.0', id: '1', source: '/s' }),
  });
  expect(single.status).toBe(400);
  expect(((await single.json()) as { error: { message: string } }).error.message).toMatch(/'type'/);

  const wrongVersion = await fetch(`${endpoint}?api-version=2018-01-01`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/cloudevents-batch+json', Authorization: 'Bearer t' },
    body: JSON.stringify([{ specversion: '0.3', id: '1', source: '/s', type: 't' }]),
  });
  expect(wrongVersion.status).toBe(400);

  const egMissing = await fetch(`${endpoint}?api-version=2018-01-01`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'aeg-sas-key': control.accessKey },
    body: JSON.stringify([{ id: '1', subject: 's', eventTime: new Date().toISOString(), data: {} }]),
  });
  expect(egMissing.status).toBe(400);
  expect(((await egMissing.json()) as { error: { message: string } }).error.message).toMatch(/'eventType'/);
  expect(control.received()).toEqual([]);
});

it('refuses an anonymous publish with 401', async () => {
  const res = await fetch(`${endpoint}?api-version=2018-01-01`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/cloudevents+json' },
    body: JSON.stringify({ specversion: '1.0', id: '1', source: '/s', type: 't' }),
  });
  expect(res.status).toBe(401);
  expect(control.received()).toEqual([]);
});
