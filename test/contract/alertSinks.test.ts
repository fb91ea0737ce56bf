/**
 * The three alert sinks with the real clients against the emulator: `EventGridPublisherClient` to the
 * emulator's topic (bearer token from the app's credential), a real webhook POST to its receiver, and
 * the Graph client's `sendMail` into its outbox; de-duplication state in Azurite.
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { EventGridDeserializer } from '@azure/eventgrid';
import type { Emulator } from '../../emulator';
import { isAdaptiveCardMessage } from '../../emulator/eventgrid';
import { createAlerter } from '../../shared/alerts';
import { createAzureClients, type AzureClients } from '../../shared/azure/clients';
import type { Finding } from '../../shared/capability';
import { ManualClock } from '../../shared/clock';
import { createLogger, memorySink } from '../../shared/logging';
import { parsePolicy, type PolicyInput } from '../../shared/policy';
import { TableStateStore } from '../../shared/ports/state';
import { loadSettings } from '../../shared/settings';
import { FAST_RETRY, withEmulator } from '../helpers/emulator';

let emu: Emulator;
let clients: AzureClients;

function storage(): string {
  const s = process.env.WARDEN_TEST_STORAGE;
  if (!s) throw new Error('WARDEN_TEST_STORAGE is not set: run the tests through `npm test`');
  return s;
}

beforeAll(async () => {
  emu = await withEmulator();
  const settings = loadSettings({
    AzureWebJobsStorage: storage(),
    WARDEN_CREDENTIAL: 'emulator',
    WARDEN_ARM_ENDPOINT: emu.urls.arm,
    WARDEN_GRAPH_ENDPOINT: emu.urls.graph,
  });
  clients = createAzureClients(settings, { retry: FAST_RETRY, lroPollMs: 10 });
});

afterAll(async () => {
  await emu.stop();
});

beforeEach(() => {
  emu.eventgrid.clear();
  emu.webhook.clear();
  emu.faults.clear();
});

const APP = '5a0c1e7e-1111-4222-8333-444455556666';
const finding = (over: Partial<Finding> = {}): Finding => ({
  type: 'Warden.Credentials.Expiring',
  subject: APP,
  severity: 'warning',
  summary: 'A client secret of app "ml-pipeline" expires in 12 days',
  details: { appId: APP, keyId: 'k-1', endDateTime: '2026-03-13T00:00:00Z' },
  actions: ['Rotate the secret or let Warden rotate it'],
  notify: ['grace@contoso.example'],
  ...over,
});

function setup(alerts: PolicyInput['alerts'], webhookName = `alerts-${randomBytes(3).toString('hex')}`) {
  const { policy } = parsePolicy({
    scopes: [`/subscriptions/${emu.subscriptionId}`],
    alerts: { eventGridTopic: emu.urls.eventGridTopic, webhookUrl: `${emu.urls.webhook}/${webhookName}`, ...alerts },
  });
  const log = memorySink();
  const clock = new ManualClock('2026-03-01T12:00:00Z');
  return { policy, log, clock, webhookName };
}

async function stateStore(): Promise<TableStateStore> {
  return new TableStateStore(await clients.table(`alertstate${randomBytes(5).toString('hex')}`));
}

const mailTo = (i: number): string[] => (emu.graph.outbox()[i]?.message.toRecipients ?? []).map((r) => r.emailAddress.address);

it('delivers a well-formed alert to each sink: CloudEvent, Adaptive Card, Graph mail', async () => {
  const { policy, log, clock, webhookName } = setup({ mail: { from: 'ada@contoso.example', to: ['ops@contoso.example'], notifyOwners: true } });
  const alerter = createAlerter({ policy, clients, state: await stateStore(), clock, logger: createLogger(log) }, { sinkTimeoutMs: 5000 });
  const mailBefore = emu.graph.outbox().length;

  const deliveries = await alerter.send([finding()]);
  expect(deliveries.map((d) => [d.sink, d.outcome])).toEqual([['eventGrid', 'sent'], ['webhook', 'sent'], ['mail', 'sent']]);

  const [ev] = emu.eventgrid.received();
  expect(ev?.schema).toBe('CloudEventSchemaV1_0');
  expect(ev?.auth).toBe('bearer');
  const [ce] = await new EventGridDeserializer().deserializeCloudEvents(JSON.stringify(ev?.event));
  expect(ce).toMatchObject({
    specversion: '1.0',
    type: 'Warden.Credentials.Expiring',
    source: '/warden',
    subject: APP,
    time: new Date('2026-03-01T12:00:00Z'),
    data: { severity: 'warning', summary: finding().summary, details: finding().details, actions: finding().actions },
  });

  const [hook] = emu.webhook.received(webhookName);
  expect(isAdaptiveCardMessage(hook?.body)).toBe(true);
  expect(JSON.stringify(hook?.body)).toContain('expires in 12 days');
  expect(JSON.stringify(hook?.body)).toContain(APP);

  const outbox = emu.graph.outbox();
  expect(outbox).toHaveLength(mailBefore + 1);
  const mail = outbox[mailBefore];
  expect(mail?.from).toBe('ada@contoso.example');
  expect(mailTo(mailBefore)).toEqual(['ops@contoso.example', 'grace@contoso.example']);
  expect(mail?.message.subject).toContain(finding().summary);
  expect(mail?.saveToSentItems).toBe(false);
});

it('sends the same finding once within repeatHours (state in table storage), again when it changes', async () => {
  const { policy, log, clock, webhookName } = setup({ repeatHours: 6, mail: { from: 'ada@contoso.example', to: ['ops@contoso.example'], notifyOwners: false } });
  const state = await stateStore();
  const alerter = createAlerter({ policy, clients, state, clock, logger: createLogger(log) });
  // A second instance sharing the state: the window holds across instances.
  const other = createAlerter({ policy, clients, state, clock, logger: createLogger(log) });
  const mark = emu.record.mark();

  await alerter.send([finding()]);
  clock.advance(5 * 3600_000);
  const again = await other.send([finding()]);
  expect(again.every((d) => d.outcome === 'suppressed')).toBe(true);
  expect(emu.record.since(mark, { service: 'eventgrid' })).toHaveLength(1);
  expect(emu.record.since(mark, { service: 'webhook' })).toHaveLength(1);
  expect(emu.record.since(mark, { operation: 'graph.sendMail' })).toHaveLength(1);

  await alerter.send([finding({ details: { ...finding().details, endDateTime: '2026-03-20T00:00:00Z' } })]);
  expect(emu.webhook.received(webhookName)).toHaveLength(2);
  clock.advance(7 * 3600_000);
  await alerter.send([finding({ details: { ...finding().details, endDateTime: '2026-03-20T00:00:00Z' } })]);
  expect(emu.webhook.received(webhookName)).toHaveLength(3);
});

it('logs a dead sink and still delivers to the others; the dead one is retried next time', async () => {
  const { policy, log, clock, webhookName } = setup({ mail: { from: 'ada@contoso.example', to: ['ops@contoso.example'], notifyOwners: false } });
  const alerter = createAlerter({ policy, clients, state: await stateStore(), clock, logger: createLogger(log) }, { sinkTimeoutMs: 5000, maxRetryDelayMs: 10 });
  emu.webhook.failNext(webhookName, 2, 500);
  const mailBefore = emu.graph.outbox().length;

  const first = await alerter.send([finding()]);
  expect(first.map((d) => [d.sink, d.outcome])).toEqual([['eventGrid', 'sent'], ['webhook', 'failed'], ['mail', 'sent']]);
  expect(first.find((d) => d.sink === 'webhook')?.error).toBe('The teams webhook answered 500');
  expect(emu.eventgrid.received()).toHaveLength(1);
  expect(emu.graph.outbox()).toHaveLength(mailBefore + 1);
  const warn = log.records.find((r) => r.level === 'warn' && r.message === 'Alert sink webhook failed');
  expect(warn?.fields).toMatchObject({ sink: 'webhook', alertType: 'Warden.Credentials.Expiring', subject: APP });
  // The webhook URL carries a signature in real life: it never reaches a log line.
  expect(log.text()).not.toContain(webhookName);

  const second = await alerter.send([finding()]);
  expect(second.map((d) => [d.sink, d.outcome])).toEqual([['eventGrid', 'suppressed'], ['webhook', 'sent'], ['mail', 'suppressed']]);
  expect(isAdaptiveCardMessage(emu.webhook.received(webhookName)[0]?.body)).toBe(true);
});

it('survives an Event Grid topic that fails and a mail sender Graph refuses', async () => {
  const { policy, log, clock, webhookName } = setup({ mail: { from: 'nobody@contoso.example', to: ['ops@contoso.example'], notifyOwners: false } });
  const alerter = createAlerter({ policy, clients, state: await stateStore(), clock, logger: createLogger(log) }, { sinkTimeoutMs: 5000 });
  emu.faults.add({ service: 'eventgrid', status: 500 });
  const res = await alerter.send([finding({ severity: 'critical' })]);
  expect(res.map((d) => [d.sink, d.outcome])).toEqual([['eventGrid', 'failed'], ['webhook', 'sent'], ['mail', 'failed']]);
  expect(emu.webhook.received(webhookName)).toHaveLength(1);
  expect(log.records.filter((r) => r.level === 'warn' && r.message.startsWith('Alert sink'))).toHaveLength(2);
});

it('treats an unreachable webhook as one failed sink, quickly', async () => {
  const port = await new Promise<number>((resolve) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const p = (srv.address() as { port: number }).port;
      srv.close(() => resolve(p));
    });
  });
  const { policy, log, clock } = setup({ webhookUrl: `https://127.0.0.1:${port}/webhooks/gone` });
  const alerter = createAlerter({ policy, clients, state: await stateStore(), clock, logger: createLogger(log) }, { sinkTimeoutMs: 3000, maxRetryDelayMs: 10 });
  const started = Date.now();
  const res = await alerter.send([finding()]);
  expect(Date.now() - started).toBeLessThan(3000);
  expect(res.map((d) => [d.sink, d.outcome])).toEqual([['eventGrid', 'sent'], ['webhook', 'failed']]);
  expect(res[1]?.error).toBe('The teams webhook could not be reached (ECONNREFUSED)');
});

it('posts a Slack message when the policy asks for the Slack format', async () => {
  const { policy, log, clock, webhookName } = setup({ webhookFormat: 'slack' });
  const alerter = createAlerter({ policy, clients, state: await stateStore(), clock, logger: createLogger(log) });
  await alerter.send([finding()]);
  const body = emu.webhook.received(webhookName)[0]?.body as { text: string; blocks: unknown[] };
  expect(body.text).toContain(finding().summary);
  expect(Array.isArray(body.blocks)).toBe(true);
  expect(isAdaptiveCardMessage(body)).toBe(false);
});
